package domain

import (
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Text trims s and checks it against the field's rules: required, at most
// max characters. Aggregates use it so every text field fails the same way.
func Text(field, s string, max int, required bool) (string, error) {
	s = strings.TrimSpace(s)
	if required && s == "" {
		return "", Invalid(field, "is required")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return "", Invalid(field, "must be at most %d characters", max)
	}
	if !utf8.ValidString(s) {
		return "", Invalid(field, "must be valid UTF-8")
	}
	return s, nil
}

var languageTag = regexp.MustCompile(`^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$`)

// LanguageTag checks a BCP 47-like tag (en, de, pt-BR, zh-Hant-TW) and returns
// it in canonical case with hyphens; "" stays "" (not given).
func LanguageTag(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > 35 || !languageTag.MatchString(s) {
		return "", Invalid(field, "must be a language tag such as en, de or pt-BR")
	}
	parts := strings.Split(strings.ReplaceAll(s, "_", "-"), "-")
	parts[0] = strings.ToLower(parts[0])
	for i := 1; i < len(parts); i++ {
		switch len(parts[i]) {
		case 2:
			parts[i] = strings.ToUpper(parts[i])
		case 4:
			parts[i] = strings.ToUpper(parts[i][:1]) + strings.ToLower(parts[i][1:])
		default:
			parts[i] = strings.ToLower(parts[i])
		}
	}
	return strings.Join(parts, "-"), nil
}

// MaxObjectBytes bounds free-form JSON objects (metadata, traits) once encoded.
const MaxObjectBytes = 64 << 10

// Object checks a free-form JSON object given by a client (metadata, traits):
// at most MaxObjectBytes encoded. nil becomes an empty object.
func Object(field string, m map[string]any) (map[string]any, error) {
	if m == nil {
		return map[string]any{}, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, Invalid(field, "must be a JSON object")
	}
	if len(b) > MaxObjectBytes {
		return nil, Invalid(field, "must be at most %d bytes of JSON", MaxObjectBytes)
	}
	return m, nil
}

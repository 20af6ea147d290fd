package shred

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// KeySize is the size of a subject's key: AES-256.
const KeySize = 32

// version prefixes every ciphertext so that the scheme can change later
// without misreading old events.
const version = "v1:"

// encField is the only member of the JSON object that replaces a personal value.
const encField = "$enc"

// errNotOurs means a value is not a ciphertext of this package.
var errNotOurs = errors.New("not an encrypted value")

// sealer encrypts and decrypts the personal values of one subject.
//
// The nonce is synthetic: an HMAC, under a key derived from the subject's
// key, of the event id, the field name and the plaintext. A retry of the same
// event therefore produces the same ciphertext (so the store recognises the
// retry), while two different plaintexts never share a nonce under one key,
// not even when an event id is reused with other content. The event id and
// field name are also the associated data, so a ciphertext cannot be moved
// to another event or field without failing authentication.
type sealer struct {
	aead   cipher.AEAD
	macKey []byte
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("shred: key of %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(derive(key, "companin/shred/v1/encryption"))
	if err != nil {
		return nil, fmt.Errorf("shred: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("shred: %w", err)
	}
	return &sealer{aead: aead, macKey: derive(key, "companin/shred/v1/nonce")}, nil
}

func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// associated binds a ciphertext to its event and field.
func associated(id uuid.UUID, field string) []byte {
	ad := make([]byte, 0, len("companin/shred/v1")+1+16+len(field))
	ad = append(ad, "companin/shred/v1\x00"...)
	ad = append(ad, id[:]...)
	return append(ad, field...)
}

func (s *sealer) nonce(id uuid.UUID, field string, plaintext []byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	m.Write(id[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(field)))
	m.Write(n[:])
	m.Write([]byte(field))
	m.Write(plaintext)
	return m.Sum(nil)[:s.aead.NonceSize()]
}

// seal encrypts one JSON value and returns the JSON object that replaces it.
func (s *sealer) seal(id uuid.UUID, field string, value json.RawMessage) (json.RawMessage, error) {
	plaintext, err := canonical(value)
	if err != nil {
		return nil, err
	}
	nonce := s.nonce(id, field, plaintext)
	sealed := s.aead.Seal(nonce, nonce, plaintext, associated(id, field))
	return json.Marshal(map[string]string{encField: version + base64.StdEncoding.EncodeToString(sealed)})
}

// open decrypts a value made by seal. It returns errNotOurs for any other
// value, and an authentication error when the key is not the one it was
// sealed with.
func (s *sealer) open(id uuid.UUID, field string, value json.RawMessage) (json.RawMessage, error) {
	sealed, err := ciphertextOf(value)
	if err != nil {
		return nil, err
	}
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("shred: %s: ciphertext too short", field)
	}
	plaintext, err := s.aead.Open(nil, sealed[:n], sealed[n:], associated(id, field))
	if err != nil {
		return nil, fmt.Errorf("shred: %s: %w", field, err)
	}
	return plaintext, nil
}

// ciphertextOf returns the sealed bytes of {"$enc":"v1:<base64>"}, or errNotOurs.
func ciphertextOf(value json.RawMessage) ([]byte, error) {
	v := bytes.TrimSpace(value)
	if len(v) == 0 || v[0] != '{' {
		return nil, errNotOurs
	}
	var m map[string]string
	if json.Unmarshal(v, &m) != nil || len(m) != 1 {
		return nil, errNotOurs
	}
	s, ok := m[encField]
	if !ok || !strings.HasPrefix(s, version) {
		return nil, errNotOurs
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, version))
	if err != nil {
		return nil, errNotOurs
	}
	return b, nil
}

// canonical re-encodes a JSON value compactly with sorted object keys and
// numbers kept as written, so that a retry that formats the same value
// differently still encrypts to the same ciphertext.
func canonical(value json.RawMessage) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(value))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("shred: personal value: %w", err)
	}
	return json.Marshal(v)
}

// Package widgetconfig is how an organization's chat widget looks and greets
// on a site: title, greeting, colour, position, labels, locale, and optionally
// the origins allowed to load it. A site names one with data-config-id; the
// widget reads it with its widget token.
package widgetconfig

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/organization"
	"github.com/google/uuid"
)

// Kind is the stream prefix: widgetconfig-<uuid>.
const Kind = "widgetconfig"

// Event type names: stored, never renamed.
const (
	TypeCreated = "WidgetConfigCreated"
	TypeUpdated = "WidgetConfigUpdated"
)

var (
	// ErrNotFound: no such configuration (or another organization's).
	ErrNotFound = fmt.Errorf("widget configuration not found: %w", domain.ErrNotFound)
	// ErrExists: a configuration with this id was already created.
	ErrExists = fmt.Errorf("widget configuration exists: %w", domain.ErrConflict)
)

// Positions a widget may take on the page.
const (
	PositionBottomRight = "bottom-right"
	PositionBottomLeft  = "bottom-left"
)

// Limits of the fields, in characters or items.
const (
	MaxTitle       = 100
	MaxGreeting    = 1000
	MaxLabel       = 60
	MaxPlaceholder = 200
	MaxOrigins     = 50
)

var hexColor = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// Settings is a valid configuration. Build it with ParseSettings.
type Settings struct {
	Title          string   `json:"title"`
	Greeting       string   `json:"greeting"`
	PrimaryColor   string   `json:"primary_color"`
	Position       string   `json:"position"`
	LauncherLabel  string   `json:"launcher_label"`
	Placeholder    string   `json:"placeholder"`
	Locale         string   `json:"locale"`
	AllowedOrigins []string `json:"allowed_origins"`
}

// Defaults is what a widget shows without a (known) configuration.
func Defaults() Settings {
	return Settings{
		Title:          "Chat with us",
		Greeting:       "Hi! How can we help you today?",
		PrimaryColor:   "#2563eb",
		Position:       PositionBottomRight,
		LauncherLabel:  "Chat",
		Placeholder:    "Type your message…",
		Locale:         "en",
		AllowedOrigins: []string{},
	}
}

// Input is what a client sends (the JSON body of POST and PATCH
// /widget-configs); nil pointers were not given.
type Input struct {
	Title          *string   `json:"title"`
	Greeting       *string   `json:"greeting"`
	PrimaryColor   *string   `json:"primary_color"`
	Position       *string   `json:"position"`
	LauncherLabel  *string   `json:"launcher_label"`
	Placeholder    *string   `json:"placeholder"`
	Locale         *string   `json:"locale"`
	AllowedOrigins *[]string `json:"allowed_origins"`
}

// ParseSettings validates a new configuration: given fields on top of Defaults.
func ParseSettings(in Input) (Settings, error) { return Defaults().apply(in) }

func (s Settings) apply(in Input) (Settings, error) {
	var p domain.Patch
	p.Text("title", in.Title, &s.Title, MaxTitle, true)
	p.Text("greeting", in.Greeting, &s.Greeting, MaxGreeting, false)
	p.Text("launcher_label", in.LauncherLabel, &s.LauncherLabel, MaxLabel, true)
	p.Text("placeholder", in.Placeholder, &s.Placeholder, MaxPlaceholder, true)
	p.Check(in.PrimaryColor, &s.PrimaryColor, parseColor)
	p.Check(in.Position, &s.Position, parsePosition)
	p.Language("locale", in.Locale, &s.Locale, true)
	p.List(in.AllowedOrigins, &s.AllowedOrigins, parseOrigins)
	if err := p.Err(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

func parseColor(c string) (string, error) {
	c = strings.TrimSpace(c)
	if !hexColor.MatchString(c) {
		return "", domain.Invalid("primary_color", "must be a hex colour such as #2563eb")
	}
	return strings.ToLower(c), nil
}

func parsePosition(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p != PositionBottomRight && p != PositionBottomLeft {
		return "", domain.Invalid("position", "must be bottom-right or bottom-left")
	}
	return p, nil
}

// parseOrigins normalises the origins and drops repeats.
func parseOrigins(origins []string) ([]string, error) {
	if len(origins) > MaxOrigins {
		return nil, domain.Invalid("allowed_origins", "must have at most %d items", MaxOrigins)
	}
	out := []string{}
	for i, o := range origins {
		n, err := organization.ParseOrigin(o)
		if err != nil {
			return nil, domain.Invalid(fmt.Sprintf("allowed_origins[%d]", i), "must be an origin such as https://shop.example.com")
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// AllowsOrigin tells whether a page of origin may use this configuration:
// any page when no origins are listed.
func (s Settings) AllowsOrigin(origin string) bool {
	if len(s.AllowedOrigins) == 0 {
		return true
	}
	o, err := organization.ParseOrigin(origin)
	return err == nil && slices.Contains(s.AllowedOrigins, o)
}

// Created (WidgetConfigCreated) is a new configuration with all its settings.
type Created struct {
	ConfigID uuid.UUID `json:"config_id"`
	Settings
	CreatedAt time.Time `json:"created_at"`
}

// Updated (WidgetConfigUpdated) carries all settings after the change, so
// readers never merge partial updates.
type Updated struct {
	ConfigID uuid.UUID `json:"config_id"`
	Settings
	// Changed lists the fields that changed (JSON names), for auditors.
	Changed   []string  `json:"changed"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (Created) EventType() string { return TypeCreated }
func (Updated) EventType() string { return TypeUpdated }

// After is the configuration once the event applies (domain.SettingsEvent).
func (e Created) After() (Settings, bool) { return e.Settings, false }
func (e Updated) After() (Settings, bool) { return e.Settings, false }

var events = domain.Events(Created{}, Updated{})

// Decode turns a stored event into a widget configuration event; nil for other types.
func Decode(typ string, data []byte) (domain.Event, error) { return events.Decode(typ, data) }

// Config is the aggregate: settings created and changed by
// domain.Configured's rules.
type Config struct {
	domain.Configured[Settings]
	id uuid.UUID
}

// New returns a configuration with id and no history.
func New(id uuid.UUID) *Config { return &Config{id: id} }

// Create records a new configuration.
func (c *Config) Create(s Settings, at time.Time) error {
	return c.Configured.Create(Created{ConfigID: c.id, Settings: s, CreatedAt: at.UTC()}, ErrExists)
}

// Update changes the fields given in in. Nothing changes: nothing is recorded.
func (c *Config) Update(in Input, at time.Time) error {
	return c.Configured.Update(func(s Settings) (Settings, error) { return s.apply(in) }, ErrNotFound,
		func(next Settings, changed []string) domain.SettingsEvent[Settings] {
			return Updated{ConfigID: c.id, Settings: next, Changed: changed, UpdatedAt: at.UTC()}
		})
}

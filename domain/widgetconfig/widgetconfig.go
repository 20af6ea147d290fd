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

// ErrNotFound: no such configuration (or another organization's).
var ErrNotFound = fmt.Errorf("widget configuration not found: %w", domain.ErrNotFound)

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

// Input is what a client sends; nil pointers were not given.
type Input struct {
	Title          *string
	Greeting       *string
	PrimaryColor   *string
	Position       *string
	LauncherLabel  *string
	Placeholder    *string
	Locale         *string
	AllowedOrigins *[]string
}

// ParseSettings validates a new configuration: given fields on top of Defaults.
func ParseSettings(in Input) (Settings, error) { return Defaults().apply(in) }

func (s Settings) apply(in Input) (Settings, error) {
	var err error
	text := func(field string, v *string, dst *string, max int) {
		if err != nil || v == nil {
			return
		}
		*dst, err = domain.Text(field, *v, max, true)
	}
	text("title", in.Title, &s.Title, MaxTitle)
	if err == nil && in.Greeting != nil {
		s.Greeting, err = domain.Text("greeting", *in.Greeting, MaxGreeting, false)
	}
	text("launcher_label", in.LauncherLabel, &s.LauncherLabel, MaxLabel)
	text("placeholder", in.Placeholder, &s.Placeholder, MaxPlaceholder)
	if err != nil {
		return Settings{}, err
	}
	if in.PrimaryColor != nil {
		c := strings.TrimSpace(*in.PrimaryColor)
		if !hexColor.MatchString(c) {
			return Settings{}, domain.Invalid("primary_color", "must be a hex colour such as #2563eb")
		}
		s.PrimaryColor = strings.ToLower(c)
	}
	if in.Position != nil {
		p := strings.TrimSpace(*in.Position)
		if p != PositionBottomRight && p != PositionBottomLeft {
			return Settings{}, domain.Invalid("position", "must be bottom-right or bottom-left")
		}
		s.Position = p
	}
	if in.Locale != nil {
		l, err := domain.LanguageTag("locale", *in.Locale)
		if err != nil {
			return Settings{}, err
		}
		if l == "" {
			return Settings{}, domain.Invalid("locale", "is required")
		}
		s.Locale = l
	}
	if in.AllowedOrigins != nil {
		if len(*in.AllowedOrigins) > MaxOrigins {
			return Settings{}, domain.Invalid("allowed_origins", "must have at most %d items", MaxOrigins)
		}
		out := []string{}
		for i, o := range *in.AllowedOrigins {
			n, err := organization.ParseOrigin(o)
			if err != nil {
				return Settings{}, domain.Invalid(fmt.Sprintf("allowed_origins[%d]", i), "must be an origin such as https://shop.example.com")
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		s.AllowedOrigins = out
	}
	return s, nil
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

// Decode turns a stored event into a widget configuration event; nil for other types.
func Decode(typ string, data []byte) (domain.Event, error) {
	switch typ {
	case TypeCreated:
		return domain.Decode[Created](data)
	case TypeUpdated:
		return domain.Decode[Updated](data)
	}
	return nil, nil
}

// Config is the aggregate.
type Config struct {
	domain.Recorder
	id       uuid.UUID
	created  bool
	settings Settings
}

// New returns a configuration with id and no history.
func New(id uuid.UUID) *Config { return &Config{id: id} }

// Settings are the current settings.
func (c *Config) Settings() Settings { return c.settings }

// Create records a new configuration.
func (c *Config) Create(s Settings, at time.Time) error {
	if c.created {
		return fmt.Errorf("widget configuration exists: %w", domain.ErrConflict)
	}
	c.record(Created{ConfigID: c.id, Settings: s, CreatedAt: at.UTC()})
	return nil
}

// Update changes the fields given in in. Nothing changes: nothing is recorded.
func (c *Config) Update(in Input, at time.Time) error {
	if !c.created {
		return ErrNotFound
	}
	next, err := c.settings.apply(in)
	if err != nil {
		return err
	}
	changed := diff(c.settings, next)
	if len(changed) == 0 {
		return nil
	}
	c.record(Updated{ConfigID: c.id, Settings: next, Changed: changed, UpdatedAt: at.UTC()})
	return nil
}

func (c *Config) record(e domain.Event) {
	c.Apply(e)
	c.Record(e)
}

// Apply changes state by one event, new or replayed.
func (c *Config) Apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		c.created, c.settings = true, e.Settings
	case Updated:
		c.settings = e.Settings
	}
}

func diff(a, b Settings) []string {
	var out []string
	add := func(name string, changed bool) {
		if changed {
			out = append(out, name)
		}
	}
	add("title", a.Title != b.Title)
	add("greeting", a.Greeting != b.Greeting)
	add("primary_color", a.PrimaryColor != b.PrimaryColor)
	add("position", a.Position != b.Position)
	add("launcher_label", a.LauncherLabel != b.LauncherLabel)
	add("placeholder", a.Placeholder != b.Placeholder)
	add("locale", a.Locale != b.Locale)
	add("allowed_origins", !slices.Equal(a.AllowedOrigins, b.AllowedOrigins))
	return out
}

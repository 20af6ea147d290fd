package domain

import (
	"fmt"
	"reflect"
	"strings"
)

// SettingsEvent is an event of a Configured aggregate: After is the whole
// settings once it applies, or gone when it deletes the aggregate.
type SettingsEvent[S any] interface {
	Event
	After() (s S, gone bool)
}

// Configured is the life of an aggregate that is one set of settings S,
// created whole, changed by parts and perhaps deleted: an assistant's
// persona, a widget configuration. The aggregate embeds it and supplies its
// own events and errors; Configured decides when they are recorded, so both
// keep the same rules (an update that changes nothing records nothing, a
// deleted aggregate accepts nothing more).
type Configured[S any] struct {
	Recorder
	created, deleted bool
	settings         S
}

// Settings are the current settings.
func (c *Configured[S]) Settings() S { return c.settings }

// Exists tells whether the aggregate was created and not deleted.
func (c *Configured[S]) Exists() bool { return c.created && !c.deleted }

// Create records created, unless the aggregate was created before: exists.
func (c *Configured[S]) Create(created SettingsEvent[S], exists error) error {
	if c.created {
		return exists
	}
	c.record(created)
	return nil
}

// Update lets change derive the next settings from the current ones and, if
// any field changed, records updated(next, the changed fields' JSON names).
// An aggregate that does not exist is notFound.
func (c *Configured[S]) Update(change func(S) (S, error), notFound error, updated func(next S, changed []string) SettingsEvent[S]) error {
	if !c.Exists() {
		return notFound
	}
	next, err := change(c.settings)
	if err != nil {
		return err
	}
	if changed := Changed(c.settings, next); len(changed) > 0 {
		c.record(updated(next, changed))
	}
	return nil
}

// Delete records deleted; an aggregate that does not exist is notFound.
func (c *Configured[S]) Delete(deleted SettingsEvent[S], notFound error) error {
	if !c.Exists() {
		return notFound
	}
	c.record(deleted)
	return nil
}

func (c *Configured[S]) record(e SettingsEvent[S]) {
	c.Apply(e)
	c.Record(e)
}

// Apply changes state by one event, new or replayed; events that are not the
// aggregate's SettingsEvent change nothing.
func (c *Configured[S]) Apply(e Event) {
	se, ok := e.(SettingsEvent[S])
	if !ok {
		return
	}
	s, gone := se.After()
	if gone {
		c.deleted = true
		return
	}
	c.created, c.settings = true, s
}

// Changed names, by their JSON names and in declaration order, the fields of
// the settings struct S whose values differ between a and b: what an update
// event lists for auditors. An empty and an absent list are the same.
func Changed[S any](a, b S) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	var out []string
	for i := range t.NumField() {
		fa, fb := va.Field(i), vb.Field(i)
		same := reflect.DeepEqual(fa.Interface(), fb.Interface())
		if fa.Kind() == reflect.Slice && fa.Len() == 0 && fb.Len() == 0 {
			same = true
		}
		if !same {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
	}
	return out
}

// Patch applies the given fields of a partial input (nil: not given) onto
// settings, one field after the other, and keeps the first rule broken:
// Err. Settings packages list their fields with it, so that every text,
// list and language field fails the same way.
type Patch struct{ err error }

// Err is the first rule a field broke, nil if none.
func (p *Patch) Err() error { return p.err }

// Text sets *dst to the checked v (see Text).
func (p *Patch) Text(field string, v *string, dst *string, max int, required bool) {
	if p.err == nil && v != nil {
		p.set(dst, func() (string, error) { return Text(field, *v, max, required) })
	}
}

// Language sets *dst to the language tag v; required refuses "".
func (p *Patch) Language(field string, v *string, dst *string, required bool) {
	if p.err == nil && v != nil {
		p.set(dst, func() (string, error) {
			l, err := LanguageTag(field, *v)
			if err == nil && required && l == "" {
				return "", Invalid(field, "is required")
			}
			return l, err
		})
	}
}

// Texts sets *dst to the list v, at most maxItems, each a required text of
// at most max characters.
func (p *Patch) Texts(field string, v *[]string, dst *[]string, maxItems, max int) {
	p.List(v, dst, func(items []string) ([]string, error) {
		if len(items) > maxItems {
			return nil, Invalid(field, "must have at most %d items", maxItems)
		}
		out := make([]string, len(items))
		for i, s := range items {
			var err error
			if out[i], err = Text(fmt.Sprintf("%s[%d]", field, i), s, max, true); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
}

// List sets *dst to what parse makes of the list v.
func (p *Patch) List(v *[]string, dst *[]string, parse func([]string) ([]string, error)) {
	if p.err != nil || v == nil {
		return
	}
	out, err := parse(*v)
	if err != nil {
		p.err = err
		return
	}
	*dst = out
}

// Check sets *dst to what parse makes of v.
func (p *Patch) Check(v *string, dst *string, parse func(string) (string, error)) {
	if p.err == nil && v != nil {
		p.set(dst, func() (string, error) { return parse(*v) })
	}
}

func (p *Patch) set(dst *string, parse func() (string, error)) {
	s, err := parse()
	if err != nil {
		p.err = err
		return
	}
	*dst = s
}

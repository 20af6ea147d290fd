package natsfeed

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/companin/companin/domain/es"
)

// Withheld is the key of es.Metadata.Extra that lists, comma-separated, the
// personal fields of an event the feed published as null because the log
// holds them in the clear.
const Withheld = "withheld"

// sealedOnly returns e with every personal field of its subject that the
// log holds in the clear replaced by null; sealed fields stay as they are.
func (f *Feed) sealedOnly(e es.Event) (es.Event, error) {
	if e.Metadata.Subject == "" || (len(e.Metadata.Personal) == 0 && len(f.cfg.Personal[e.Type]) == 0) {
		return e, nil
	}
	var fields map[string]json.RawMessage
	if len(e.Data) == 0 || json.Unmarshal(e.Data, &fields) != nil || fields == nil {
		return e, nil // not an object: no fields to withhold
	}
	var withheld []string
	for _, name := range append(slices.Clone(e.Metadata.Personal), f.cfg.Personal[e.Type]...) {
		v, ok := fields[name]
		if !ok || sealed(v) || slices.Contains(withheld, name) {
			continue
		}
		if t := bytes.TrimSpace(v); string(t) == "null" {
			continue
		}
		fields[name] = json.RawMessage("null")
		withheld = append(withheld, name)
	}
	if len(withheld) == 0 {
		return e, nil
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return e, err
	}
	e.Data = data
	extra := maps.Clone(e.Metadata.Extra)
	if extra == nil {
		extra = map[string]string{}
	}
	extra[Withheld] = strings.Join(withheld, ",")
	e.Metadata.Extra = extra
	return e, nil
}

// sealed tells whether v is a value sealed by the crypto-shredding store,
// {"$enc":"v1:..."}.
func sealed(v json.RawMessage) bool {
	var obj map[string]string
	if json.Unmarshal(v, &obj) != nil || len(obj) != 1 {
		return false
	}
	return strings.HasPrefix(obj["$enc"], "v1:")
}

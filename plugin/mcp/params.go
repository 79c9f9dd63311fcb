package mcp

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/l402d/l402d/plugin/field"
)

// kind is a parameter's JSON type.
type kind int

const (
	kindString kind = iota
	kindInteger
	kindHeaders // an object of header names to a string or a list of strings
	kindBool
)

// param is one tool argument: how the input schema describes it and how
// parseArgs reads it. Both come from here so that they agree.
type param struct {
	name    string   // canonical spelling (camelCase, as seed 000)
	aliases []string // other accepted spellings (snake_case, as seed 001)
	kind    kind
	desc    string
	// fix says how to send the argument right; it ends every error about
	// it.
	fix      string
	required bool

	min, max int64 // integers: inclusive bounds
	maxLen   int   // strings: most bytes; 0: no limit beyond the request's
	hex64    bool  // strings: exactly 64 hex characters
	enum     []string
	format   string // strings: the schema's format (uri, date-time)
}

// spellings returns the canonical name, then the aliases.
func (p *param) spellings() []string { return append([]string{p.name}, p.aliases...) }

// spec is a tool's argument list.
type spec struct {
	params []param
	// alternatives, when set, are sets of canonical names one of which
	// must be complete (e.g. macaroon+preimage, or token); the params
	// named in them are not required on their own.
	alternatives [][]string
}

// values are parsed arguments by canonical name: string, int64 or
// http.Header. Absent optional arguments (null, or an empty string) are
// missing from the map.
type values map[string]any

func (v values) has(name string) bool { _, ok := v[name]; return ok }

func (v values) str(name string) string { s, _ := v[name].(string); return s }

func (v values) int(name string) int64 { n, _ := v[name].(int64); return n }

func (v values) bool(name string) bool { b, _ := v[name].(bool); return b }

func (v values) header(name string) http.Header { h, _ := v[name].(http.Header); return h }

// digest is a canonical rendering of v, for binding an approval to the
// exact arguments it was given for.
func (v values) digest() []byte {
	b, _ := json.Marshal(map[string]any(v)) // map keys are sorted
	return b
}

// parseArgs reads a tool call's arguments against sp. Every error is a
// *field.Error.
func (sp *spec) parseArgs(raw json.RawMessage) (values, error) {
	in, err := field.ParseObject(raw)
	if err != nil {
		return nil, &field.Error{Field: "arguments", Problem: "are not a JSON object", Fix: "send the arguments as one JSON object of name to value, as the input schema says"}
	}
	known := map[string]bool{}
	for i := range sp.params {
		for _, n := range sp.params[i].spellings() {
			known[n] = true
		}
	}
	var unknown []string
	for k := range in {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		name := field.Truncate(unknown[0], 64)
		if strings.TrimSpace(name) == "" || !utf8.ValidString(name) {
			name = strconv.Quote(name)
		}
		return nil, &field.Error{Field: name, Problem: "is not an argument of this tool", Fix: "use only: " + sp.names()}
	}
	out := values{}
	for i := range sp.params {
		p := &sp.params[i]
		fv, err := in.Get(p.spellings()...)
		if err != nil {
			return nil, err
		}
		if !fv.Present() {
			if p.required {
				return nil, &field.Error{Field: p.name, Problem: "is required", Fix: p.fix}
			}
			continue
		}
		v, err := p.parse(fv)
		if err != nil {
			return nil, err
		}
		if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
			if p.required {
				return nil, &field.Error{Field: fv.Name, Problem: "is empty", Fix: p.fix}
			}
			continue
		}
		out[p.name] = v
	}
	return out, sp.checkAlternatives(out)
}

// checkAlternatives requires exactly one alternative to be given, and
// given whole.
func (sp *spec) checkAlternatives(v values) error {
	if len(sp.alternatives) == 0 {
		return nil
	}
	var started []int
	for i, alt := range sp.alternatives {
		if slices.ContainsFunc(alt, v.has) {
			started = append(started, i)
		}
	}
	switch len(started) {
	case 0:
		p := sp.param(sp.alternatives[0][0])
		return &field.Error{Field: p.name, Problem: "is required", Fix: p.fix}
	case 1:
		for _, n := range sp.alternatives[started[0]] {
			if !v.has(n) {
				p := sp.param(n)
				return &field.Error{Field: p.name, Problem: "is required with " + strings.Join(without(sp.alternatives[started[0]], n), " and "), Fix: p.fix}
			}
		}
		return nil
	}
	a, b := sp.alternatives[started[0]], sp.alternatives[started[1]]
	return &field.Error{Field: b[0], Problem: "cannot be combined with " + strings.Join(a, " and "),
		Fix: "send either " + strings.Join(a, " and ") + ", or " + strings.Join(b, " and ")}
}

func without(list []string, s string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == s })
}

func (sp *spec) param(name string) *param {
	for i := range sp.params {
		if sp.params[i].name == name {
			return &sp.params[i]
		}
	}
	panic("mcp: no parameter " + name) // a bug in a tool definition
}

// names lists every accepted spelling, for "unknown argument" errors.
func (sp *spec) names() string {
	if len(sp.params) == 0 {
		return "(none: this tool takes no arguments)"
	}
	var out []string
	for i := range sp.params {
		out = append(out, strings.Join(sp.params[i].spellings(), "/"))
	}
	return strings.Join(out, ", ")
}

// parse reads one present value.
func (p *param) parse(v field.Value) (any, error) {
	switch p.kind {
	case kindInteger:
		n, err := v.Int(p.fix)
		switch {
		case err != nil:
			return nil, err
		case n < p.min && p.min == 1:
			return nil, &field.Error{Field: v.Name, Problem: fmt.Sprintf("is %d; it must be greater than 0", n), Fix: p.fix}
		case n < p.min:
			return nil, &field.Error{Field: v.Name, Problem: fmt.Sprintf("is %d; it must be at least %d", n, p.min), Fix: p.fix}
		case n > p.max:
			return nil, &field.Error{Field: v.Name, Problem: fmt.Sprintf("is %d; it must be at most %d", n, p.max), Fix: p.fix}
		}
		return n, nil
	case kindHeaders:
		return v.Headers()
	case kindBool:
		return v.Bool(p.fix)
	}
	s, err := v.String(p.fix)
	if err != nil {
		return nil, err
	}
	if p.maxLen > 0 && len(s) > p.maxLen {
		return nil, &field.Error{Field: v.Name, Problem: fmt.Sprintf("is %d bytes long; it may be at most %d", len(s), p.maxLen), Fix: p.fix}
	}
	if p.hex64 {
		s = strings.TrimSpace(s)
		if _, err := hex.DecodeString(s); err != nil || len(s) != 64 {
			return nil, &field.Error{Field: v.Name, Problem: "is not 64 hex characters", Fix: p.fix}
		}
	}
	if len(p.enum) > 0 && strings.TrimSpace(s) != "" {
		i := slices.IndexFunc(p.enum, func(e string) bool { return strings.EqualFold(e, strings.TrimSpace(s)) })
		if i < 0 {
			return nil, &field.Error{Field: v.Name, Problem: fmt.Sprintf("is %q; it must be one of %s", field.Truncate(s, 40), strings.Join(p.enum, ", ")), Fix: p.fix}
		}
		s = p.enum[i]
	}
	return s, nil
}

// schema renders sp as the tool's JSON input schema: every spelling is a
// property (aliases say whose), required arguments with aliases and the
// alternatives become anyOf lists of required sets, and nothing else is
// allowed.
func (sp *spec) schema() map[string]any {
	props := map[string]any{}
	var required []string
	var allOf []any
	for i := range sp.params {
		p := &sp.params[i]
		props[p.name] = p.schema(p.desc)
		for _, a := range p.aliases {
			props[a] = p.schema(fmt.Sprintf("Same as %s (another spelling). %s", p.name, p.desc))
		}
		switch {
		case p.required && len(p.aliases) == 0:
			required = append(required, p.name)
		case p.required:
			var sets []any
			for _, n := range p.spellings() {
				sets = append(sets, map[string]any{"required": []string{n}})
			}
			allOf = append(allOf, map[string]any{"anyOf": sets})
		}
	}
	if len(sp.alternatives) > 0 {
		var sets []any
		for _, alt := range sp.alternatives {
			for _, set := range sp.expand(alt) {
				sets = append(sets, map[string]any{"required": set})
			}
		}
		allOf = append(allOf, map[string]any{"anyOf": sets})
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	if len(allOf) == 1 {
		s["anyOf"] = allOf[0].(map[string]any)["anyOf"]
	} else if len(allOf) > 1 {
		s["allOf"] = allOf
	}
	return s
}

// expand turns a set of canonical names into every set of spellings.
func (sp *spec) expand(names []string) [][]string {
	out := [][]string{nil}
	for _, n := range names {
		var next [][]string
		for _, set := range out {
			for _, s := range sp.param(n).spellings() {
				next = append(next, append(slices.Clone(set), s))
			}
		}
		out = next
	}
	return out
}

func (p *param) schema(desc string) map[string]any {
	s := map[string]any{"description": desc}
	switch p.kind {
	case kindInteger:
		s["type"], s["minimum"], s["maximum"] = "integer", p.min, p.max
	case kindBool:
		s["type"] = "boolean"
	case kindHeaders:
		s["type"] = "object"
		s["maxProperties"] = field.MaxHeaders
		s["additionalProperties"] = map[string]any{"anyOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		}}
	default:
		s["type"] = "string"
		if p.maxLen > 0 {
			s["maxLength"] = p.maxLen
		}
		if p.hex64 {
			s["pattern"], s["minLength"], s["maxLength"] = "^[0-9a-fA-F]{64}$", 64, 64
		}
		if len(p.enum) > 0 {
			s["enum"] = p.enum
		}
		if p.format != "" {
			s["format"] = p.format
		}
		if p.required {
			s["minLength"] = max(1, intOf(s["minLength"]))
		}
	}
	return s
}

func intOf(v any) int { n, _ := v.(int); return n }

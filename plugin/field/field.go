// Package field reads the arguments of a request — a REST body or an MCP
// tool call, both JSON objects — one field at a time, so that every error
// names the field as the caller spelled it, says what is wrong and how to
// fix it.
//
// It is the one place that knows how a whole number, a string, a list of
// strings or a set of headers is read from JSON, and the one error type
// (*Error) that the producer, the consumer, the REST API and the MCP server
// use for input that is missing or wrong. It imports only the standard
// library.
package field

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a request field that is missing or wrong: the field (as the
// caller spelled it), the problem, and the fix.
type Error struct {
	Field   string
	Problem string
	Fix     string
}

// Error reads as a sentence about the field: "priceSats is 0". The fix is
// kept apart so that each surface can show it where it belongs.
func (e *Error) Error() string { return e.Field + " " + e.Problem }

// Object is a JSON object read field by field.
type Object map[string]json.RawMessage

// ParseObject reads raw as a JSON object. Empty input and null are an
// empty object.
func ParseObject(raw []byte) (Object, error) {
	o := Object{}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return o, nil
	}
	if t[0] != '{' || json.Unmarshal(t, &o) != nil {
		return nil, &Error{"arguments", "are not a JSON object", "send the arguments as one JSON object of name to value"}
	}
	return o, nil
}

// Value is one field as given: the spelling the caller used and its raw
// JSON. A Value whose Raw is nil was not given.
type Value struct {
	Name string
	Raw  json.RawMessage
}

// Get returns the field under any of its spellings (the canonical one
// first). A field is absent when no spelling is present or the value is
// null or the empty string; two spellings with different values are an
// error, since either could be what the caller meant.
func (o Object) Get(names ...string) (Value, error) {
	var v Value
	for _, n := range names {
		rv, ok := o[n]
		if !ok || absent(rv) {
			continue
		}
		if v.Raw != nil {
			if !bytes.Equal(bytes.TrimSpace(rv), bytes.TrimSpace(v.Raw)) {
				return Value{}, &Error{n, fmt.Sprintf("and %s are both given, with different values", v.Name), "send only one of " + strings.Join(names, ", ")}
			}
			continue
		}
		v = Value{Name: n, Raw: rv}
	}
	if v.Raw == nil && len(names) > 0 {
		v.Name = names[0]
	}
	return v, nil
}

// absent reports whether a raw value counts as not given: null or "".
func absent(rv json.RawMessage) bool {
	t := bytes.TrimSpace(rv)
	return bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte(`""`))
}

// Present reports whether the field was given.
func (v Value) Present() bool { return v.Raw != nil }

// String reads a string. A NUL character is refused: no field of ours
// means to carry one, and downstream C strings and logs would cut it.
// fix, if empty, is a generic one.
func (v Value) String(fix string) (string, error) {
	if fix == "" {
		fix = "send " + v.Name + " as a JSON string"
	}
	var s string
	if err := json.Unmarshal(v.Raw, &s); err != nil {
		return "", &Error{v.Name, "must be a string", fix}
	}
	if strings.ContainsRune(s, 0) {
		return "", &Error{v.Name, "contains a NUL character", fix}
	}
	return s, nil
}

// Bool reads true or false. fix, if empty, is a generic one.
func (v Value) Bool(fix string) (bool, error) {
	if fix == "" {
		fix = "send " + v.Name + " as true or false"
	}
	var b bool
	if err := json.Unmarshal(v.Raw, &b); err != nil {
		return false, &Error{v.Name, "must be true or false", fix}
	}
	return b, nil
}

// Int reads a whole number: 50, 50.0 and 5e1 are 50; strings, fractions
// and numbers beyond int64 are refused. fix, if empty, is a generic one.
func (v Value) Int(fix string) (int64, error) {
	if fix == "" {
		fix = "send " + v.Name + " as a whole number, e.g. 50"
	}
	n, problem := parseInteger(v.Raw)
	if problem != "" {
		return 0, &Error{v.Name, problem, fix}
	}
	return n, nil
}

func parseInteger(raw json.RawMessage) (int64, string) {
	s := strings.TrimSpace(string(raw))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, ""
	}
	if strings.HasPrefix(s, `"`) {
		return 0, "must be a number, not a string (send 50, not \"50\")"
	}
	var num json.Number
	if json.Unmarshal(raw, &num) != nil {
		return 0, "must be a whole number"
	}
	f, err := strconv.ParseFloat(num.String(), 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, "must be a whole number"
	case err != nil || math.Abs(f) >= 1<<63:
		return 0, "is out of range (far too large)"
	case f != math.Trunc(f):
		return 0, "must be a whole number, without a fraction"
	}
	return int64(f), ""
}

// Strings reads a list of strings. fix, if empty, is a generic one.
func (v Value) Strings(fix string) ([]string, error) {
	if fix == "" {
		fix = `send a list such as ["api.example.com", "*.example.org"]`
	}
	var list []string
	if err := json.Unmarshal(v.Raw, &list); err != nil {
		return nil, &Error{v.Name, "must be a list of strings", fix}
	}
	for _, s := range list {
		if strings.ContainsRune(s, 0) {
			return nil, &Error{v.Name, "holds a string with a NUL character", fix}
		}
	}
	return list, nil
}

// MaxHeaders bounds the header names a caller may ask us to send on to a
// target.
const MaxHeaders = 64

// Headers reads an object of header names to a string or a list of
// strings, at most MaxHeaders names. Names must be plain tokens and values may
// hold no CR, LF or NUL, so nothing given here can split a request.
func (v Value) Headers() (http.Header, error) {
	const fix = `send an object such as {"Accept": "application/json", "X-Tag": ["a", "b"]}`
	var m map[string]json.RawMessage
	if json.Unmarshal(v.Raw, &m) != nil || m == nil {
		return nil, &Error{v.Name, "must be an object of header names to strings or lists of strings", fix}
	}
	if len(m) > MaxHeaders {
		return nil, &Error{v.Name, fmt.Sprintf("has %d headers; at most %d are allowed", len(m), MaxHeaders), "send fewer headers"}
	}
	h := http.Header{}
	for k, rv := range m {
		if k == "" || !utf8.ValidString(k) || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == ':' || r >= 0x7f }) {
			return nil, &Error{v.Name, fmt.Sprintf("has an invalid header name %q", Truncate(k, 40)), "use plain header names such as Accept"}
		}
		var one string
		if json.Unmarshal(rv, &one) == nil {
			h.Add(k, one)
			continue
		}
		var many []string
		if json.Unmarshal(rv, &many) != nil {
			return nil, &Error{v.Name, fmt.Sprintf("header %s is neither a string nor a list of strings", k), fix}
		}
		for _, s := range many {
			h.Add(k, s)
		}
	}
	for k, vs := range h {
		for _, s := range vs {
			if strings.ContainsAny(s, "\r\n\x00") {
				return nil, &Error{v.Name, "header " + k + " holds a line break or NUL", "remove CR, LF and NUL from header values"}
			}
		}
	}
	return h, nil
}

// Truncate shortens s to at most n bytes on a rune boundary, marking the
// cut with an ellipsis, so that an error can quote what it refuses without
// echoing all of it.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

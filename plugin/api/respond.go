package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/field"
)

// ErrorBody is every API error's JSON shape: what went wrong, which field
// (if one), and how to fix it.
type ErrorBody = apiclient.ErrorBody

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteError writes an ErrorBody.
func WriteError(w http.ResponseWriter, status int, e ErrorBody) {
	if e.Code == "" {
		e.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	}
	WriteJSON(w, status, e)
}

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 64 << 10

// fields is a JSON request body read field by field (see package field),
// so that each error names the field and so that camelCase and snake_case
// spellings both work.
type fields field.Object

// decodeObject reads a JSON object body of at most MaxBodyBytes.
func decodeObject(w http.ResponseWriter, r *http.Request) (fields, *ErrorBody) {
	return decodeObjectN(w, r, MaxBodyBytes)
}

// decodeObjectN reads a JSON object body of at most limit bytes.
func decodeObjectN(w http.ResponseWriter, r *http.Request, limit int64) (fields, *ErrorBody) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var f fields
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&f); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, &ErrorBody{Error: fmt.Sprintf("request body is larger than %d bytes", limit), Code: "body_too_large", Fix: "send a smaller JSON object"}
		case err.Error() == "EOF":
			return nil, &ErrorBody{Error: "request body is empty", Code: "invalid_json", Fix: "send a JSON object"}
		}
		return nil, &ErrorBody{Error: "request body is not a JSON object: " + err.Error(), Code: "invalid_json", Fix: "send a JSON object such as {\"resource\": \"/x\", \"priceSats\": 10}"}
	}
	if f == nil {
		return nil, &ErrorBody{Error: "request body is null", Code: "invalid_json", Fix: "send a JSON object"}
	}
	return f, nil
}

// fieldError is the body of a request field that is missing or wrong.
func fieldError(fe *field.Error) *ErrorBody {
	return &ErrorBody{Error: fe.Error(), Code: "invalid_field", Field: fe.Field, Fix: fe.Fix}
}

// read looks up a field and reads it with parse, turning its error into a
// body.
func read[T any](f fields, parse func(field.Value) (T, error), names ...string) (v T, present bool, e *ErrorBody) {
	fv, err := field.Object(f).Get(names...)
	if err == nil && fv.Present() {
		present = true
		v, err = parse(fv)
	}
	var fe *field.Error
	if errors.As(err, &fe) {
		return v, present, fieldError(fe)
	}
	return v, present, nil
}

// str reads an optional string field.
func (f fields) str(names ...string) (string, *ErrorBody) {
	s, _, e := read(f, func(v field.Value) (string, error) { return v.String("") }, names...)
	return s, e
}

// int64 reads an optional integer field; present reports whether it was.
func (f fields) int64(names ...string) (n int64, present bool, e *ErrorBody) {
	return read(f, func(v field.Value) (int64, error) { return v.Int("") }, names...)
}

// boolean reads an optional true/false field.
func (f fields) boolean(names ...string) (bool, *ErrorBody) {
	b, _, e := read(f, func(v field.Value) (bool, error) { return v.Bool("") }, names...)
	return b, e
}

// headers reads an optional object of header names to a string or a list
// of strings.
func (f fields) headers(name string) (http.Header, *ErrorBody) {
	h, _, e := read(f, func(v field.Value) (http.Header, error) { return v.Headers() }, name)
	return h, e
}

// strList reads an optional list of strings.
func (f fields) strList(name string) ([]string, bool, *ErrorBody) {
	return read(f, func(v field.Value) ([]string, error) { return v.Strings("") }, name)
}

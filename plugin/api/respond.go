package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ErrorBody is every API error's JSON shape: what went wrong, which field
// (if one), and how to fix it.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	Field string `json:"field,omitempty"`
	Fix   string `json:"fix,omitempty"`
}

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

// fields is a JSON object read field by field, so that each error names
// the field and so that camelCase and snake_case spellings both work.
type fields map[string]json.RawMessage

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

// raw returns the first present spelling of a field.
func (f fields) raw(names ...string) (json.RawMessage, string, bool) {
	for _, n := range names {
		if v, ok := f[n]; ok && string(v) != "null" {
			return v, n, true
		}
	}
	return nil, names[0], false
}

// str reads an optional string field.
func (f fields) str(names ...string) (string, *ErrorBody) {
	v, name, ok := f.raw(names...)
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", &ErrorBody{Error: name + " must be a string", Code: "invalid_field", Field: name, Fix: "send " + name + " as a JSON string"}
	}
	return s, nil
}

// int64 reads an optional integer field; present reports whether it was.
func (f fields) int64(names ...string) (n int64, present bool, e *ErrorBody) {
	v, name, ok := f.raw(names...)
	if !ok {
		return 0, false, nil
	}
	s := strings.TrimSpace(string(v))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fix := "send " + name + " as a whole number, e.g. 50"
		if strings.HasPrefix(s, `"`) {
			return 0, true, &ErrorBody{Error: name + " must be a number, not a string", Code: "invalid_field", Field: name, Fix: fix}
		}
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, true, &ErrorBody{Error: name + " is out of range", Code: "invalid_field", Field: name, Fix: fix}
		}
		return 0, true, &ErrorBody{Error: name + " must be a whole number", Code: "invalid_field", Field: name, Fix: fix}
	}
	return n, true, nil
}

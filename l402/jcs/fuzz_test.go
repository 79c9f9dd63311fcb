package jcs

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzCanonicalize: any input either fails with ErrInvalid or canonicalizes
// to valid JSON that is its own canonical form and decodes to the same
// value as the input.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"amount":"21","currency":"sat","methodDetails":{"invoice":"lnbcrt1","network":"regtest","paymentHash":"ab"}}`,
		`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001]}`,
		`{"\u20ac":1,"\r":2,"\ufb33":3,"\ud83d\ude00":4}`,
		`"\u2028<>&"`, `[]`, `{}`, `-0`, `1e400`, `"\ud800"`, `{"a":1,"a":2}`, `[[[[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		again, err := Canonicalize(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %q → %q %v", out, again, err)
		}
		var a, b any
		if json.Unmarshal(in, &a) == nil && json.Unmarshal(out, &b) == nil {
			if !reflect.DeepEqual(a, b) { // floats compare with ==, so -0 equals 0
				t.Fatalf("value changed: %v vs %v", a, b)
			}
		}
	})
}

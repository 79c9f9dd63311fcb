package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/l402d/l402d/plugin/field"
)

var testSpec = spec{params: []param{
	{name: "resource", kind: kindString, required: true, maxLen: 8, fix: "fix-resource"},
	{name: "priceSats", aliases: []string{"price_sats"}, kind: kindInteger, required: true, min: 1, max: 1000, fix: "fix-price"},
	{name: "maxSats", aliases: []string{"max_sats"}, kind: kindInteger, min: 0, max: 1 << 60, fix: "fix-max"},
	{name: "hash", kind: kindString, hex64: true, fix: "fix-hash"},
	{name: "method", kind: kindString, enum: []string{"GET", "POST"}, fix: "fix-method"},
	{name: "headers", kind: kindHeaders},
}}

func TestParseArgs(t *testing.T) {
	hash := strings.Repeat("aB", 32)
	for _, tc := range []struct {
		in          string
		want        values // nil: an error is expected
		field, text string
	}{
		{`{"resource":"/a","priceSats":50}`, values{"resource": "/a", "priceSats": int64(50)}, "", ""},
		{`{"resource":"/a","price_sats":50.0}`, values{"resource": "/a", "priceSats": int64(50)}, "", ""},
		{`{"resource":"/a","priceSats":5e1,"maxSats":0}`, values{"resource": "/a", "priceSats": int64(50), "maxSats": int64(0)}, "", ""},
		{`{"resource":"/a","priceSats":50,"price_sats":50}`, values{"resource": "/a", "priceSats": int64(50)}, "", ""},
		{`{"resource":"/a","priceSats":7,"hash":null,"method":"","headers":null}`, values{"resource": "/a", "priceSats": int64(7)}, "", ""},
		{`{"resource":"/a","priceSats":7,"method":"post"}`, values{"resource": "/a", "priceSats": int64(7), "method": "POST"}, "", ""},
		{`{"resource":"/a","priceSats":7,"hash":"` + hash + `"}`, values{"resource": "/a", "priceSats": int64(7), "hash": hash}, "", ""},
		{`{"resource":"/a","priceSats":7,"headers":{"A":"1","B":["2","3"]}}`, values{"resource": "/a", "priceSats": int64(7), "headers": http.Header{"A": {"1"}, "B": {"2", "3"}}}, "", ""},
		{`{"priceSats":50}`, nil, "resource", "is required"},
		{`{"resource":"","priceSats":50}`, nil, "resource", "is required"},
		{`{"resource":" ","priceSats":50}`, nil, "resource", "is empty"},
		{`{"resource":"/a"}`, nil, "priceSats", "is required"},
		{`{"resource":"/a","priceSats":0}`, nil, "priceSats", "greater than 0"},
		{`{"resource":"/a","price_sats":-3}`, nil, "price_sats", "greater than 0"},
		{`{"resource":"/a","priceSats":1001}`, nil, "priceSats", "at most 1000"},
		{`{"resource":"/a","priceSats":1e300}`, nil, "priceSats", "out of range"},
		{`{"resource":"/a","priceSats":1e400}`, nil, "priceSats", "out of range"},
		{`{"resource":"/a","priceSats":-9223372036854775809}`, nil, "priceSats", "out of range"},
		{`{"resource":"/a","priceSats":"50"}`, nil, "priceSats", "not a string"},
		{`{"resource":"/a","priceSats":2.5}`, nil, "priceSats", "whole number"},
		{`{"resource":"/a","priceSats":true}`, nil, "priceSats", "whole number"},
		{`{"resource":"/a","priceSats":[1]}`, nil, "priceSats", "whole number"},
		{`{"resource":"/a","priceSats":5,"price_sats":6}`, nil, "price_sats", "both given"},
		{`{"resource":"/a","priceSats":5,"maxSats":-1}`, nil, "maxSats", "at least 0"},
		{`{"resource":"/aaaaaaaa","priceSats":5}`, nil, "resource", "9 bytes"},
		{`{"resource":7,"priceSats":5}`, nil, "resource", "must be a string"},
		{`{"resource":"/a\u0000","priceSats":5}`, nil, "resource", "NUL"},
		{`{"resource":"/a","priceSats":5,"hash":"xyz"}`, nil, "hash", "64 hex"},
		{`{"resource":"/a","priceSats":5,"method":"BREW"}`, nil, "method", "one of GET, POST"},
		{`{"resource":"/a","priceSats":5,"headers":"x"}`, nil, "headers", "object"},
		{`{"resource":"/a","priceSats":5,"headers":{"Bad Name":"x"}}`, nil, "headers", "invalid header name"},
		{`{"resource":"/a","priceSats":5,"headers":{"A":1}}`, nil, "headers", "neither a string"},
		{`{"resource":"/a","priceSats":5,"headers":{"A":"x\ny"}}`, nil, "headers", "line break"},
		{`{"resource":"/a","priceSats":5,"prise":1}`, nil, "prise", "not an argument"},
		{`[1,2]`, nil, "arguments", "not a JSON object"},
		{`"x"`, nil, "arguments", "not a JSON object"},
		{`{"resource":`, nil, "arguments", "not a JSON object"},
	} {
		got, err := testSpec.parseArgs(json.RawMessage(tc.in))
		if tc.want != nil {
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s: %v %v, want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		var ae *field.Error
		if !errors.As(err, &ae) || ae.Field != tc.field || !strings.Contains(ae.Problem, tc.text) || ae.Fix == "" {
			t.Errorf("%s: error %#v, want field %q containing %q", tc.in, err, tc.field, tc.text)
		}
	}
	for _, empty := range []string{"", "null", " "} {
		if _, err := testSpec.parseArgs(json.RawMessage(empty)); err == nil || err.(*field.Error).Field != "resource" {
			t.Errorf("%q: %v", empty, err)
		}
	}
}

func TestAlternatives(t *testing.T) {
	sp := spec{params: []param{
		{name: "macaroon", kind: kindString, fix: "m"}, {name: "preimage", kind: kindString, fix: "p"},
		{name: "challenge", aliases: []string{"wwwAuthenticate"}, kind: kindString, fix: "c"},
	}, alternatives: [][]string{{"macaroon", "preimage"}, {"challenge"}}}
	for in, want := range map[string]string{
		`{"macaroon":"a","preimage":"b"}`:   "",
		`{"wwwAuthenticate":"x"}`:           "",
		`{}`:                                "macaroon is required",
		`{"preimage":"b"}`:                  "macaroon is required with preimage",
		`{"macaroon":"a","challenge":"x"}`:  "challenge cannot be combined with macaroon and preimage",
		`{"macaroon":"","challenge":"x"}`:   "",
		`{"macaroon":null,"preimage":"  "}`: "macaroon is required",
	} {
		_, err := sp.parseArgs(json.RawMessage(in))
		if got := fmt.Sprint(err); (want == "" && err != nil) || (want != "" && !strings.Contains(got, want)) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	got, _ := json.Marshal(sp.schema())
	if want := `"anyOf":[{"required":["macaroon","preimage"]},{"required":["challenge"]},{"required":["wwwAuthenticate"]}]`; !strings.Contains(string(got), want) {
		t.Errorf("schema %s lacks %s", got, want)
	}
}

func TestDigestIsCanonical(t *testing.T) {
	a, _ := testSpec.parseArgs(json.RawMessage(`{"resource":"/a","priceSats":50,"method":"get"}`))
	b, _ := testSpec.parseArgs(json.RawMessage(`{"method":"GET","price_sats":50.0,"resource":"/a"}`))
	c, _ := testSpec.parseArgs(json.RawMessage(`{"method":"GET","price_sats":51,"resource":"/a"}`))
	if argsDigest("t", a) != argsDigest("t", b) || argsDigest("t", a) == argsDigest("t", c) || argsDigest("t", a) == argsDigest("u", a) {
		t.Fatal("digest is not canonical over spellings, or ignores a value or the tool")
	}
}

// toolSpecs are every tool's argument lists.
func toolSpecs() map[string]*spec {
	s := &Server{cfg: Config{MaxPriceSats: 1_000_000, ApprovalThresholdSats: 100}}
	out := map[string]*spec{}
	for _, t := range append(s.producerTools(), s.consumerTools()...) {
		out[t.def.Name] = &t.spec
	}
	return out
}

func TestToolSpecsAreConsistent(t *testing.T) {
	for name, sp := range toolSpecs() {
		seen := map[string]bool{}
		for _, p := range sp.params {
			for _, n := range p.spellings() {
				if seen[n] {
					t.Errorf("%s: %s spelled twice", name, n)
				}
				seen[n] = true
			}
			if p.desc == "" || (p.fix == "" && p.kind != kindHeaders) {
				t.Errorf("%s.%s has no description or fix", name, p.name)
			}
			if p.kind == kindInteger && p.min > p.max {
				t.Errorf("%s.%s: min %d > max %d", name, p.name, p.min, p.max)
			}
		}
		for _, alt := range sp.alternatives {
			for _, n := range alt {
				sp.param(n) // panics on a name that is not a parameter
			}
		}
		if _, err := json.Marshal(sp.schema()); err != nil {
			t.Errorf("%s: schema: %v", name, err)
		}
	}
}

// FuzzParseArgs: no input makes any tool's argument parsing panic, and
// every failure is an *field.Error naming a field.
func FuzzParseArgs(f *testing.F) {
	for _, seed := range []string{
		`{"resource":"/api/weather","priceSats":50,"description":"7-day forecast"}`,
		`{"resource":"/x","price_sats":1e308}`,
		`{"macaroon":"AgEL","preimage":"` + strings.Repeat("0", 64) + `"}`,
		`{"token":"L402 AgEL:` + strings.Repeat("f", 64) + `"}`,
		`{"url":"https://example.com/a","method":"post","headers":{"A":["b","c"]},"body":"x","max_sats":10}`,
		`{"invoice":"lnbcrt1","macaroon":"x","challenge":"L402 macaroon=\"a\", invoice=\"b\""}`,
		`{"amount":1,"expiry":-1,"memo":null}`,
		`{"state":"in_flight","kind":"ACCESS","since":"2026-01-01T00:00:00Z","limit":1000,"cursor":"x"}`,
		`{"paymentHash":"` + strings.Repeat("a", 64) + `","invoice":"y"}`,
		`[]`, `null`, ``, `{"a":{"b":[1,2,{"c":null}]}}`, "{\"resource\":\"\xff\",\"priceSats\":-0}",
	} {
		f.Add([]byte(seed))
	}
	specs := toolSpecs()
	f.Fuzz(func(t *testing.T, raw []byte) {
		for name, sp := range specs {
			v, err := sp.parseArgs(raw)
			if err != nil {
				var ae *field.Error
				if !errors.As(err, &ae) || ae.Field == "" || ae.Problem == "" {
					t.Fatalf("%s: %#v is not an *field.Error naming a field", name, err)
				}
				continue
			}
			for k, x := range v {
				switch x.(type) {
				case string, int64, http.Header:
				default:
					t.Fatalf("%s: %s is a %T", name, k, x)
				}
			}
			_ = argsDigest(name, v)
		}
	})
}

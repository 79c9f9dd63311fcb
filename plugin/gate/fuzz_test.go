package gate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseServices feeds the services-file parser arbitrary bytes: it
// must never panic, must explain every refusal, and what it accepts must
// compile into services the gate can serve.
func FuzzParseServices(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		fullFile, testServices, "", "services: []", "services:\n", "- a", "services: {a: b}",
		"services:\n  - name: a\n    price: 1\n    pricing:\n      - {path: /x*, price: 2}\n",
		"x: &a [*a]\nservices: *a\n", "services:\n  - <<: {name: a}\n", "services:\n  - name: a\n    auth: freebie 99999999999\n",
		"services:\n  - name: a\n    price: 1e400\n", "services:\n  - {name: a, host: '*.', price: 1}\n",
		"services:\n  - name: a\n    price: 1\n    rate_limit: {rate: .nan}\n",
		"services:\n  - name: a\n    price: 1\n    prepaid_credit: 100\n    schemes: [l402, mpp]\n    session_deposit: 50\n",
		"services:\n  - name: a\n    price: 1\n    pricer_url: http://127.0.0.1:9/p\n    pricer_max: 9\n    pricer_fallback: 3\n    pricer_body: 64\n    pricer_headers: [X-Model, Cookie]\n    pricer_timeout: 1s\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseServices(data, ParseOptions{Name: "f.yaml"})
		if err != nil {
			ce, ok := err.(ConfigErrors)
			if !ok || len(ce) == 0 {
				t.Fatalf("error %T %v is not ConfigErrors", err, err)
			}
			for _, e := range ce {
				if e.Problem == "" || !strings.HasPrefix(e.Error(), "f.yaml") {
					t.Fatalf("unexplained error %+v", e)
				}
			}
			return
		}
		for _, svc := range s.list {
			if len(svc.rules) == 0 || svc.rules[len(svc.rules)-1].pat != svc.path {
				t.Fatalf("service %q: rules %v do not end with its path", svc.cfg.Name, svc.rules)
			}
			for _, r := range svc.rules {
				if svc.cfg.Auth != AuthOff && r.price <= 0 {
					t.Fatalf("service %q charges %d", svc.cfg.Name, r.price)
				}
				if !svc.path.covers(r.pat) {
					t.Fatalf("rule %s outside %s", r.resource, svc.path)
				}
			}
			_ = svc.ruleFor(svc.path.lit)
			_ = s.match("x", svc.path.lit)
		}
		c := newCatalog(s, "", 0, func(svc *service) schemeSet { return svc.schemes })
		if _, err := c.manifestJSON(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.openAPIJSON(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseQuoteRequest(f *testing.F) {
	f.Add([]byte(`{"service":"api"}`))
	f.Add([]byte(`{"service":"api","tier":1,"capabilities":["read"],"constraints":{"valid_until":1735689600},"max_price_msat":1000,"resource":"/api/*"}`))
	f.Add([]byte(`{"service":5}`))
	f.Add([]byte(`[]`))
	svcs, err := ParseServices([]byte(testServices), ParseOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuoteRequest(b)
		if err != nil {
			var qe *quoteError
			if !errors.As(err, &qe) || qe.Code == "" || qe.Msg == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		svc, rl, _, qe := q.resolve(svcs, func(s *service) schemeSet { return s.schemes })
		if qe != nil {
			if qe.Code == "" || qe.status == 0 {
				t.Fatalf("refusal without a code: %+v", qe)
			}
			return
		}
		// What a quote sells is one of the service's own rules, at its price.
		if svc.cfg.Name != q.Service || rl.price <= 0 || (q.MaxPriceMsat > 0 && rl.price*1000 > q.MaxPriceMsat) {
			t.Fatalf("%+v sold %s at %d", q, rl.resource, rl.price)
		}
	})
}

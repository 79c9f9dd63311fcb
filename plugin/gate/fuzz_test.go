package gate

import (
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
		if _, err := discoveryJSON(s, 0, func(svc *service) schemeSet { return svc.schemes }); err != nil {
			t.Fatal(err)
		}
	})
}

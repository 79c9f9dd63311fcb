package gate

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const fullFile = `# every key
discovery: true
services:
  - name: weather
    host: API.example.com
    path: /weather/*
    upstream: http://127.0.0.1:8080/base
    protocol: auto
    price: 10
    pricing:
      - path: /weather/premium/*
        price: 100
      - path: /weather/premium/today
        price: 150
    token_validity: 1h
    capabilities: [forecast, history]
    auth: on
    whitelist: [/weather/health, /weather/public/*]
    timeout: 5s
    rate_limit: {rate: 10, burst: 20}
    description: Weather forecasts
  - name: grpc
    path: /grpc.health.v1.Health/*
    upstream: h2c://127.0.0.1:9000
    price: 3
    auth: freebie 2
    freeWindow: 1h
    tokenValidity: never
    rate_limit: off
  - name: open
    upstream: https://open.internal
    auth: off
`

func TestParseServicesFull(t *testing.T) {
	s, err := ParseServices([]byte(fullFile), ParseOptions{Name: "services.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || !s.discovery || s.hash == ([32]byte{}) {
		t.Fatalf("services %d, discovery %v", s.Len(), s.discovery)
	}
	w := s.list[0]
	c := w.cfg
	if c.Name != "weather" || w.host.exact != "api.example.com" || c.Path != "/weather/*" || c.PriceSats != 10 ||
		c.TokenValidity != time.Hour || len(c.Capabilities) != 2 || c.Auth != AuthOn || len(w.whitelist) != 2 ||
		c.Timeout != 5*time.Second || !w.hasTokenLimit || w.tokenLimit != 10 || w.tokenBurst != 20 || c.Description != "Weather forecasts" ||
		w.upstream.String() != "http://127.0.0.1:8080/base" || c.Protocol != ProtocolAuto {
		t.Fatalf("weather: %+v", c)
	}
	// Most specific first, the service's own path last.
	var got []string
	for _, r := range w.rules {
		got = append(got, r.resource)
	}
	if strings.Join(got, " ") != "/weather/premium/today /weather/premium/* /weather/*" {
		t.Fatalf("rules %v", got)
	}
	g := s.list[1]
	if g.cfg.Protocol != ProtocolH2C || g.upstream.Scheme != "http" || g.cfg.Auth != AuthFreebie || g.cfg.FreeRequests != 2 ||
		g.cfg.FreeWindow != time.Hour || g.cfg.TokenValidity >= 0 || !g.hasTokenLimit || g.tokenBurst != 0 {
		t.Fatalf("grpc: %+v", g.cfg)
	}
	o := s.list[2]
	if o.cfg.Auth != AuthOff || o.cfg.Path != DefaultPath || o.cfg.Timeout != DefaultTimeout || o.cfg.FreeWindow != DefaultFreeWindow {
		t.Fatalf("open: %+v", o.cfg)
	}
}

func TestParseServicesErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		// want lists "line:field" or "line:" prefixes plus a word of the
		// problem, one per expected error, in order.
		want []string
	}{
		{"empty", ``, []string{"0::is empty"}},
		{"not a mapping", `- a`, []string{"1::want a mapping"}},
		{"no services key", `discovery: true`, []string{"1:services:is missing"}},
		{"syntax", "services:\n  - name: a\n    price: 1\n    path: /x: y\n", []string{"4::not valid YAML"}},
		{"syntax in block", "services:\n  - name: a\n    path: [/x\n", []string{"2::not valid YAML"}},
		{"tab indentation", "services:\n\t- name: a\n", []string{"2::not valid YAML"}},
		{"unknown key", "services:\n  - name: a\n    price: 1\n    prise: 2\n", []string{"4:services[0].prise:not a known key"}},
		{"unknown top key", "servces: []\n", []string{"1:servces:not a known key"}},
		{"duplicate key", "services:\n  - name: a\n    price: 1\n    price: 2\n", []string{"4:services[0].price:set twice (first on line 3)"}},
		{"price not a number", "services:\n  - name: a\n    price: ten\n", []string{"3:services[0].price:want a whole number"}},
		{"price zero", "services:\n  - name: a\n    price: 0\n", []string{"3:services[0].price:is 0"}},
		{"price missing", "services:\n  - name: a\n", []string{"2:services[0].price:is missing"}},
		{"price over max", "services:\n  - name: a\n    price: 2000000\n", []string{"3:services[0].price:is 2000000 sats"}},
		{"name missing", "services:\n  - price: 1\n", []string{"2:services[0].name:is missing"}},
		{"bad name", "services:\n  - name: 'a b'\n    price: 1\n", []string{"2:services[0].name:not a valid name"}},
		{"duplicate name", "services:\n  - name: a\n    path: /a/*\n    price: 1\n  - name: a\n    path: /b/*\n    price: 1\n", []string{"5:services[1].name:also the name"}},
		{"bad path", "services:\n  - name: a\n    path: api/*\n    price: 1\n", []string{"3:services[0].path:does not start with /"}},
		{"star in middle", "services:\n  - name: a\n    path: /a/*/b\n    price: 1\n", []string{"3:services[0].path:not the last"}},
		{"unclean path", "services:\n  - name: a\n    path: /a/../b/*\n    price: 1\n", []string{"3:services[0].path:not a clean path"}},
		{"bad host", "services:\n  - name: a\n    host: http://x.com\n    price: 1\n", []string{"3:services[0].host:not a host name"}},
		{"host with port", "services:\n  - name: a\n    host: x.com:80\n    price: 1\n", []string{"3:services[0].host:not a host name"}},
		{"bad upstream scheme", "services:\n  - name: a\n    upstream: ftp://x\n    price: 1\n", []string{"3:services[0].upstream:has scheme"}},
		{"upstream credentials", "services:\n  - name: a\n    upstream: http://u:p@x\n    price: 1\n", []string{"3:services[0].upstream:user name or password"}},
		{"h2c over https", "services:\n  - name: a\n    upstream: https://x\n    protocol: h2c\n    price: 1\n", []string{"4:services[0].protocol:h2c but the upstream is https"}},
		{"bad protocol", "services:\n  - name: a\n    protocol: spdy\n    price: 1\n", []string{"3:services[0].protocol:is \"spdy\""}},
		{"bad auth", "services:\n  - name: a\n    auth: maybe\n    price: 1\n", []string{"3:services[0].auth:is \"maybe\""}},
		{"freebie zero", "services:\n  - name: a\n    auth: freebie 0\n    price: 1\n", []string{"3:services[0].auth:positive number"}},
		{"bad duration", "services:\n  - name: a\n    timeout: 30\n    price: 1\n", []string{"3:services[0].timeout:want a duration"}},
		{"negative duration", "services:\n  - name: a\n    token_validity: -1h\n    price: 1\n", []string{"3:services[0].token_validity:negative"}},
		{"pricing outside", "services:\n  - name: a\n    path: /a/*\n    price: 1\n    pricing:\n      - path: /b/*\n        price: 5\n", []string{"6:services[0].pricing[0].path:outside the service's path"}},
		{"pricing duplicate", "services:\n  - name: a\n    price: 1\n    pricing:\n      - path: /p/*\n        price: 5\n      - path: /p/*\n        price: 6\n", []string{"7:services[0].pricing[1].path:also priced"}},
		{"pricing missing price", "services:\n  - name: a\n    price: 1\n    pricing:\n      - path: /p/*\n", []string{"5:services[0].pricing[0].price:is missing"}},
		{"pricing in whitelist", "services:\n  - name: a\n    price: 1\n    whitelist: [/free/*]\n    pricing:\n      - path: /free/paid\n        price: 5\n", []string{"6:services[0].pricing[0].path:inside whitelisted"}},
		{"whitelist outside", "services:\n  - name: a\n    path: /a/*\n    price: 1\n    whitelist: [/b]\n", []string{"5:services[0].whitelist[0]:outside"}},
		{"unknown scheme", "services:\n  - name: a\n    price: 1\n    schemes: [l402, bolt12]\n", []string{"4:services[0].schemes[1]:\"bolt12\" is not a payment scheme"}},
		{"scheme twice", "services:\n  - name: a\n    price: 1\n    schemes: [mpp, MPP]\n", []string{"4:services[0].schemes[1]:\"MPP\" is listed twice"}},
		{"no scheme", "services:\n  - name: a\n    price: 1\n    schemes: []\n", []string{"4:services[0].schemes:is empty"}},
		{"meter without session", "services:\n  - name: a\n    price: 1\n    meter: kib\n    meter_price_msat: 10\n", []string{"4:services[0].meter:needs session_deposit"}},
		{"bad meter", "services:\n  - name: a\n    price: 1\n    session_deposit: 100\n    meter: byte\n", []string{"5:services[0].meter:is \"byte\""}},
		{"meter price missing", "services:\n  - name: a\n    price: 1\n    session_deposit: 100\n    meter: second\n", []string{"2:services[0].meter_price_msat:is 0"}},
		{"meter price alone", "services:\n  - name: a\n    price: 1\n    meter_price_msat: 5\n", []string{"2:services[0].meter:is missing"}},
		{"meter block overflows", "services:\n  - name: a\n    price: 1\n    session_deposit: 100\n    meter: kib\n    meter_price_msat: 9000000000000\n    meter_block: 1000000000\n", []string{"7:services[0].meter_block:overflows"}},
		{"bad capability", "services:\n  - name: a\n    price: 1\n    capabilities: ['a,b']\n", []string{"4:services[0].capabilities[0]:not a valid capability"}},
		{"bad rate", "services:\n  - name: a\n    price: 1\n    rate_limit: {rate: fast}\n", []string{"4:services[0].rate_limit.rate:requests per second"}},
		{"shadowed", "services:\n  - name: all\n    price: 1\n  - name: api\n    path: /api/*\n    price: 1\n", []string{"5:services[1].path:can never match"}},
		{"alias", "x: &a 1\nservices:\n  - name: a\n    price: *a\n", []string{"1:x:not a known key", "4:services[0].price:alias"}},
		{"services not a list", "services: {name: a}\n", []string{"1:services:want a list"}},
		{"several errors", "services:\n  - name: a\n    price: -1\n    timeout: x\n  - name: ''\n    price: 1\n",
			[]string{"3:services[0].price:", "4:services[0].timeout:", "5:services[1].name:is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseServices([]byte(tt.yaml), ParseOptions{Name: "s.yaml"})
			var ce ConfigErrors
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want ConfigErrors", err)
			}
			if len(ce) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(ce), len(tt.want), err)
			}
			for i, w := range tt.want {
				parts := strings.SplitN(w, ":", 3)
				e := ce[i]
				if got := strings.TrimSpace(parts[0]); got != itoa(e.Line) || e.Field != parts[1] || !strings.Contains(e.Problem, parts[2]) || e.File != "s.yaml" {
					t.Errorf("error %d = line %d field %q problem %q; want %s", i, e.Line, e.Field, e.Problem, w)
				}
				if e.Line > 0 && !strings.HasPrefix(e.Error(), "s.yaml:"+itoa(e.Line)+": ") {
					t.Errorf("message %q does not start with the file and line", e.Error())
				}
				if e.Fix == "" && !strings.Contains(e.Problem, "too many") {
					t.Errorf("error %q has no fix", e.Error())
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseServicesAuthForms(t *testing.T) {
	for _, tt := range []struct {
		v    string
		mode AuthMode
		free int
	}{{"on", AuthOn, 0}, {"true", AuthOn, 0}, {"off", AuthOff, 0}, {"false", AuthOff, 0}, {`"freebie 3"`, AuthFreebie, 3}, {"FREEBIE 1", AuthFreebie, 1}} {
		s, err := ParseServices([]byte("services:\n  - name: a\n    price: 1\n    auth: "+tt.v+"\n"), ParseOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tt.v, err)
		}
		if c := s.list[0].cfg; c.Auth != tt.mode || c.FreeRequests != tt.free {
			t.Errorf("auth %s = %s %d", tt.v, c.Auth, c.FreeRequests)
		}
	}
}

func TestParseServicesEmptyList(t *testing.T) {
	for _, y := range []string{"services: []\n", "services:\n", "discovery: false\nservices: []\n"} {
		s, err := ParseServices([]byte(y), ParseOptions{})
		if err != nil || s.Len() != 0 {
			t.Fatalf("%q: %v", y, err)
		}
	}
}

func TestNewServicesFromGo(t *testing.T) {
	s, err := NewServices(File{Services: []ServiceConfig{{Name: "api", Path: "/api/*", PriceSats: 5}}}, ParseOptions{})
	if err != nil || s.Len() != 1 || s.hash != ([32]byte{}) {
		t.Fatal(err)
	}
	_, err = NewServices(File{Services: []ServiceConfig{{Name: "api", PriceSats: -5}}}, ParseOptions{})
	var ce ConfigErrors
	if !errors.As(err, &ce) || ce[0].Line != 0 || ce[0].Field != "services[0].price" || strings.HasPrefix(err.Error(), "line") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadServicesTooBig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadServices(p, ParseOptions{}); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("err = %v", err)
	}
}

package gate

import (
	"testing"
)

func mustServices(t testing.TB, y string) *Services {
	t.Helper()
	s, err := ParseServices([]byte(y), ParseOptions{Name: "test.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pat, path string
		want      bool
	}{
		{"/*", "/", true},
		{"/*", "/anything/at/all", true},
		{"/api/*", "/api/", true},
		{"/api/*", "/api/x", true},
		{"/api/*", "/api", false},
		{"/api/*", "/apix", false},
		{"/api*", "/api", true},
		{"/api*", "/apix", true},
		{"/api/x", "/api/x", true},
		{"/api/x", "/api/x/", false},
		{"/api/x", "/api/xy", false},
	}
	for _, tt := range tests {
		p, problem := parsePattern(tt.pat)
		if problem != "" {
			t.Fatalf("%s: %s", tt.pat, problem)
		}
		if got := p.match(tt.path); got != tt.want {
			t.Errorf("%s matches %s = %v, want %v", tt.pat, tt.path, got, tt.want)
		}
		if p.String() != tt.pat {
			t.Errorf("String() = %q, want %q", p.String(), tt.pat)
		}
	}
}

func TestPatternCovers(t *testing.T) {
	tests := []struct {
		p, q string
		want bool
	}{
		{"/*", "/a/*", true},
		{"/a/*", "/a/b", true},
		{"/a/*", "/a/*", true},
		{"/a/*", "/b/*", false},
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b*", false},
		{"/a/b/*", "/a/*", false},
	}
	for _, tt := range tests {
		p, _ := parsePattern(tt.p)
		q, _ := parsePattern(tt.q)
		if got := p.covers(q); got != tt.want {
			t.Errorf("%s covers %s = %v, want %v", tt.p, tt.q, got, tt.want)
		}
	}
}

func TestIsCleanPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/a/b": true, "/a/b/": true, "/a.b/c..d": true,
		"": false, "a": false, "//a": false, "/a//b": false, "/a/./b": false, "/a/../b": false, "/a/..": false, "/a/.": false, "/a/..\\b": false, "/a\x00": false,
	} {
		if got := isCleanPath(p); got != want {
			t.Errorf("isCleanPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestHostMatch(t *testing.T) {
	tests := []struct {
		pat, host string
		want      bool
	}{
		{"", "anything.com", true},
		{"*", "x", true},
		{"api.example.com", "api.example.com", true},
		{"API.Example.com", "api.example.com", true},
		{"api.example.com", "www.example.com", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "badexample.com", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"[::1]", "::1", true},
	}
	for _, tt := range tests {
		h, problem := parseHost(tt.pat)
		if problem != "" {
			t.Fatalf("%s: %s", tt.pat, problem)
		}
		if got := h.match(tt.host); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.pat, tt.host, got, tt.want)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"api.example.com":      "api.example.com",
		"API.Example.COM:8443": "api.example.com",
		"api.example.com.":     "api.example.com",
		"[::1]:80":             "::1",
		"[::1]":                "::1",
		"127.0.0.1:9":          "127.0.0.1",
		"":                     "",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServicesMatchOrderAndHosts(t *testing.T) {
	s := mustServices(t, `
services:
  - name: admin
    host: admin.example.com
    price: 50
  - name: tenants
    host: "*.example.com"
    path: /api/*
    price: 5
  - name: api
    path: /api/*
    price: 1
  - name: rest
    path: /*
    price: 2
`)
	tests := []struct{ host, path, want string }{
		{"admin.example.com", "/api/x", "admin"},
		{"ADMIN.example.com:443", "/", "admin"},
		{"t1.example.com", "/api/x", "tenants"},
		{"t1.example.com", "/other", "rest"},
		{"localhost:8080", "/api/x", "api"},
		{"", "/api/", "api"},
		{"localhost", "/api", "rest"},
	}
	for _, tt := range tests {
		svc := s.match(tt.host, tt.path)
		if svc == nil || svc.cfg.Name != tt.want {
			t.Errorf("%s %s matched %v, want %s", tt.host, tt.path, svc, tt.want)
		}
	}
	none := mustServices(t, "services:\n  - name: a\n    path: /a/*\n    price: 1\n")
	if svc := none.match("x", "/b"); svc != nil {
		t.Errorf("matched %s", svc.cfg.Name)
	}
}

func TestRuleFor(t *testing.T) {
	s := mustServices(t, `
services:
  - name: w
    path: /w/*
    price: 10
    pricing:
      - {path: /w/premium/*, price: 100}
      - {path: /w/premium/today, price: 150}
      - {path: /w/premium, price: 90}
      - {path: /w/p*, price: 20}
    whitelist: [/w/health, /w/public/*]
`)
	svc := s.list[0]
	tests := []struct {
		path     string
		resource string
		price    int64
	}{
		{"/w/x", "/w/*", 10},
		{"/w/premium/today", "/w/premium/today", 150},
		{"/w/premium/tomorrow", "/w/premium/*", 100},
		{"/w/premium", "/w/premium", 90},
		{"/w/premiumx", "/w/p*", 20},
		{"/w/p", "/w/p*", 20},
		{"/w/", "/w/*", 10},
	}
	for _, tt := range tests {
		r := svc.ruleFor(tt.path)
		if r.resource != tt.resource || r.price != tt.price {
			t.Errorf("%s: rule %s at %d, want %s at %d", tt.path, r.resource, r.price, tt.resource, tt.price)
		}
		if !r.pat.match(tt.path) {
			t.Errorf("%s: rule %s does not match it", tt.path, r.resource)
		}
	}
	for p, want := range map[string]bool{"/w/health": true, "/w/health/x": false, "/w/public/a": true, "/w/x": false} {
		if got := svc.whitelisted(p); got != want {
			t.Errorf("whitelisted(%s) = %v", p, got)
		}
	}
}

package gate

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Services is a validated, compiled services file: what the gate serves.
// It is immutable; a reload builds a new one.
type Services struct {
	discovery bool
	provider  string
	list      []*service
	// hash is the sha256 of the file it was parsed from (zero if built
	// in Go), so a reload of an unchanged file changes nothing.
	hash [32]byte
	// anyHost is true when some service matches on Host, so requests
	// need their Host normalised.
	anyHost bool
}

// Len returns the number of services.
func (s *Services) Len() int { return len(s.list) }

// Config returns the services as configured, defaults applied.
func (s *Services) Config() File {
	f := File{NoDiscovery: !s.discovery, Provider: s.provider, Services: make([]ServiceConfig, len(s.list))}
	for i, svc := range s.list {
		f.Services[i] = svc.cfg
	}
	return f
}

// Hash returns the sha256 of the file the services were parsed from.
func (s *Services) Hash() [32]byte { return s.hash }

// service is one compiled service.
type service struct {
	cfg   ServiceConfig // defaults applied
	index int
	host  hostPattern
	path  pattern
	// rules are the pricing rules, most specific first; the last is the
	// service's own path at its PriceSats.
	rules     []rule
	whitelist []pattern
	upstream  *url.URL // nil when none is configured
	// tokenLimit, when set, overrides the gate's per-token rate limit.
	tokenLimit    rate.Limit
	tokenBurst    int
	hasTokenLimit bool
	// schemes are the payment schemes the service offers.
	schemes schemeSet
	// session: the service also sells prepaid MPP sessions.
	session bool
	// meter, when set, meters its responses (sessions only).
	meter *meterSpec
	// prepaidCredit, when positive, sells its tokens as prepaid credit.
	prepaidCredit int64
	// pricer, when set, prices each request.
	pricer *pricerSpec
}

// meterSpec is a metered service's meter: unit, msat per unit, and units
// debited ahead at most.
type meterSpec struct {
	unit  MeterUnit
	price int64
	block int64
}

// rule prices the paths matching pat. Its resource is what tokens bought
// under it are bound to.
type rule struct {
	pat      pattern
	resource string
	price    int64
}

// ruleFor returns the pricing rule of a path the service matches.
func (s *service) ruleFor(p string) *rule {
	for i := range s.rules {
		if s.rules[i].pat.match(p) {
			return &s.rules[i]
		}
	}
	return &s.rules[len(s.rules)-1]
}

// whitelisted reports whether a path is never charged.
func (s *service) whitelisted(p string) bool {
	for _, w := range s.whitelist {
		if w.match(p) {
			return true
		}
	}
	return false
}

// match returns the first service matching host and path, or nil.
// byName returns the service called name, or nil.
func (s *Services) byName(name string) *service {
	for _, svc := range s.list {
		if svc.cfg.Name == name {
			return svc
		}
	}
	return nil
}

func (s *Services) match(host, p string) *service {
	if s.anyHost {
		host = normalizeHost(host)
	}
	var lower string
	for _, svc := range s.list {
		q := p
		if svc.cfg.FoldCase {
			if lower == "" {
				lower = strings.ToLower(p)
			}
			q = lower
		}
		if svc.path.match(q) && svc.host.match(host) {
			return svc
		}
	}
	return nil
}

// matchPath is the path as the service matches it: lower case when the
// service folds case.
func (s *service) matchPath(p string) string {
	if s.cfg.FoldCase {
		return strings.ToLower(p)
	}
	return p
}

// pattern is a path pattern: exact, or a prefix when written with a
// trailing '*'. Its semantics are exactly those of l402's resource
// caveat, so a rule's pattern can be the resource its tokens are bound to.
type pattern struct {
	lit    string
	prefix bool
}

func (p pattern) String() string {
	if p.prefix {
		return p.lit + "*"
	}
	return p.lit
}

func (p pattern) match(s string) bool {
	if p.prefix {
		return strings.HasPrefix(s, p.lit)
	}
	return s == p.lit
}

// covers reports whether every path q matches is matched by p.
func (p pattern) covers(q pattern) bool {
	if p.prefix {
		return strings.HasPrefix(q.lit, p.lit)
	}
	return !q.prefix && q.lit == p.lit
}

// moreSpecific orders rules: longer literal first, exact before prefix.
func moreSpecific(a, b rule) int {
	if len(a.pat.lit) != len(b.pat.lit) {
		return len(b.pat.lit) - len(a.pat.lit)
	}
	switch {
	case a.pat.prefix == b.pat.prefix:
		return 0
	case !a.pat.prefix:
		return -1
	}
	return 1
}

// parsePattern checks a path pattern; problem is "" when it is good.
func parsePattern(s string) (pattern, string) {
	switch {
	case s == "":
		return pattern{}, "is empty"
	case len(s) > maxPatternLen:
		return pattern{}, fmt.Sprintf("is %d bytes long, at most %d", len(s), maxPatternLen)
	case s[0] != '/':
		return pattern{}, fmt.Sprintf("%q does not start with /", s)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return pattern{}, fmt.Sprintf("%q contains spaces or control characters", s)
	case strings.ContainsAny(s, "?#"):
		return pattern{}, fmt.Sprintf("%q contains ? or #; patterns match the path only", s)
	}
	p := pattern{lit: s}
	if lit, ok := strings.CutSuffix(s, "*"); ok {
		p = pattern{lit: lit, prefix: true}
	}
	if strings.Contains(p.lit, "*") {
		return pattern{}, fmt.Sprintf("%q has a '*' that is not the last character", s)
	}
	if !isCleanPath(p.lit) {
		return pattern{}, fmt.Sprintf("%q is not a clean path (no //, /./ or /../)", s)
	}
	return p, ""
}

// isCleanPath reports whether p has no empty, "." or ".." segments, no
// backslash (which some servers read as '/') and no control characters,
// so the path the gate matches is the path the upstream serves. A
// trailing slash is fine.
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '\\' || c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// hostPattern matches a request's Host (port removed, lower case).
type hostPattern struct {
	any    bool
	exact  string
	suffix string // ".example.com" for "*.example.com"
}

func (h hostPattern) match(host string) bool {
	switch {
	case h.any:
		return true
	case h.suffix != "":
		return len(host) > len(h.suffix) && strings.HasSuffix(host, h.suffix)
	}
	return host == h.exact
}

// covers reports whether every host q matches is matched by h.
func (h hostPattern) covers(q hostPattern) bool {
	switch {
	case h.any:
		return true
	case q.any:
		return false
	case h.suffix != "":
		return (q.exact != "" && h.match(q.exact)) || (q.suffix != "" && strings.HasSuffix(q.suffix, h.suffix))
	}
	return q.exact == h.exact
}

var hostRE = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$`)

func parseHost(s string) (hostPattern, string) {
	h := strings.ToLower(strings.TrimSpace(s))
	switch {
	case h == "" || h == "*":
		return hostPattern{any: true}, ""
	case len(h) > 253:
		return hostPattern{}, "is longer than 253 characters"
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return hostPattern{exact: a.String()}, ""
	}
	if !hostRE.MatchString(h) {
		return hostPattern{}, fmt.Sprintf("%q is not a host name (no port, no scheme; '*.' only as a prefix)", s)
	}
	h = strings.TrimSuffix(h, ".")
	if rest, ok := strings.CutPrefix(h, "*"); ok {
		return hostPattern{suffix: rest}, ""
	}
	return hostPattern{exact: h}, ""
}

// normalizeHost strips the port and lower-cases a request's Host,
// allocating only when it has to.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
	}
	h = strings.Trim(h, "[]")
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

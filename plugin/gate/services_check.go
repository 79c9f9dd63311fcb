package gate

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/l402d/l402d/plugin/producer"
)

var (
	nameRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	capabilityRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// NewServices checks a File and compiles it. Errors are ConfigErrors that
// carry the file's lines when the File came from ParseFile.
func NewServices(f File, opt ParseOptions) (*Services, error) {
	return compile(f, opt)
}

// checker collects validation errors with their lines.
type checker struct {
	name  string
	lines map[string]int
	errs  ConfigErrors
}

func (c *checker) fail(field, problem, fix string) {
	if len(c.errs) >= maxErrors {
		return
	}
	line := c.lines[field]
	if line == 0 {
		// A default that is wrong: point at the service it belongs to.
		if i := strings.LastIndexByte(field, '.'); i > 0 {
			line = c.lines[field[:i]]
		}
	}
	c.errs = append(c.errs, &ConfigError{File: c.name, Line: line, Field: field, Problem: problem, Fix: fix})
}

func compile(f File, opt ParseOptions) (*Services, error) {
	maxPrice := opt.MaxPriceSats
	if maxPrice <= 0 {
		maxPrice = producer.DefaultMaxPriceSats
	}
	c := &checker{name: opt.Name, lines: f.lines}
	if len(f.Services) > MaxServices {
		c.fail("services", fmt.Sprintf("lists %d services", len(f.Services)), fmt.Sprintf("at most %d", MaxServices))
		return nil, c.errs
	}
	s := &Services{discovery: !f.NoDiscovery, provider: f.Provider}
	if len(f.Provider) > maxProviderLen || !utf8.ValidString(f.Provider) || strings.ContainsFunc(f.Provider, unicode.IsControl) {
		c.fail("provider", fmt.Sprintf("is %d bytes, not UTF-8 or holds control characters", len(f.Provider)), fmt.Sprintf("name the seller in at most %d bytes of printable UTF-8", maxProviderLen))
	}
	names := map[string]int{}
	for i, sc := range f.Services {
		field := fmt.Sprintf("services[%d]", i)
		svc := c.service(field, sc, maxPrice, opt.FoldCase)
		if svc == nil {
			continue
		}
		svc.index = len(s.list)
		if j, dup := names[svc.cfg.Name]; dup {
			c.fail(field+".name", fmt.Sprintf("%q is also the name of services[%d]", svc.cfg.Name, j), "give every service its own name; tokens are bound to it")
			continue
		}
		names[svc.cfg.Name] = i
		for _, prev := range s.list {
			if prev.host.covers(svc.host) && prev.path.covers(svc.path) {
				c.fail(field+".path", fmt.Sprintf("can never match: services[%d] (%q) comes first and matches every host and path this one does", names[prev.cfg.Name], prev.cfg.Name),
					"move the more specific service above the general one, or narrow the general one's host or path")
				break
			}
		}
		if !svc.host.any {
			s.anyHost = true
		}
		s.list = append(s.list, svc)
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return s, nil
}

func (c *checker) service(field string, sc ServiceConfig, maxPrice int64, fold bool) *service {
	before := len(c.errs)
	svc := &service{}
	c.serviceName(field, &sc)
	foldCase(&sc, fold)
	c.match(field, &sc, svc)
	c.transport(field, &sc, svc)
	c.access(field, &sc)
	c.terms(field, &sc, svc, maxPrice)
	c.schemes(field, &sc, svc)
	// Whitelist first: pricing rules inside a whitelisted pattern would
	// never charge.
	c.whitelist(field, sc, svc)
	c.pricing(field, sc, svc, maxPrice)
	slices.SortStableFunc(svc.rules, moreSpecific)
	svc.rules = append(svc.rules, rule{pat: svc.path, resource: svc.path.String(), price: sc.PriceSats})
	c.pricer(field, &sc, svc, maxPrice)
	c.session(field, &sc, svc)
	c.meter(field, &sc, svc)
	c.prepaid(field, &sc, svc)
	svc.cfg = sc
	if len(c.errs) > before {
		return nil
	}
	return svc
}

// serviceName trims and checks the service's name.
func (c *checker) serviceName(field string, sc *ServiceConfig) {
	sc.Name = strings.TrimSpace(sc.Name)
	switch {
	case sc.Name == "":
		c.fail(field+".name", "is missing", "name the service, e.g. name: weather; tokens and metrics use it")
	case !nameRE.MatchString(sc.Name):
		c.fail(field+".name", fmt.Sprintf("%q is not a valid name", sc.Name), "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
}

// foldCase lowers the service's patterns if it (or, with fold, every
// service) matches paths case-insensitively.
func foldCase(sc *ServiceConfig, fold bool) {
	if fold {
		sc.FoldCase = true
	}
	if sc.FoldCase {
		// Compile lower-case patterns; requests are lowered to match.
		sc.Path = strings.ToLower(sc.Path)
		sc.Whitelist = slices.Clone(sc.Whitelist)
		for i := range sc.Whitelist {
			sc.Whitelist[i] = strings.ToLower(sc.Whitelist[i])
		}
		sc.Pricing = slices.Clone(sc.Pricing)
		for i := range sc.Pricing {
			sc.Pricing[i].Path = strings.ToLower(sc.Pricing[i].Path)
		}
	}
}

// match checks the host and path the service matches (default path
// DefaultPath) and compiles them into svc.
func (c *checker) match(field string, sc *ServiceConfig, svc *service) {
	var problem string
	if svc.host, problem = parseHost(sc.Host); problem != "" {
		c.fail(field+".host", problem, `write an exact host (api.example.com), a wildcard (*.example.com), or leave it out for any host`)
	}
	if sc.Path == "" {
		sc.Path = DefaultPath
	}
	if svc.path, problem = parsePattern(sc.Path); problem != "" {
		c.fail(field+".path", problem, `write an exact path (/v1/quote) or a prefix ending in * (/v1/*)`)
	}
}

// transport checks the upstream and the protocol spoken to it (default
// auto).
func (c *checker) transport(field string, sc *ServiceConfig, svc *service) {
	if sc.Upstream != "" {
		svc.upstream = c.upstream(field, sc)
	}
	switch sc.Protocol {
	case "":
		sc.Protocol = ProtocolAuto
	case ProtocolAuto, ProtocolHTTP1, ProtocolH2C:
	default:
		c.fail(field+".protocol", fmt.Sprintf("is %q", sc.Protocol), "write auto (gRPC over HTTP/2, the rest over HTTP/1.1), http1 or h2c")
	}
	if svc.upstream != nil && svc.upstream.Scheme == "https" && sc.Protocol == ProtocolH2C {
		c.fail(field+".protocol", "is h2c but the upstream is https", "h2c is HTTP/2 without TLS; for https the protocol is negotiated, so use auto")
	}
}

// access checks how the service is paid for (auth, default on; the free
// window) and its request timeout, filling in the defaults.
func (c *checker) access(field string, sc *ServiceConfig) {
	switch sc.Auth {
	case "":
		sc.Auth = AuthOn
	case AuthOn, AuthOff:
	case AuthFreebie:
		if sc.FreeRequests < 1 {
			c.fail(field+".auth", fmt.Sprintf("freebie with %d free requests", sc.FreeRequests), `give at least one, e.g. auth: "freebie 5"`)
		}
	default:
		c.fail(field+".auth", fmt.Sprintf("is %q", sc.Auth), `write on, off or "freebie N"`)
	}
	if sc.FreeWindow < 0 {
		c.fail(field+".free_window", "is negative", "write a duration such as 24h")
	}
	if sc.FreeWindow == 0 {
		sc.FreeWindow = DefaultFreeWindow
	}
	if sc.Timeout < 0 {
		c.fail(field+".timeout", "is negative", "write a duration such as 30s")
	}
	if sc.Timeout == 0 {
		sc.Timeout = DefaultTimeout
	}
}

// terms checks what a token costs and carries: price, validity,
// capabilities, description (the invoice memo) and the per-token rate
// limit, which it compiles into svc.
func (c *checker) terms(field string, sc *ServiceConfig, svc *service, maxPrice int64) {
	charged := sc.Auth != AuthOff
	if charged || sc.PriceSats != 0 {
		c.price(field+".price", sc.PriceSats, maxPrice, "the price of a token for this service's paths, e.g. price: 10")
	}
	if sc.TokenValidity < 0 {
		sc.TokenValidity = -1 // forever
	}
	for i, capName := range sc.Capabilities {
		if !capabilityRE.MatchString(capName) {
			c.fail(fmt.Sprintf("%s.capabilities[%d]", field, i), fmt.Sprintf("%q is not a valid capability", capName), "use 1-64 letters, digits, '.', '_' or '-'")
		}
	}
	if len(sc.Description) > maxDescriptionLen || !utf8.ValidString(sc.Description) {
		c.fail(field+".description", fmt.Sprintf("is %d bytes or not UTF-8", len(sc.Description)), fmt.Sprintf("use at most %d bytes of UTF-8 (BOLT 11's limit on a memo)", maxDescriptionLen))
	}
	if rl := sc.RateLimit; rl != nil {
		switch {
		case rl.Rate < 0 || math.IsNaN(rl.Rate) || math.IsInf(rl.Rate, 0):
			c.fail(field+".rate_limit.rate", fmt.Sprintf("is %v", rl.Rate), "write requests per second, 0 for unlimited")
		case rl.Burst < 0:
			c.fail(field+".rate_limit.burst", fmt.Sprintf("is %d", rl.Burst), "write a positive number of requests")
		default:
			svc.hasTokenLimit = true
			svc.tokenLimit, svc.tokenBurst = limitOf(rl.Rate, rl.Burst)
		}
	}
}

// session checks the service's prepaid sessions, after its schemes and
// rules.
func (c *checker) session(field string, sc *ServiceConfig, svc *service) {
	dep := sc.SessionDepositSats
	switch {
	case dep == 0:
		return
	case dep < 0:
		c.fail(field+".session_deposit", fmt.Sprintf("is %d", dep), "write a positive deposit in sats, or leave it out for no sessions")
		return
	case !svc.schemes.has(offerMPP):
		c.fail(field+".session_deposit", "needs the mpp scheme (sessions are Payment challenges)", "add mpp to schemes, or leave session_deposit out")
		return
	}
	if !c.coversOneRequest(field, "session_deposit", dep, svc) {
		return
	}
	if sc.SessionIdleTimeout < 0 {
		c.fail(field+".session_idle_timeout", "is negative", "write a duration such as 10m")
	}
	if sc.SessionIdleTimeout == 0 {
		sc.SessionIdleTimeout = 10 * time.Minute
	}
	svc.session = true
}

// meter checks the service's meter, after its sessions.
func (c *checker) meter(field string, sc *ServiceConfig, svc *service) {
	var def int64
	switch sc.Meter {
	case MeterOff:
		if sc.MeterPriceMsat != 0 || sc.MeterBlock != 0 {
			c.fail(field+".meter", "is missing, but meter_price_msat or meter_block is set", "write meter: kib or meter: second, or drop meter_price_msat and meter_block")
		}
		return
	case MeterKiB:
	case MeterSecond:
		def = defaultMeterBlockSecond
	default:
		c.fail(field+".meter", fmt.Sprintf("is %q", sc.Meter), "write kib (per KiB of response) or second (per second of response)")
		return
	}
	ok := true
	if sc.MeterPriceMsat <= 0 {
		c.fail(field+".meter_price_msat", fmt.Sprintf("is %d", sc.MeterPriceMsat), "write the positive price of one "+string(sc.Meter)+" in msat, e.g. meter_price_msat: 10")
		ok = false
	}
	if sc.MeterBlock < 0 || sc.MeterBlock > 1<<30 {
		c.fail(field+".meter_block", fmt.Sprintf("is %d", sc.MeterBlock), "write how many units to debit ahead at a time (1 to 1073741824), or leave it out")
		ok = false
	}
	if sc.MeterBlock == 0 && sc.MeterPriceMsat > 0 {
		sc.MeterBlock = def
		if sc.Meter == MeterKiB {
			// Worth defaultMeterBlockMsat: big enough that a fast stream
			// does not wait for its debits, small enough that a crash
			// keeps little the buyer did not get.
			sc.MeterBlock = min(max(defaultMeterBlockMsat/sc.MeterPriceMsat, minMeterBlockKiB), maxMeterBlockKiB)
		}
	}
	if sc.MeterPriceMsat > 0 && sc.MeterBlock > 0 && sc.MeterPriceMsat > (1<<62)/sc.MeterBlock {
		c.fail(field+".meter_block", "times meter_price_msat overflows", "lower meter_block or meter_price_msat")
		ok = false
	}
	if !svc.session {
		c.fail(field+".meter", "needs session_deposit: a metered service sells prepaid sessions only", "set session_deposit (and the mpp scheme), or drop meter")
		ok = false
	}
	if ok {
		svc.meter = &meterSpec{unit: sc.Meter, price: sc.MeterPriceMsat, block: sc.MeterBlock}
	}
}

// pricer checks the service's pricer, before the sessions, meter and
// credit that must cover its highest answer.
func (c *checker) pricer(field string, sc *ServiceConfig, svc *service, maxPrice int64) {
	if sc.PricerURL == "" && sc.Pricer == nil {
		for _, set := range []struct {
			key string
			on  bool
		}{{"pricer_timeout", sc.PricerTimeout != 0}, {"pricer_fallback", sc.PricerFallbackSats != 0}, {"pricer_max", sc.PricerMaxSats != 0},
			{"pricer_body", sc.PricerBody != 0}, {"pricer_headers", len(sc.PricerHeaders) > 0}} {
			if set.on {
				c.fail(field+"."+set.key, "is set without pricer_url", "add pricer_url, or drop "+set.key)
			}
		}
		return
	}
	ps := &pricerSpec{p: sc.Pricer, timeout: sc.PricerTimeout, fallback: sc.PricerFallbackSats, max: sc.PricerMaxSats, body: sc.PricerBody}
	if sc.PricerURL != "" {
		u, err := url.Parse(sc.PricerURL)
		switch {
		case sc.Pricer != nil:
			c.fail(field+".pricer_url", "is set beside a Go Pricer", "use one of them")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			c.fail(field+".pricer_url", fmt.Sprintf("%q is not an http(s) URL", sc.PricerURL), "write the pricer's URL, e.g. http://127.0.0.1:9000/price")
		default:
			ps.p = &httpPricer{url: sc.PricerURL, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		}
	}
	switch {
	case ps.timeout == 0:
		ps.timeout = DefaultPricerTimeout
	case ps.timeout < 0 || ps.timeout > maxPricerTimeout:
		c.fail(field+".pricer_timeout", fmt.Sprintf("is %v", ps.timeout), "write a duration up to 10s, e.g. 250ms")
	}
	if ps.max == 0 {
		ps.max = maxPrice
	}
	if ps.max < 1 || ps.max > maxPrice {
		c.fail(field+".pricer_max", fmt.Sprintf("is %d", ps.max), fmt.Sprintf("write a price from 1 to %d sats", maxPrice))
	}
	if ps.fallback < 0 || ps.fallback > ps.max {
		c.fail(field+".pricer_fallback", fmt.Sprintf("is %d", ps.fallback), "write a price from 1 to pricer_max, or leave it out for the path's price")
	}
	if ps.body < 0 || ps.body > maxPricerBody {
		c.fail(field+".pricer_body", fmt.Sprintf("is %d", ps.body), fmt.Sprintf("write how many body bytes the pricer sees, 0 to %d", maxPricerBody))
	}
	for _, h := range sc.PricerHeaders {
		if !pricerHeaderAllowed(h) || h == "" {
			c.fail(field+".pricer_headers", fmt.Sprintf("names %q", h), "credentials and cookies are never shown to a pricer: drop it")
		}
	}
	ps.headers = sc.PricerHeaders
	svc.pricer = ps
}

// coversOneRequest fails key unless amount covers one request of svc at
// its dearest: every rule's price and its pricer's highest answer. A
// balance that can never pay for a request would have its buyer top it up
// for ever.
func (c *checker) coversOneRequest(field, key string, amount int64, svc *service) bool {
	for _, rl := range svc.rules {
		if rl.price > amount {
			c.fail(field+"."+key, fmt.Sprintf("%d sats does not cover one request of %q at %d sats", amount, rl.resource, rl.price), "raise it to at least the dearest path's price")
			return false
		}
	}
	if svc.pricer == nil || svc.pricer.max <= amount {
		return true
	}
	c.fail(field+"."+key, fmt.Sprintf("%d sats does not cover the pricer's highest answer (pricer_max %d)", amount, svc.pricer.max),
		"raise it, or lower pricer_max")
	return false
}

// prepaid checks the service's prepaid credit, after its sessions and
// meter.
func (c *checker) prepaid(field string, sc *ServiceConfig, svc *service) {
	credit := sc.PrepaidCreditSats
	switch {
	case credit == 0:
		return
	case credit < 0:
		c.fail(field+".prepaid_credit", fmt.Sprintf("is %d", credit), "write a positive credit in sats, or leave it out to sell tokens as passes")
		return
	case !svc.schemes.has(offerL402):
		c.fail(field+".prepaid_credit", "needs the l402 scheme (the credit is an L402 token)", "add l402 to schemes, or leave prepaid_credit out")
		return
	case sc.Meter != MeterOff:
		c.fail(field+".prepaid_credit", "cannot be combined with meter: a metered service sells sessions only", "drop prepaid_credit or meter")
		return
	}
	if !c.coversOneRequest(field, "prepaid_credit", credit, svc) {
		return
	}
	// The credit's invoice is sold as a token only: paid as a single-use
	// MPP charge or x402 payment it would buy one request. MPP stays for
	// sessions, which have invoices of their own.
	svc.schemes &^= offerX402
	if !svc.session {
		svc.schemes &^= offerMPP
	}
	svc.prepaidCredit = credit
}

// schemes checks the payment schemes the service offers (default all).
func (c *checker) schemes(field string, sc *ServiceConfig, svc *service) {
	if sc.Schemes == nil {
		svc.schemes = offerAll
		return
	}
	if len(sc.Schemes) == 0 {
		c.fail(field+".schemes", "is empty", "list at least one of l402, mpp, x402, or leave schemes out for all three")
	}
	for i, name := range sc.Schemes {
		k, ok := producer.ParseScheme(strings.ToLower(strings.TrimSpace(name)))
		f := fmt.Sprintf("%s.schemes[%d]", field, i)
		switch {
		case !ok:
			c.fail(f, fmt.Sprintf("%q is not a payment scheme", name), "write l402, mpp or x402")
		case svc.schemes.has(schemeBit(k)):
			c.fail(f, fmt.Sprintf("%q is listed twice", name), "list each scheme once")
		default:
			svc.schemes |= schemeBit(k)
		}
	}
}

// whitelist checks and compiles the service's free paths.
func (c *checker) whitelist(field string, sc ServiceConfig, svc *service) {
	for i, w := range sc.Whitelist {
		p, ok := c.pathInService(fmt.Sprintf("%s.whitelist[%d]", field, i), w, sc.Path, svc, "list only paths this service serves")
		if !ok {
			continue
		}
		svc.whitelist = append(svc.whitelist, p)
	}
}

// pricing checks and compiles the service's per-path prices; svc's
// whitelist must be compiled first.
func (c *checker) pricing(field string, sc ServiceConfig, svc *service, maxPrice int64) {
	seen := map[pattern]int{}
	for i, pr := range sc.Pricing {
		rf := fmt.Sprintf("%s.pricing[%d]", field, i)
		p, ok := c.pathInService(rf+".path", pr.Path, sc.Path, svc, "price only paths this service serves")
		if !ok {
			continue
		}
		if j, dup := seen[p]; dup {
			c.fail(rf+".path", fmt.Sprintf("%q is also priced by pricing[%d]", pr.Path, j), "keep one rule per pattern")
			continue
		}
		if p == svc.path {
			c.fail(rf+".path", fmt.Sprintf("%q is the service's own path", pr.Path), "set the service's price instead")
			continue
		}
		for _, w := range svc.whitelist {
			if w.covers(p) {
				c.fail(rf+".path", fmt.Sprintf("%q lies inside whitelisted %q, so it would never be charged", pr.Path, w.String()), "remove the rule or narrow the whitelist")
			}
		}
		seen[p] = i
		c.price(rf+".price", pr.PriceSats, maxPrice, "e.g. price: 100")
		svc.rules = append(svc.rules, rule{pat: p, resource: p.String(), price: pr.PriceSats})
	}
}

// pathInService parses raw, a path pattern at field, and checks that it
// lies within the service's path (servicePath, compiled in svc); if not
// it records why (fix says what to do if it lies outside) and returns
// false.
func (c *checker) pathInService(field, raw, servicePath string, svc *service, fix string) (pattern, bool) {
	p, problem := parsePattern(raw)
	if problem != "" {
		c.fail(field, problem, `write an exact path or a prefix ending in *`)
		return p, false
	}
	if svc.path.lit != "" && !svc.path.covers(p) {
		c.fail(field, fmt.Sprintf("%q is outside the service's path %q", raw, servicePath), fix)
		return p, false
	}
	return p, true
}

func (c *checker) price(field string, price, maxPrice int64, fix string) {
	switch {
	case price == 0 && c.lines[field] == 0:
		c.fail(field, "is missing", "a price must be at least 1 sat: "+fix+"; to serve paths for free, list them under whitelist")
	case price <= 0:
		c.fail(field, fmt.Sprintf("is %d", price), "a price must be at least 1 sat: "+fix+"; to serve paths for free, list them under whitelist")
	case price > maxPrice:
		c.fail(field, fmt.Sprintf("is %d sats", price), fmt.Sprintf("at most %d sats (--max-price-sats)", maxPrice))
	}
}

func (c *checker) upstream(field string, sc *ServiceConfig) *url.URL {
	const fix = "write a URL such as http://127.0.0.1:8080, https://api.internal or h2c://127.0.0.1:9000"
	u, err := url.Parse(sc.Upstream)
	switch {
	case err != nil:
		c.fail(field+".upstream", fmt.Sprintf("%q is not a URL", sc.Upstream), fix)
		return nil
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "h2c":
		c.fail(field+".upstream", fmt.Sprintf("%q has scheme %q", sc.Upstream, u.Scheme), fix)
		return nil
	case u.Host == "":
		c.fail(field+".upstream", fmt.Sprintf("%q has no host", sc.Upstream), fix)
		return nil
	case u.User != nil:
		c.fail(field+".upstream", "carries a user name or password", "keep credentials out of the services file; let the upstream trust the gate's address instead")
		return nil
	case u.RawQuery != "" || u.Fragment != "":
		c.fail(field+".upstream", "has a query or fragment", fix)
		return nil
	case u.Path != "" && !isCleanPath(u.Path):
		c.fail(field+".upstream", fmt.Sprintf("base path %q is not clean", u.Path), fix)
		return nil
	}
	if u.Scheme == "h2c" {
		switch sc.Protocol {
		case "", ProtocolAuto, ProtocolH2C:
			sc.Protocol = ProtocolH2C
		default:
			c.fail(field+".protocol", fmt.Sprintf("is %q but the upstream is h2c://", sc.Protocol), "drop protocol, or write h2c")
		}
		u.Scheme = "http"
	}
	return u
}

// limitOf turns a configured rate and burst into rate's terms: rate 0 is
// unlimited, and a burst of 0 defaults to the rate (at least 1).
func limitOf(perSecond float64, burst int) (rate.Limit, int) {
	if perSecond <= 0 {
		return rate.Inf, 0
	}
	if burst <= 0 {
		burst = int(math.Max(1, math.Ceil(perSecond)))
	}
	return rate.Limit(perSecond), burst
}

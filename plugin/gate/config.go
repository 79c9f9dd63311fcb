package gate

import (
	"fmt"
	"strings"
	"time"
)

// MeterUnit is what a metered service charges per.
type MeterUnit string

const (
	// MeterOff charges per request only.
	MeterOff MeterUnit = ""
	// MeterKiB charges per KiB (1024 bytes) of response body, rounded up.
	MeterKiB MeterUnit = "kib"
	// MeterSecond charges per second of the response, rounded up.
	MeterSecond MeterUnit = "second"
)

// Default meter blocks: per KiB, as many KiB as 10 sats buy (64 KiB to
// 1 GiB); per second, 5 seconds.
const (
	defaultMeterBlockMsat   = 10_000
	minMeterBlockKiB        = 64
	maxMeterBlockKiB        = 1 << 20
	defaultMeterBlockSecond = 5
)

// Protocol says how the gate talks to a service's upstream.
type Protocol string

// Upstream protocols.
const (
	// ProtocolAuto sends gRPC requests (content-type application/grpc)
	// over HTTP/2 — h2c for an http:// upstream — and everything else
	// over HTTP/1.1 (HTTP/1.1 or HTTP/2 by ALPN for https://).
	ProtocolAuto Protocol = "auto"
	// ProtocolHTTP1 sends every request over HTTP/1.1.
	ProtocolHTTP1 Protocol = "http1"
	// ProtocolH2C sends every request over unencrypted HTTP/2 (prior
	// knowledge), as gRPC servers without TLS expect.
	ProtocolH2C Protocol = "h2c"
)

// AuthMode says whether a service charges.
type AuthMode string

// Auth modes.
const (
	// AuthOn charges every request that is not whitelisted.
	AuthOn AuthMode = "on"
	// AuthOff lets every request through: the gate only proxies.
	AuthOff AuthMode = "off"
	// AuthFreebie lets each client (by IP) make FreeRequests unpaid
	// requests per FreeWindow before it is charged.
	AuthFreebie AuthMode = "freebie"
)

// Defaults for zero ServiceConfig fields.
const (
	DefaultPath       = "/*"
	DefaultTimeout    = 30 * time.Second
	DefaultFreeWindow = 24 * time.Hour
)

// Limits on a services file, so that a hostile or broken file costs
// little to refuse.
const (
	MaxFileSize        = 1 << 20
	MaxServices        = 1000
	MaxRulesPerService = 1000
	maxPatternLen      = 512
	maxDescriptionLen  = 639 // BOLT 11's limit on an invoice description
	maxProviderLen     = 100
	maxErrors          = 50
)

// File is a services file as Go values: what ParseServices reads from
// YAML, and what a Go program may build directly for NewServices.
type File struct {
	// NoDiscovery turns off /.well-known/l402.json, the OpenAPI document
	// and the quote endpoint ("discovery: false").
	NoDiscovery bool
	// Provider names the seller in the discovery documents ("provider:");
	// empty means "l402d".
	Provider string
	// Services are tried in order; the first whose host and path match
	// a request serves it.
	Services []ServiceConfig

	// lines maps a field ("services[0].price") to its line in the file,
	// for error messages. Nil for a File built in Go.
	lines map[string]int
}

// ServiceConfig is one priced service.
type ServiceConfig struct {
	// Name identifies the service in tokens ("services=<name>:0"), in
	// metrics and in discovery. Letters, digits, '.', '_' and '-'.
	Name string
	// Host, if set, is the Host the service answers on: exact
	// ("api.example.com") or a wildcard for subdomains
	// ("*.example.com"). Empty means any host.
	Host string
	// Path is the path pattern the service answers on: exact ("/v1/x")
	// or a prefix ending in '*' ("/v1/*"). Default "/*".
	Path string
	// Upstream is where the proxy sends requests: http://, https:// or
	// h2c:// (unencrypted HTTP/2), with an optional base path. Required
	// by the proxy; the middleware ignores it.
	Upstream string
	// Protocol is auto (default), http1 or h2c; see the constants.
	Protocol Protocol
	// PriceSats is the price of a token for paths no pricing rule
	// matches. Required unless Auth is off.
	PriceSats int64
	// Pricing prices paths differently; the most specific pattern wins.
	Pricing []PriceRule
	// TokenValidity is how long a token works after it is issued. Zero
	// means the daemon's --token-validity; negative means forever.
	TokenValidity time.Duration
	// Capabilities are written into tokens as <name>_capabilities.
	Capabilities []string
	// Auth is on (default), off or freebie.
	Auth AuthMode
	// FreeRequests is how many unpaid requests a client may make per
	// FreeWindow when Auth is freebie.
	FreeRequests int
	// FreeWindow is the period FreeRequests are counted over (default
	// 24h).
	FreeWindow time.Duration
	// Whitelist lists path patterns that are never charged.
	Whitelist []string
	// Timeout bounds the wait for the upstream's response headers
	// (default 30s); streams may last longer.
	Timeout time.Duration
	// RateLimit limits paid requests per token; nil means the gate's
	// default (--gate.token-rate).
	RateLimit *RateLimit
	// Description is the invoice memo; default "<name> <pattern>".
	Description string
	// Schemes are the ways a 402 may be paid: "l402" (a reusable token),
	// "mpp" (a single-use Payment charge) and "x402" (a single-use x402
	// Lightning payment). Every 402 offers one invoice in all of them, and
	// one payment buys one thing in one scheme. Default: all three.
	Schemes []string
	// SessionDepositSats, when positive, also offers prepaid MPP sessions
	// (intent "session", as Aperture's mpp package speaks it): a buyer
	// pays this deposit once, spends it request by request at each path's
	// price, tops it up, and gets the rest refunded to its return invoice
	// when it closes the session. It needs the mpp scheme, and must cover
	// the dearest path.
	SessionDepositSats int64
	// PricerURL, when set, prices each request of the service by asking
	// this HTTP endpoint (POST a PriceRequest as JSON, answer a
	// PriceAnswer); Pricer does the same from Go (middleware users; not
	// in the services file). The answer's price replaces the path's in
	// the 402 and in what a credential must have paid; see docs/gate.md,
	// "Dynamic prices".
	PricerURL string
	Pricer    Pricer
	// PricerTimeout bounds one pricer call (default 250ms, at most 10s).
	PricerTimeout time.Duration
	// PricerFallbackSats is the price when the pricer fails, is late or
	// answers out of bounds (default: the path's price).
	PricerFallbackSats int64
	// PricerMaxSats is the highest answer taken (default: the gate's
	// highest price); a higher one is a failure.
	PricerMaxSats int64
	// PricerBody is how many bytes of the request body the pricer sees
	// (default 0, at most 65536); the body is read that far before the
	// request is admitted, and passed on whole.
	PricerBody int64
	// PricerHeaders name the request headers the pricer sees (never
	// credentials or cookies); answers are cached per their values.
	PricerHeaders []string
	// PrepaidCreditSats, when positive, sells the service's L402 tokens
	// as prepaid credit of this many sats instead of a pass: each request
	// is debited its path's price from the token's balance; at zero the
	// 402 offers a top-up bound to the same balance, and the holder gets
	// the rest refunded on request (POST /.well-known/l402/refund). It
	// needs the l402 scheme and must cover the dearest path; the credit's
	// invoice is not offered as a single-use MPP or x402 payment.
	PrepaidCreditSats int64
	// Meter, when set, also charges the session's balance as the
	// response flows, on top of the path's price: MeterKiB per KiB of
	// response body, MeterSecond per second from the start of the
	// response to its end (SSE, WebSocket and other streams). A stream
	// whose balance runs out gets a final event (SSE) and is closed. A
	// metered service sells access through prepaid sessions only: it needs
	// SessionDepositSats, and refuses single-use credentials and tokens.
	Meter MeterUnit
	// MeterPriceMsat is the price of one Meter unit, in msat.
	MeterPriceMsat int64
	// MeterBlock is how many units the gate debits ahead of the bytes or
	// seconds it releases, at most (default: per KiB, what 10 sats buy,
	// within 64 KiB to 1 GiB; per second, 5 seconds): one durable write
	// per block. A crash mid-response can keep up to 1.5
	// blocks the buyer did not receive; a response that ends gives back
	// what it did not use.
	MeterBlock int64
	// SessionIdleTimeout is advertised in session challenges (default
	// 10m); l402d does not close idle sessions itself.
	SessionIdleTimeout time.Duration
	// PassCredentials forwards the client's payment credential (an
	// "Authorization: L402/LSAT/Payment …" value, Macaroon,
	// Grpc-Metadata-Macaroon, PAYMENT-SIGNATURE) to the upstream. Off, the proxy strips
	// them: they are the gate's business, and a bearer token the
	// upstream's logs should not hold.
	PassCredentials bool
	// AllowSemicolons accepts ';' in request paths. Off, such a request
	// is refused (400 bad_path): Tomcat, Jetty and others read
	// "/public/..;/premium" as "/premium", a path the gate never priced.
	AllowSemicolons bool
	// FoldCase matches paths case-insensitively (the path, pricing and
	// whitelist patterns, and the resource tokens are bound to), for
	// upstreams that ignore case: otherwise /PREMIUM/x would not match a
	// /premium/* rule and be sold at a cheaper rule's price, or free.
	FoldCase bool
}

// PriceRule prices the paths matching a pattern.
type PriceRule struct {
	// Path is an exact path or a prefix ending in '*'; it must lie within
	// the service's Path.
	Path string
	// PriceSats is the price of a token for these paths.
	PriceSats int64
}

// RateLimit is a token bucket: Rate requests per second on average, Burst
// at once. A zero Rate means unlimited.
type RateLimit struct {
	Rate  float64
	Burst int
}

// ConfigError is one problem in a services file: where, which field, what
// is wrong and how to fix it.
type ConfigError struct {
	// File is the file's name, "" when the config was built in Go.
	File string `json:"file,omitempty"`
	// Line is the 1-based line, 0 when unknown.
	Line int `json:"line,omitempty"`
	// Field is the key's path, e.g. "services[1].pricing[0].price".
	Field   string `json:"field,omitempty"`
	Problem string `json:"problem"`
	Fix     string `json:"fix,omitempty"`
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString(" (" + e.Fix + ")")
	}
	return b.String()
}

// ConfigErrors are every problem found in a services file, in file order.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap lets errors.As find each *ConfigError.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

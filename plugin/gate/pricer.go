package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/x402"
)

// Pricer prices one request of a service whose price depends on the
// request (an LLM call by its model and prompt size, a crawl by its
// depth). The gate asks it before it challenges or admits a request; an
// answer that fails, is late or is out of bounds gives way to the
// service's fallback price.
type Pricer interface {
	Price(ctx context.Context, r PriceRequest) (PriceAnswer, error)
}

// PricerFunc is a function as a Pricer.
type PricerFunc func(ctx context.Context, r PriceRequest) (PriceAnswer, error)

// Price calls f.
func (f PricerFunc) Price(ctx context.Context, r PriceRequest) (PriceAnswer, error) { return f(ctx, r) }

// PriceRequest is what a pricer sees of a request.
type PriceRequest struct {
	Service string `json:"service"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	Query   string `json:"query,omitempty"`
	// Header holds the headers the service's pricer_headers name, as the
	// client sent them (never credentials or cookies).
	Header http.Header `json:"headers,omitempty"`
	// Body is the request body's first pricer_body bytes (JSON: base64);
	// BodyTruncated says there was more.
	Body          []byte `json:"body,omitempty"`
	BodyTruncated bool   `json:"bodyTruncated,omitempty"`
	// PriceSats is the path's price in the services file.
	PriceSats int64 `json:"priceSats"`
}

// PriceAnswer is a pricer's answer.
type PriceAnswer struct {
	PriceSats int64 `json:"priceSats"`
	// CacheSeconds is how long the answer holds for requests with the
	// same method, path, query, body and pricer_headers (0: ask again
	// every time). A pricer that reads anything else must answer 0.
	CacheSeconds int64 `json:"cacheSeconds,omitempty"`
}

// Pricer defaults and bounds.
const (
	DefaultPricerTimeout = 250 * time.Millisecond
	maxPricerTimeout     = 10 * time.Second
	maxPricerBody        = 64 << 10
	maxPricerAnswer      = 4 << 10
	maxPricerCache       = 10_000
	maxPricerCacheFor    = 24 * time.Hour
)

// pricerSpec is a service's pricer, checked.
type pricerSpec struct {
	p        Pricer
	timeout  time.Duration
	fallback int64 // sats; 0: the path's static price
	max      int64 // the highest answer taken
	body     int64 // bytes of body shown
	headers  []string
}

// httpPricer asks an HTTP endpoint: POST PriceRequest as JSON, 200 with
// PriceAnswer as JSON.
type httpPricer struct {
	url    string
	client *http.Client
}

func (h *httpPricer) Price(ctx context.Context, r PriceRequest) (PriceAnswer, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return PriceAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b))
	if err != nil {
		return PriceAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return PriceAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxPricerAnswer))
	if err != nil {
		return PriceAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return PriceAnswer{}, fmt.Errorf("pricer answered %d", resp.StatusCode)
	}
	var a PriceAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return PriceAnswer{}, fmt.Errorf("pricer answer is not {\"priceSats\": N}: %w", err)
	}
	return a, nil
}

// priceCache holds pricer answers until they expire.
type priceCache struct {
	mu sync.Mutex
	m  map[[32]byte]cachedPrice
}

type cachedPrice struct {
	sats  int64
	until time.Time
}

func (c *priceCache) get(k [32]byte, now time.Time) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !now.Before(e.until) {
		return 0, false
	}
	return e.sats, true
}

func (c *priceCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

func (c *priceCache) put(k [32]byte, sats int64, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[32]byte]cachedPrice)
	}
	if len(c.m) >= maxPricerCache {
		for k := range c.m { // drop one at random
			delete(c.m, k)
			break
		}
	}
	c.m[k] = cachedPrice{sats, until}
}

// priced returns rl with the request's price from svc's pricer (rl as it
// is for a service without one). It reads up to pricer_body bytes of the
// body and puts them back in front of the rest. The answer, within
// [1, pricer_max], is cached as the pricer says; a failed, late or out of
// bounds answer yields the fallback price.
func (g *Gate) priced(r *http.Request, svc *service, rl *rule) *rule {
	ps := svc.pricer
	if ps == nil {
		return rl
	}
	pr := PriceRequest{Service: svc.cfg.Name, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, PriceSats: rl.price}
	for _, name := range ps.headers {
		if vs := r.Header.Values(name); len(vs) > 0 {
			if pr.Header == nil {
				pr.Header = http.Header{}
			}
			pr.Header[textproto.CanonicalMIMEHeaderKey(name)] = vs
		}
	}
	if ps.body > 0 && r.Body != nil && r.Body != http.NoBody {
		buf := make([]byte, ps.body+1)
		n, err := io.ReadFull(r.Body, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			g.log.Debug("gate: reading a body to price it", "service", svc.cfg.Name, "err", err)
		}
		pr.Body, pr.BodyTruncated = buf[:min(int64(n), ps.body)], int64(n) > ps.body
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf[:n]), r.Body), r.Body}
	}
	key := priceKey(pr)
	now := g.cfg.Now()
	out := *rl
	if sats, ok := g.prices.get(key, now); ok {
		out.price = sats
		return &out
	}
	ctx, cancel := context.WithTimeout(r.Context(), ps.timeout)
	defer cancel()
	a, err := ps.p.Price(ctx, pr)
	switch {
	case err != nil:
	case a.PriceSats < 1 || a.PriceSats > ps.max:
		err = fmt.Errorf("pricer answered %d sats, outside 1 to %d", a.PriceSats, ps.max)
	case a.CacheSeconds < 0:
		err = fmt.Errorf("pricer answered cacheSeconds %d", a.CacheSeconds)
	}
	if err != nil {
		out.price = ps.fallback
		if out.price == 0 {
			out.price = rl.price
		}
		g.log.Warn("gate: the pricer gave no price; the fallback applies", "service", svc.cfg.Name, "path", truncate(r.URL.Path), "fallback_sats", out.price, "err", err)
		return &out
	}
	out.price = a.PriceSats
	if a.CacheSeconds > 0 {
		g.prices.put(key, a.PriceSats, now.Add(min(time.Duration(a.CacheSeconds)*time.Second, maxPricerCacheFor)))
	}
	return &out
}

// priceKey is what a cached answer holds for.
func priceKey(pr PriceRequest) [32]byte {
	d := sha256.New()
	for _, s := range []string{pr.Service, pr.Method, pr.Path, pr.Query} {
		d.Write([]byte(s))
		d.Write([]byte{0})
	}
	hb, _ := json.Marshal(pr.Header) // map keys come out sorted
	d.Write(hb)
	d.Write([]byte{0})
	d.Write(pr.Body)
	if pr.BodyTruncated {
		d.Write([]byte{1})
	}
	var k [32]byte
	d.Sum(k[:0])
	return k
}

// credentialHeaders are never shown to a pricer.
var credentialHeaders = []string{l402.HeaderAuthorization, l402.HeaderMacaroon, l402.HeaderGrpcMacaroon, x402.HeaderPaymentSignature,
	"Cookie", "Proxy-Authorization"}

// pricerHeaderAllowed reports whether a pricer may see header name.
func pricerHeaderAllowed(name string) bool {
	for _, c := range credentialHeaders {
		if strings.EqualFold(c, name) {
			return false
		}
	}
	return true
}

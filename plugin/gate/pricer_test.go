package gate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pricerFixture gates /llm/* (2 sats in the services file) with pricer,
// body and headers shown, fallback 7, answers up to 100.
func pricerFixture(t *testing.T, pricer Pricer) *fixture {
	t.Helper()
	return newFixture(t, testServices, func(c *Config) {
		svcs, err := NewServices(File{Services: []ServiceConfig{{Name: "llm", Path: "/llm/*", PriceSats: 2, Pricer: pricer,
			PricerBody: 8, PricerHeaders: []string{"X-Model"}, PricerFallbackSats: 7, PricerMaxSats: 100, PricerTimeout: 50 * time.Millisecond}}}, ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Services = svcs
	})
}

// doBody sends a POST with body.
func (f *fixture) doBody(path, body string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.1:5555"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func TestDynamicPrice(t *testing.T) {
	var calls atomic.Int64
	var seen atomic.Pointer[PriceRequest]
	pricer := PricerFunc(func(ctx context.Context, r PriceRequest) (PriceAnswer, error) {
		calls.Add(1)
		seen.Store(&r)
		switch {
		case r.Header.Get("X-Model") == "big":
			return PriceAnswer{PriceSats: 50, CacheSeconds: 60}, nil
		case r.Header.Get("X-Model") == "slow":
			<-ctx.Done()
			return PriceAnswer{}, ctx.Err()
		case r.Header.Get("X-Model") == "greedy":
			return PriceAnswer{PriceSats: 1000}, nil
		case r.Header.Get("X-Model") == "broken":
			return PriceAnswer{}, errors.New("down")
		}
		return PriceAnswer{PriceSats: int64(len(r.Body))}, nil
	})
	f := pricerFixture(t, pricer)

	// The answer prices the 402; the pricer sees the bounded body and the
	// named header, never a credential; the upstream gets the whole body.
	w := f.doBody("/llm/chat", "hello world", "X-Model", "small", "Authorization", "Bearer secret", "Cookie", "a=b")
	if b := body(t, w); w.Code != 402 || b["amountSats"] != 8.0 || b["priceSats"] != 8.0 {
		t.Fatalf("402 for an 11-byte body shown 8: %d %v", w.Code, b)
	}
	if s := seen.Load(); string(s.Body) != "hello wo" || !s.BodyTruncated || s.Header.Get("Authorization") != "" || s.Header.Get("Cookie") != "" ||
		s.Header.Get("X-Model") != "small" || s.PriceSats != 2 || s.Method != "POST" || s.Path != "/llm/chat" {
		t.Fatalf("the pricer saw %+v", s)
	}
	small := f.pay(w)
	var got string
	f.h = f.g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	if w := f.doBody("/llm/chat", "hello world", "X-Model", "small", "Authorization", small); w.Code != 200 || got != "hello world" {
		t.Fatalf("paid: %d %s; upstream got %q", w.Code, w.Body, got)
	}
	// A token bought for 8 sats buys cheaper requests, not a dearer one.
	if w := f.doBody("/llm/chat", "hi", "X-Model", "small", "Authorization", small); w.Code != 200 {
		t.Fatalf("cheaper request: %d %s", w.Code, w.Body)
	}
	w = f.doBody("/llm/chat", "hi", "X-Model", "big", "Authorization", small)
	if b := body(t, w); w.Code != 402 || b["reason"] != "wrong_amount" || b["amountSats"] != 50.0 {
		t.Fatalf("dearer request with a cheap token: %d %v", w.Code, b)
	}
	// Twice: the verify cache must not let it through either.
	if w := f.doBody("/llm/chat", "hi", "X-Model", "big", "Authorization", small); w.Code != 402 {
		t.Fatalf("dearer request again: %d", w.Code)
	}
	// The big answer was cached: the same request does not ask again.
	before := calls.Load()
	f.doBody("/llm/chat", "hi", "X-Model", "big")
	if calls.Load() != before {
		t.Fatalf("a cached answer was asked again (%d calls)", calls.Load()-before)
	}
	// Late, failing and out-of-bounds answers: the fallback.
	for _, model := range []string{"slow", "broken", "greedy"} {
		if b := body(t, f.doBody("/llm/chat", "hi", "X-Model", model)); b["amountSats"] != 7.0 {
			t.Fatalf("%s pricer: %v, want the fallback of 7", model, b)
		}
	}
}

// TestDynamicPriceCharges: a single-use payment bought for a cheap
// request does not buy a dear one, and a session is debited the answer.
func TestDynamicPriceCharges(t *testing.T) {
	pricer := PricerFunc(func(ctx context.Context, r PriceRequest) (PriceAnswer, error) {
		if r.Header.Get("X-Model") == "big" {
			return PriceAnswer{PriceSats: 50}, nil
		}
		return PriceAnswer{PriceSats: 3}, nil
	})
	f := pricerFixture(t, pricer)
	w := f.doBody("/llm/chat", "x", "X-Model", "small")
	ch, _ := f.payMPP(w)
	w = f.doBody("/llm/chat", "x", "X-Model", "big", "Authorization", ch)
	if b := body(t, w); w.Code != 402 || b["reason"] != "wrong_amount" {
		t.Fatalf("a 3-sat charge for a 50-sat request: %d %v", w.Code, b)
	}
	if w := f.doBody("/llm/chat", "x", "X-Model", "small", "Authorization", ch); w.Code != 200 {
		t.Fatalf("the charge for what it was bought for: %d %s", w.Code, w.Body)
	}
}

func TestHTTPPricer(t *testing.T) {
	var last atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var pr PriceRequest
		if err := json.NewDecoder(r.Body).Decode(&pr); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		last.Store(pr)
		if pr.Path == "/llm/bad" {
			_, _ = w.Write([]byte("not json"))
			return
		}
		_ = json.NewEncoder(w).Encode(PriceAnswer{PriceSats: int64(len(pr.Body)) + 1})
	}))
	t.Cleanup(srv.Close)
	p := &httpPricer{url: srv.URL, client: srv.Client()}
	a, err := p.Price(t.Context(), PriceRequest{Service: "s", Path: "/llm/x", Body: []byte("abc")})
	if err != nil || a.PriceSats != 4 || string(last.Load().(PriceRequest).Body) != "abc" {
		t.Fatalf("Price = %+v, %v", a, err)
	}
	if _, err := p.Price(t.Context(), PriceRequest{Path: "/llm/bad"}); err == nil {
		t.Fatal("a pricer answering garbage gave a price")
	}
}

func TestPricerConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, field string }{
		"timeout without url": {"pricer_timeout: 1s", "pricer_timeout"},
		"not a URL":           {"pricer_url: ftp://x", "pricer_url"},
		"fallback over max":   {"pricer_url: http://127.0.0.1:1/p\n    pricer_max: 5\n    pricer_fallback: 6", "pricer_fallback"},
		"credential header":   {"pricer_url: http://127.0.0.1:1/p\n    pricer_headers: [Authorization]", "pricer_headers"},
		"big body":            {"pricer_url: http://127.0.0.1:1/p\n    pricer_body: 1000000", "pricer_body"},
		"timeout too long":    {"pricer_url: http://127.0.0.1:1/p\n    pricer_timeout: 1m", "pricer_timeout"},
		"deposit under max":   {"pricer_url: http://127.0.0.1:1/p\n    pricer_max: 500\n    session_deposit: 100", "session_deposit"},
		"credit under max":    {"pricer_url: http://127.0.0.1:1/p\n    pricer_max: 500\n    prepaid_credit: 100", "prepaid_credit"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseServices([]byte("services:\n  - name: s\n    path: /s/*\n    price: 2\n    "+tc.yaml+"\n"), ParseOptions{})
			if err == nil || !strings.Contains(err.Error(), "services[0]."+tc.field) {
				t.Fatalf("err = %v, want one naming %s", err, tc.field)
			}
		})
	}
}

package consumer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

func TestAccessPaysOnceThenReusesToken(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 50)
	c, st := newTestConsumer(t, ln)
	ctx := t.Context()

	r, err := c.Access(ctx, AccessRequest{URL: s.srv.URL + "/api/data"})
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, r); r.Status != 200 || got != "content of /api/data" || !r.Paid || r.FromCache {
		t.Fatalf("first access: %d %q paid=%v cache=%v", r.Status, got, r.Paid, r.FromCache)
	}
	if r.Payment.AmountSats != 50 || r.Payment.FeeMsat != 1_000 || r.Token == nil || !strings.HasPrefix(r.Token.Authorization, "L402 ") || r.Token.Scope != "/api/data" {
		t.Fatalf("payment %+v token %+v", r.Payment, r.Token)
	}

	r, err = c.Access(ctx, AccessRequest{URL: s.srv.URL + "/api/data"})
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, r); r.Status != 200 || got != "content of /api/data" || r.Paid || !r.FromCache || r.Token == nil {
		t.Fatalf("second access: %d %q paid=%v cache=%v", r.Status, got, r.Paid, r.FromCache)
	}
	if ln.totalPays() != 1 || s.challengeCount() != 1 {
		t.Fatalf("%d payments, %d challenges; want 1 and 1", ln.totalPays(), s.challengeCount())
	}
	b, err := c.Budget(ctx)
	if err != nil || b.Usage.Total.SpentMsat != 51_000 || b.Usage.Total.ReservedMsat != 0 {
		t.Fatalf("budget after one payment: %v %+v", err, b.Usage)
	}
	ps, _, tot, err := st.ListPayments(ctx, storage.PaymentFilter{})
	if err != nil || len(ps) != 1 || ps[0].State != storage.PaymentSucceeded || ps[0].Kind != storage.KindAccess || tot.AmountMsat != 50_000 {
		t.Fatalf("journal: %v %+v %+v", err, ps, tot)
	}

	// Another path is another resource: paid for separately.
	r, err = c.Access(ctx, AccessRequest{URL: s.srv.URL + "/api/other"})
	if err != nil || !r.Paid {
		t.Fatalf("other path: %v %+v", err, r)
	}
	body(t, r)
	if ln.totalPays() != 2 {
		t.Fatalf("%d payments", ln.totalPays())
	}
}

func TestAccessPrefixTokenCoversPaths(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 5)
	s.prefix = true
	c, _ := newTestConsumer(t, ln)
	for i, p := range []string{"/v1/a", "/v1/a/b", "/v1/a/c?x=1"} {
		r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + p})
		if err != nil {
			t.Fatal(err)
		}
		body(t, r)
		if r.Status != 200 || r.Paid != (i == 0) {
			t.Fatalf("%s: %d paid=%v", p, r.Status, r.Paid)
		}
	}
	if ln.totalPays() != 1 {
		t.Fatalf("%d payments for one prefix token", ln.totalPays())
	}
}

func TestAccessRefusals(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(s *seller, c *Consumer)
		maxSats   int64
		wantCode  string
		wantLimit string
	}{
		{name: "above maxSats", maxSats: 49, wantCode: "price_above_max"},
		{name: "advertised price differs", setup: func(s *seller, _ *Consumer) { s.advertise = 40 }, wantCode: "price_mismatch"},
		{name: "amountless invoice", setup: func(s *seller, _ *Consumer) {
			s.invoice = func(h lntypes.Hash, _ int64) string {
				return invoiceFor(s.t, &chaincfg.RegressionNetParams, h, 0, time.Hour)
			}
		}, wantCode: "amountless_invoice"},
		{name: "expired invoice", setup: func(s *seller, _ *Consumer) {
			s.invoice = func(h lntypes.Hash, msat int64) string {
				return invoiceFor(s.t, &chaincfg.RegressionNetParams, h, msat, time.Nanosecond)
			}
		}, wantCode: "invoice_expired"},
		{name: "wrong network", setup: func(s *seller, _ *Consumer) {
			s.invoice = func(h lntypes.Hash, msat int64) string {
				return invoiceFor(s.t, &chaincfg.MainNetParams, h, msat, time.Hour)
			}
		}, wantCode: "wrong_network"},
		{name: "macaroon for another hash", setup: func(s *seller, _ *Consumer) {
			s.invoice = func(_ lntypes.Hash, msat int64) string {
				_, other := newPreimage()
				return invoiceFor(s.t, &chaincfg.RegressionNetParams, other, msat, time.Hour)
			}
		}, wantCode: "hash_mismatch"},
		{name: "per-payment budget", setup: func(_ *seller, c *Consumer) {
			mustSetBudget(c, BudgetUpdate{PerPaymentSats: ptr(int64(49))})
		}, wantCode: "budget_exceeded", wantLimit: storage.LimitPerPayment},
		{name: "daily budget", setup: func(_ *seller, c *Consumer) { mustSetBudget(c, BudgetUpdate{PerDaySats: ptr(int64(59))}) },
			wantCode: "budget_exceeded", wantLimit: storage.LimitPerDay},
		{name: "domain budget", setup: func(_ *seller, c *Consumer) { mustSetBudget(c, BudgetUpdate{PerDomainSats: ptr(int64(10))}) },
			wantCode: "budget_exceeded", wantLimit: storage.LimitPerDomain},
		{name: "denied domain", setup: func(_ *seller, c *Consumer) { mustSetBudget(c, BudgetUpdate{DenyDomains: &[]string{"127.0.0.1"}}) },
			wantCode: "domain_denied"},
		{name: "not on the allow list", setup: func(_ *seller, c *Consumer) {
			mustSetBudget(c, BudgetUpdate{AllowDomains: &[]string{"*.example.com"}})
		}, wantCode: "domain_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newFakeLN()
			s := newSeller(t, ln, 50)
			c, st := newTestConsumer(t, ln)
			if tt.setup != nil {
				tt.setup(s, c)
			}
			_, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/x", MaxSats: tt.maxSats})
			ref := RefusalOf(err)
			if ref == nil || ref.Code != tt.wantCode || ref.Fix == "" {
				t.Fatalf("got %v (%+v), want a %s refusal with a fix", err, ref, tt.wantCode)
			}
			var ce *ChallengeError
			if !errors.As(err, &ce) || (tt.wantCode != "hash_mismatch" && tt.wantCode != "wrong_network" && tt.wantCode != "amountless_invoice" && ce.PriceSats != 50) {
				t.Fatalf("refusal does not say the price: %+v", ce)
			}
			var be *storage.BudgetError
			if tt.wantLimit != "" && (!errors.As(err, &be) || be.Limit != tt.wantLimit) {
				t.Fatalf("limit: %v", err)
			}
			if ln.totalPays() != 0 {
				t.Fatal("a refused challenge was paid")
			}
			if ps, _, _, _ := st.ListPayments(t.Context(), storage.PaymentFilter{}); len(ps) != 0 {
				t.Fatalf("a refused challenge is in the journal: %+v", ps)
			}
		})
	}
}

func mustSetBudget(c *Consumer, u BudgetUpdate) {
	if _, err := c.SetBudget(context.Background(), u); err != nil {
		panic(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestAccessUpstreamFailsAfterPayment(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 20)
	s.failAfterPay = http.StatusBadGateway
	c, st := newTestConsumer(t, ln)
	r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/flaky"})
	if err != nil {
		t.Fatal(err)
	}
	body(t, r)
	if r.Status != http.StatusBadGateway || !r.Paid || r.Token == nil || r.Token.Authorization == "" {
		t.Fatalf("got %d paid=%v token=%+v", r.Status, r.Paid, r.Token)
	}
	toks, _ := st.ListTokens(t.Context())
	if len(toks) != 1 || toks[0].PaymentHash.String() != r.Token.PaymentHash {
		t.Fatalf("token not kept: %+v", toks)
	}
	// Once the upstream recovers, the kept token serves without paying.
	s.mu.Lock()
	s.failAfterPay = 0
	s.mu.Unlock()
	r, err = c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/flaky"})
	if err != nil || r.Status != 200 || r.Paid || !r.FromCache {
		t.Fatalf("after recovery: %v %+v", err, r)
	}
	body(t, r)
}

func TestAccessRetryUnreachableReturnsToken(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 20)
	// The seller dies while l402d pays.
	ln.onPay = func(_ context.Context, _ lntypes.Hash) (invoices.Payment, error, bool) {
		s.srv.CloseClientConnections()
		s.srv.Listener.Close()
		return invoices.Payment{}, nil, false
	}
	c, st := newTestConsumer(t, ln)
	r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/gone"})
	if !errors.Is(err, ErrUpstream) || r == nil || !r.Paid || r.Token == nil || r.Payment.State != string(storage.PaymentSucceeded) {
		t.Fatalf("got %v %+v", err, r)
	}
	if toks, _ := st.ListTokens(t.Context()); len(toks) != 1 {
		t.Fatalf("token not kept: %+v", toks)
	}
}

// TestAccessKeepsTokenOfAnotherRule: a token refused only because it was
// bought for another pricing rule of the same origin (the gate's
// wrong_resource) stays cached for the paths it does open.
func TestAccessKeepsTokenOfAnotherRule(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 5)
	s.rules = []string{"/v1/*", "/v1/premium/*"}
	c, st := newTestConsumer(t, ln)
	for i, step := range []struct {
		path string
		paid bool
	}{{"/v1/a", true}, {"/v1/premium/x", true}, {"/v1/b", false}, {"/v1/premium/y", false}} {
		r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + step.path})
		if err != nil {
			t.Fatal(err)
		}
		body(t, r)
		if r.Status != 200 || r.Paid != step.paid {
			t.Fatalf("step %d %s: %d paid=%v, want paid=%v", i, step.path, r.Status, r.Paid, step.paid)
		}
	}
	if n := ln.totalPays(); n != 2 {
		t.Fatalf("%d payments, want one per pricing rule", n)
	}
	if toks, _ := st.ListTokens(t.Context()); len(toks) != 2 {
		t.Fatalf("%d cached tokens, want both rules' tokens", len(toks))
	}
}

func TestAccessDropsRefusedToken(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 7)
	c, st := newTestConsumer(t, ln)
	first, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/r"})
	if err != nil {
		t.Fatal(err)
	}
	body(t, first)
	s.keys.forget() // the seller no longer honours the token
	r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/r"})
	if err != nil {
		t.Fatal(err)
	}
	body(t, r)
	if r.Status != 200 || !r.Paid || r.Token.PaymentHash == first.Token.PaymentHash {
		t.Fatalf("got %d paid=%v", r.Status, r.Paid)
	}
	toks, _ := st.ListTokens(t.Context())
	if len(toks) != 1 || toks[0].PaymentHash.String() != r.Token.PaymentHash {
		t.Fatalf("refused token not replaced: %+v", toks)
	}
}

func TestAccessServiceTokens(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 3)
	s.service = "weather"
	c, _ := newTestConsumer(t, ln)
	// The resource caveat binds each token to its path; with a service
	// caveat too the scope still comes from the resource.
	r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/w/1"})
	if err != nil || r.Token.Scope != "/w/1" || r.Token.Service != "weather" {
		t.Fatalf("%v %+v", err, r.Token)
	}
	body(t, r)
}

func TestAccessPrivateTargetRefused(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 1)
	c, _ := newTestConsumer(t, ln, func(c *Config) { c.AllowPrivate = false })
	_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	for _, u := range []string{s.srv.URL + "/x", "http://localhost:" + port + "/x"} {
		_, err := c.Access(t.Context(), AccessRequest{URL: u})
		ref := RefusalOf(err)
		if !errors.Is(err, ErrPrivateTarget) || !errors.Is(err, ErrPolicy) || ref == nil || ref.Code != "private_target" {
			t.Fatalf("%s: %v", u, err)
		}
		if _, err := c.Quote(t.Context(), AccessRequest{URL: u}); !errors.Is(err, ErrPrivateTarget) {
			t.Fatalf("quote %s: %v", u, err)
		}
	}
	if s.challengeCount() != 0 {
		t.Fatal("the private target was contacted")
	}
}

func TestAccessNon402Untouched(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/x402":
			w.Header().Set("WWW-Authenticate", `X402 pay="somewhere"`)
			w.WriteHeader(402)
			io.WriteString(w, "pay me in something else")
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			w.Header().Set("X-Test", r.Method+" "+r.Header.Get("X-In"))
			w.WriteHeader(http.StatusTeapot)
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		}
	}))
	defer srv.Close()
	ln := newFakeLN()
	c, _ := newTestConsumer(t, ln)
	r, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + "/echo", Method: "post", Header: http.Header{"X-In": {"yes"}}, Body: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, r); r.Status != http.StatusTeapot || got != "hello" || r.Header.Get("X-Test") != "POST yes" || r.Paid {
		t.Fatalf("echo: %d %q %v", r.Status, got, r.Header)
	}
	r, err = c.Access(t.Context(), AccessRequest{URL: srv.URL + "/x402"})
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, r); r.Status != 402 || got != "pay me in something else" || r.Note == "" {
		t.Fatalf("x402: %d %q %q", r.Status, got, r.Note)
	}
	r, err = c.Access(t.Context(), AccessRequest{URL: srv.URL + "/redirect"})
	if err != nil || r.Status != http.StatusFound {
		t.Fatalf("redirects are returned, not followed: %v %+v", err, r)
	}
	body(t, r)
	if _, err := c.Access(t.Context(), AccessRequest{URL: "http://127.0.0.1:1/x"}); !errors.Is(err, ErrUpstream) {
		t.Fatalf("unreachable: %v", err)
	}
	var fe *field.Error
	for _, req := range []AccessRequest{{URL: "ftp://x/y"}, {URL: srv.URL, Method: "G ET"}, {URL: srv.URL, MaxSats: -1}, {URL: "http://u:p@x/"}} {
		if _, err := c.Access(t.Context(), req); !errors.As(err, &fe) {
			t.Fatalf("%+v: %v, want a *field.Error", req, err)
		}
	}
}

func TestQuote(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 30)
	c, _ := newTestConsumer(t, ln)
	q, err := c.Quote(t.Context(), AccessRequest{URL: s.srv.URL + "/q"})
	if err != nil {
		t.Fatal(err)
	}
	if !q.PaymentRequired || q.PriceSats != 30 || !q.WouldPay || q.Refusal != nil || q.CachedToken || q.Scope != "/q" || q.FeeLimitSats != 10 || len(q.PaymentHash) != 64 {
		t.Fatalf("quote %+v", q)
	}
	q, err = c.Quote(t.Context(), AccessRequest{URL: s.srv.URL + "/q", MaxSats: 29})
	if err != nil || q.WouldPay || q.Refusal == nil || q.Refusal.Code != "price_above_max" {
		t.Fatalf("capped quote %v %+v", err, q)
	}
	mustSetBudget(c, BudgetUpdate{PerDaySats: ptr(int64(35))})
	q, err = c.Quote(t.Context(), AccessRequest{URL: s.srv.URL + "/q"})
	if err != nil || q.WouldPay || q.Refusal == nil || q.Refusal.Code != "budget_exceeded" {
		t.Fatalf("over budget quote %v %+v", err, q)
	}
	if ln.totalPays() != 0 {
		t.Fatal("quoting paid")
	}
	if b, _ := c.Budget(t.Context()); b.Usage.Total.ReservedMsat != 0 {
		t.Fatal("quoting reserved budget")
	}
}

func TestResponseReadBody(t *testing.T) {
	for _, tt := range []struct {
		name      string
		body      string
		limit     int64
		text      string
		base64    string
		truncated bool
	}{
		{name: "text", body: "héllo", limit: 64, text: "héllo"},
		{name: "binary", body: "\xff\x00", limit: 64, base64: "/wA="},
		{name: "truncated", body: "abcdef", limit: 4, text: "abcd", truncated: true},
		{name: "exactly the limit", body: "abcd", limit: 4, text: "abcd"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Response{Body: io.NopCloser(strings.NewReader(tt.body))}
			got, err := r.ReadBody(tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Text == nil) != (tt.text == "") || (got.Text != nil && *got.Text != tt.text) ||
				(got.Base64 == nil) != (tt.base64 == "") || (got.Base64 != nil && *got.Base64 != tt.base64) ||
				got.Truncated != tt.truncated || got.Bytes != min(len(tt.body), int(tt.limit)) {
				t.Errorf("ReadBody(%q, %d) = %+v", tt.body, tt.limit, got)
			}
		})
	}
}

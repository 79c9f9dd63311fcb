package gate

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const prepaidServices = `
services:
  - name: credit
    path: /c/*
    price: 3
    pricing:
      - path: /c/dear/*
        price: 10
    prepaid_credit: 20
  - name: pass
    path: /p/*
    price: 2
`

// TestPrepaidCredit: a credit buys requests at each path's price until
// it is spent, then the 402 sells a top-up of the same balance; the
// refund endpoint answers through the middleware too.
func TestPrepaidCredit(t *testing.T) {
	f := newFixture(t, prepaidServices, nil)
	w := f.do("GET", "/c/a")
	b := body(t, w)
	pp, _ := b["prepaid"].(map[string]any)
	if w.Code != 402 || b["amountSats"] != 20.0 || b["priceSats"] != 3.0 || pp == nil || pp["creditSats"] != 20.0 || len(w.Header().Values("WWW-Authenticate")) != 1 {
		t.Fatalf("402: %d %v %v", w.Code, b, w.Header())
	}
	credit := f.pay(w)
	for i, want := range []string{"17000", "7000", "4000", "1000"} {
		path := "/c/a"
		if i == 1 {
			path = "/c/dear/x"
		}
		if w := f.do("GET", path, "Authorization", credit); w.Code != 200 || w.Header().Get(HeaderBalance) != want {
			t.Fatalf("request %d: %d balance %q, want %s", i, w.Code, w.Header().Get(HeaderBalance), want)
		}
	}
	w = f.do("GET", "/c/a", "Authorization", credit)
	b = body(t, w)
	pp, _ = b["prepaid"].(map[string]any)
	if w.Code != 402 || b["reason"] != "insufficient_balance" || pp == nil || pp["topUpOf"] == nil || pp["balanceMsat"] != 1000.0 || f.nextHit.Load() != 4 {
		t.Fatalf("short: %d %v", w.Code, b)
	}
	top := f.pay(w)
	if w := f.do("GET", "/c/a", "Authorization", top); w.Code != 200 || w.Header().Get(HeaderBalance) != "18000" {
		t.Fatalf("top-up: %d %q", w.Code, w.Header().Get(HeaderBalance))
	}
	if w := f.do("GET", "/c/a", "Authorization", credit); w.Code != 200 || w.Header().Get(HeaderBalance) != "15000" {
		t.Fatalf("first token after the top-up: %d %q", w.Code, w.Header().Get(HeaderBalance))
	}

	// The refund endpoint, reached through the middleware.
	refund := func(method, auth, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, RefundPath, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.1:5555"
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		return w
	}
	pass := f.pay(f.do("GET", "/p/a"))
	for name, tc := range map[string]struct {
		method, auth, body string
		code               int
		field, reason      string
	}{
		"GET":               {"GET", credit, "", http.StatusMethodNotAllowed, "", "method_not_allowed"},
		"no token":          {"POST", "", `{"invoice":"x"}`, http.StatusUnauthorized, "Authorization", "no_credential"},
		"a pass":            {"POST", pass, `{"invoice":"x"}`, http.StatusUnauthorized, "", "wrong_amount"},
		"not JSON":          {"POST", credit, `invoice`, http.StatusBadRequest, "invoice", "bad_request"},
		"not an invoice":    {"POST", credit, `{"invoice":"lnbc1nope"}`, http.StatusBadRequest, "invoice", "bad_request"},
		"no invoice at all": {"POST", credit, `{}`, http.StatusBadRequest, "invoice", "bad_request"},
	} {
		w := refund(tc.method, tc.auth, tc.body)
		b := body(t, w)
		if w.Code != tc.code || b["code"] != tc.reason || (tc.field != "" && b["field"] != tc.field) {
			t.Errorf("%s: %d %v", name, w.Code, b)
		}
	}
	// Nothing of that closed the balance.
	if w := f.do("GET", "/c/a", "Authorization", top); w.Code != 200 || w.Header().Get(HeaderBalance) != "12000" {
		t.Fatalf("after refused refunds: %d %q", w.Code, w.Header().Get(HeaderBalance))
	}
}

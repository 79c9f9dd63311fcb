package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// stubBackend lets the producer start without LND; the dashboard only
// reads. Real LND data is shown in the itest with a real browser.
type stubBackend struct{ invoices.Backend }

func (stubBackend) NodeInfo(context.Context) (invoices.NodeInfo, error) {
	return invoices.NodeInfo{Pubkey: "02" + strings.Repeat("ab", 32)}, nil
}

func newTestDashboard(t *testing.T) (*api.Server, string) {
	t.Helper()
	store, err := storage.Open(t.Context(), storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p, err := producer.New(producer.Config{Store: store, Backend: stubBackend{}})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := api.NewKeys("api-key-0123456789abcdef", "admin-key-0123456789abcdef")
	srv := api.New(api.Config{Keys: keys})
	d, err := New(Config{Keys: keys, Producer: p, Spending: func(context.Context) (Spending, error) {
		return Spending{Window: "UTC day", SpentSats: 1500, BudgetSats: 10000, Payments: 3,
			Domains: []DomainSpend{{Domain: "api.example", SpentSats: 1500, BudgetSats: 5000}}}, nil
	}, Now: func() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	d.Mount(srv)
	return srv, "api-key-0123456789abcdef"
}

func TestDashboardLogin(t *testing.T) {
	srv, key := newTestDashboard(t)
	get := func(cookie *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/dashboard", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	if w := get(nil); w.Code != 200 || !strings.Contains(w.Body.String(), `id="signin"`) {
		t.Fatalf("anonymous: %d %s", w.Code, w.Body)
	}
	post := func(k string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader(url.Values{"key": {k}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	if w := post("wrong-key-wrong-key"); w.Code != 401 || !strings.Contains(w.Body.String(), "login-error") {
		t.Fatalf("wrong key: %d", w.Code)
	}
	w := post(key)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", w.Code)
	}
	cookie := w.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || strings.Contains(cookie.Value, key) {
		t.Fatalf("cookie %+v", cookie)
	}
	page := get(cookie)
	body := page.Body.String()
	for _, want := range []string{`id="revenue-chart"`, `id="activity-chart"`, `<svg`, `id="recent"`, "1,500 sats spent", "api.example", "No challenges yet"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if w := get(&http.Cookie{Name: cookieName, Value: "forged"}); strings.Contains(w.Body.String(), "revenue-chart") {
		t.Fatal("forged cookie accepted")
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := sats(in); got != want {
			t.Errorf("sats(%d) = %q", in, got)
		}
	}
	if pct(1, 4) != "25%" || pct(1, 0) != "0%" {
		t.Error("pct")
	}
	if short("0123456789abcdef0123") != "01234567…ef0123" {
		t.Error(short("0123456789abcdef0123"))
	}
}

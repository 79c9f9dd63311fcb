package gate

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHotPathPaid is the gate's work on a paid request, without the
// network: match the service and rule, parse the credential, verify it
// against the real store (root key from memory, never LND), check the
// token's rate limit, count the outcome, call the next handler.
func BenchmarkHotPathPaid(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, testServices, func(c *Config) { c.TokenRate = -1 })
	f.t = t
	auth := f.pay(f.do("GET", "/api/x"))
	h := f.g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	r := httptest.NewRequest("GET", "/api/data", nil)
	r.RemoteAddr = "192.0.2.1:1"
	r.Header.Set("Authorization", auth)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.code = 0
		h.ServeHTTP(w, r)
		if w.code != http.StatusNoContent {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkMatch is finding the service, the whitelist and the pricing
// rule of a path among a dozen services.
func BenchmarkMatch(b *testing.B) {
	y := "services:\n"
	for _, n := range []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"} {
		y += "  - {name: " + n + ", path: /" + n + "/*, price: 1, whitelist: [/" + n + "/health], pricing: [{path: /" + n + "/premium/*, price: 5}]}\n"
	}
	s := mustServices(b, y+"  - {name: rest, price: 1}\n")
	b.ReportAllocs()
	for b.Loop() {
		svc := s.match("localhost:8080", "/s9/items/42")
		if svc == nil || svc.whitelisted("/s9/items/42") || svc.ruleFor("/s9/items/42").price != 1 {
			b.Fatal("no match")
		}
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int)   { w.code = c }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}

package dashboard

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// The bare address leads to the dashboard, and the sign-in page says where
// each platform keeps the key.
func TestRootRedirectsAndKeyHint(t *testing.T) {
	srv, _ := newTestDashboard(t)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 302 || w.Header().Get("Location") != "/dashboard" {
		t.Fatalf("GET /: %d %q", w.Code, w.Header().Get("Location"))
	}
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "/nope", nil))
	if w.Code != 404 {
		t.Fatalf("GET /nope: %d", w.Code)
	}
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard", nil))
	if b := w.Body.String(); !strings.Contains(b, "Umbrel") || !strings.Contains(b, "StartOS") {
		t.Fatalf("sign-in page does not say where the key is:\n%s", b)
	}
}

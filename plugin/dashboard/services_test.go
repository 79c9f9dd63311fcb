package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402d/l402d/plugin/api"
)

// TestServicesEditor: the admin edits the gate's services file from the
// dashboard; a refused file is shown back with the reason and not
// written; the producer key cannot open the editor.
func TestServicesEditor(t *testing.T) {
	file := filepath.Join(t.TempDir(), "services.yaml")
	reloads := 0
	get, put := api.ServicesFileHandlers(api.ServicesFile{Path: file, MaxBytes: 1 << 20,
		Check: func(b []byte) error {
			if strings.Contains(string(b), "price: -") {
				return errors.New("services.yaml:3: price must be positive")
			}
			return nil
		},
		Reload: func(context.Context) (bool, error) { reloads++; return true, nil },
	})
	keys, _ := api.NewKeys("api-key-0123456789abcdef", "admin-key-0123456789abcdef")
	srv := api.New(api.Config{Keys: keys})
	d, err := New(Config{Keys: keys, ServicesFile: func() (http.Handler, http.Handler) { return get, put }})
	if err != nil {
		t.Fatal(err)
	}
	d.Mount(srv)
	site := "same-origin"
	do := func(method, key, body string) *httptest.ResponseRecorder {
		var r *http.Request
		if body != "" {
			r = httptest.NewRequest(method, "/dashboard/services", strings.NewReader(url.Values{"services": {body}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(method, "/dashboard/services", nil)
		}
		r.AddCookie(&http.Cookie{Name: cookieName, Value: keys.SessionToken(map[string]api.Role{"admin": api.RoleAdmin, "producer": api.RoleProducer}[key])})
		r.Header.Set("Sec-Fetch-Site", site)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	if w := do("GET", "producer", ""); w.Code != 403 {
		t.Fatalf("producer session: %d", w.Code)
	}
	if w := do("GET", "admin", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `id="services"`) || !strings.Contains(w.Body.String(), file) {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	bad := "services:\n  - name: x\n    price: -1\n"
	if w := do("POST", "admin", bad); w.Code != 422 || !strings.Contains(w.Body.String(), "price must be positive") || !strings.Contains(w.Body.String(), "price: -1") {
		t.Fatalf("POST bad: %d %s", w.Code, w.Body)
	}
	good := "services:\n  - name: x\n    price: 2\n"
	if w := do("POST", "admin", good); w.Code != 200 || !strings.Contains(w.Body.String(), "services-saved") {
		t.Fatalf("POST good: %d %s", w.Code, w.Body)
	}
	if b, _ := os.ReadFile(file); string(b) != good || reloads != 1 {
		t.Fatalf("file %q after %d reloads", b, reloads)
	}
	// Another app's page on the same host posts with the admin's cookie:
	// refused, and the file stays.
	site = "same-site"
	if w := do("POST", "admin", "services:\n  - name: x\n    auth: \"off\"\n"); w.Code != http.StatusForbidden {
		t.Fatalf("same-site post: %d %s", w.Code, w.Body)
	}
	if b, _ := os.ReadFile(file); string(b) != good || reloads != 1 {
		t.Fatalf("a same-site post changed the file: %q after %d reloads", b, reloads)
	}
}

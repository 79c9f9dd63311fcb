package dashboard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/l402d/l402d/plugin/api"
)

// servicesView is the services file editor.
type servicesView struct {
	File, Content, Saved, Error string
}

// mountServices adds the editor of the gate's services file (admin
// session only): the same checks, write and reload as PUT
// /api/admin/services, for a node runner without a shell.
func (d *Dashboard) mountServices(s *api.Server) {
	s.Handle("GET /dashboard/services", api.RoleNone, http.HandlerFunc(d.services))
	// A page of another app on the same host (every Umbrel app is on
	// umbrel.local) is same-site, so the SameSite cookie goes along with
	// its form posts: refuse cross-origin posts, or such a page could set
	// every price to nothing.
	s.Handle("POST /dashboard/services", api.RoleNone, http.NewCrossOriginProtection().Handler(http.HandlerFunc(d.services)))
}

func (d *Dashboard) services(w http.ResponseWriter, r *http.Request) {
	if d.role(r) != api.RoleAdmin {
		d.render(w, http.StatusForbidden, "login.html", loginView{Error: "editing the gate's services needs the admin key: sign in with it"})
		return
	}
	var get, put http.Handler
	if d.cfg.ServicesFile != nil {
		get, put = d.cfg.ServicesFile()
	}
	if get == nil {
		d.render(w, http.StatusNotFound, "services.html", servicesView{Error: "the gate is not enabled: start l402d with --gate.listen ADDR and --gate.services FILE"})
		return
	}
	v := servicesView{}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
		if err := r.ParseForm(); err != nil {
			d.render(w, http.StatusBadRequest, "services.html", servicesView{Error: "the form could not be read: " + err.Error()})
			return
		}
		v.Content = strings.ReplaceAll(r.PostForm.Get("services"), "\r\n", "\n")
		rec := httptest.NewRecorder()
		put.ServeHTTP(rec, httptest.NewRequestWithContext(r.Context(), "PUT", "/api/admin/services", strings.NewReader(v.Content)))
		var out struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		if rec.Code == http.StatusOK {
			v.Saved = "saved; the gate serves it now"
		} else {
			status, v.Error = rec.Code, out.Error
		}
	}
	rec := httptest.NewRecorder()
	get.ServeHTTP(rec, httptest.NewRequestWithContext(r.Context(), "GET", "/api/admin/services", nil))
	v.File = rec.Header().Get("X-Services-File")
	if v.Error == "" {
		v.Content = rec.Body.String()
	}
	d.render(w, status, "services.html", v)
}

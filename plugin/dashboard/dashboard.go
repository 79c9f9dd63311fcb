// Package dashboard serves l402d's web page for node runners: revenue over
// time, challenges and settlements, tokens, spending against budgets, and
// node and watcher health. It is rendered on the server with html/template
// and draws its charts as inline SVG, so there is no JavaScript and no
// build step. It reads through the producer and a few callbacks; it
// writes nothing but its session cookie.
package dashboard

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

//go:embed templates/*.html
var templates embed.FS

// cookieName is the session cookie.
const cookieName = "l402d_session"

// Config configures the dashboard.
type Config struct {
	Keys     *api.Keys
	Producer *producer.Producer
	Health   func(ctx context.Context) api.Health
	// Spending, if set, reports the consumer side against its budgets.
	Spending func(ctx context.Context) (Spending, error)
	// ServicesFile, if set, returns the GET and PUT handlers of the gate's
	// services file (api.ServicesFileHandlers), nil while the gate is off;
	// the admin edits the file at /dashboard/services through them.
	ServicesFile func() (get, put http.Handler)
	// Revocations counts revoked tokens.
	Revocations func(ctx context.Context) (int, error)
	Logger      *slog.Logger
	Now         func() time.Time
}

// Spending is the consumer side at a glance.
type Spending struct {
	Window        string // e.g. "UTC day"
	SpentSats     int64
	FeesSats      int64
	BudgetSats    int64 // 0: no budget
	Payments      int
	PerPaymentMax int64
	Domains       []DomainSpend
}

// DomainSpend is one domain's spending against its budget.
type DomainSpend struct {
	Domain     string
	SpentSats  int64
	BudgetSats int64
}

// Dashboard is the handler.
type Dashboard struct {
	cfg  Config
	page *template.Template
}

// New parses the templates.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &Dashboard{cfg: cfg, page: t}, nil
}

// Mount adds the dashboard's routes to the API server. They do their own
// authentication with a session cookie, since browsers cannot send keys.
func (d *Dashboard) Mount(s *api.Server) {
	// The bare address (what a platform's "open" button or a person
	// typing the host reaches) leads to the dashboard.
	s.Handle("GET /{$}", api.RoleNone, http.RedirectHandler("/dashboard", http.StatusFound))
	s.Handle("GET /dashboard", api.RoleNone, http.HandlerFunc(d.serve))
	s.Handle("POST /dashboard/login", api.RoleNone, http.HandlerFunc(d.login))
	s.Handle("POST /dashboard/logout", api.RoleNone, http.HandlerFunc(d.logout))
	d.mountServices(s)
}

// role is the signed-in role: the producer's or the admin's (the spend
// key does not open the dashboard).
func (d *Dashboard) role(r *http.Request) api.Role {
	if c, err := r.Cookie(cookieName); err == nil {
		return d.cfg.Keys.SessionRole(c.Value)
	}
	return dashboardRole(d.cfg.Keys.Role(api.KeyFromRequest(r)))
}

func dashboardRole(r api.Role) api.Role {
	if r == api.RoleProducer || r == api.RoleAdmin {
		return r
	}
	return api.RoleNone
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		d.render(w, http.StatusBadRequest, "login.html", loginView{Error: "the form could not be read"})
		return
	}
	role := dashboardRole(d.cfg.Keys.Role(strings.TrimSpace(r.PostForm.Get("key"))))
	if role == api.RoleNone {
		d.render(w, http.StatusUnauthorized, "login.html", loginView{Error: "that key is not this l402d's api.key or admin.key"})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: d.cfg.Keys.SessionToken(role), Path: "/dashboard",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 7 * 24 * 3600,
	})
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Path: "/dashboard", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// view is everything the page shows.
type view struct {
	Now        time.Time
	Health     api.Health
	Total      storage.Counters
	Range      storage.Counters
	Days       []dayPoint
	Recent     []storage.Challenge
	Revoked    int
	Spending   *Spending
	SpendError string
	Errors     []string
}

type dayPoint struct {
	Day         time.Time
	Created     int64
	Settled     int64
	RevenueSats int64
}

type loginView struct{ Error string }

func (d *Dashboard) serve(w http.ResponseWriter, r *http.Request) {
	if d.role(r) == api.RoleNone {
		d.render(w, http.StatusOK, "login.html", loginView{})
		return
	}
	ctx := r.Context()
	now := d.cfg.Now().UTC()
	v := view{Now: now}
	if d.cfg.Health != nil {
		v.Health = d.cfg.Health(ctx)
	}
	since := now.Truncate(24*time.Hour).AddDate(0, 0, -29)
	if st, err := d.cfg.Producer.Stats(ctx, since, time.Time{}); err != nil {
		v.Errors = append(v.Errors, "stats: "+err.Error())
	} else {
		v.Total, v.Range = st.Total, st.Range
		v.Days = fillDays(since, st.Days)
	}
	if list, _, err := d.cfg.Producer.Challenges(ctx, storage.ChallengeFilter{Limit: 15}); err != nil {
		v.Errors = append(v.Errors, "challenges: "+err.Error())
	} else {
		v.Recent = list
	}
	if d.cfg.Revocations != nil {
		if n, err := d.cfg.Revocations(ctx); err == nil {
			v.Revoked = n
		}
	}
	if d.cfg.Spending != nil {
		if s, err := d.cfg.Spending(ctx); err != nil {
			v.SpendError = err.Error()
		} else {
			v.Spending = &s
		}
	}
	d.render(w, http.StatusOK, "dashboard.html", v)
}

// fillDays gives every day of the 30-day window a point, zero where the
// store has no activity.
func fillDays(since time.Time, days []storage.DayStats) []dayPoint {
	byDay := map[string]storage.DayStats{}
	for _, d := range days {
		byDay[d.Day.Format(time.DateOnly)] = d
	}
	out := make([]dayPoint, 30)
	for i := range out {
		day := since.AddDate(0, 0, i)
		s := byDay[day.Format(time.DateOnly)]
		out[i] = dayPoint{Day: day, Created: int64(s.Created), Settled: int64(s.Settled), RevenueSats: s.RevenueMsat / 1000}
	}
	return out
}

func (d *Dashboard) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := d.page.ExecuteTemplate(w, name, data); err != nil {
		d.cfg.Logger.Error("dashboard render", "template", name, "err", err)
	}
}

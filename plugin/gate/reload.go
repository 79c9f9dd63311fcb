package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// ReloadStatus says which services file the gate serves and how the
// last reload went.
type ReloadStatus struct {
	File     string    `json:"file,omitempty"`
	LoadedAt time.Time `json:"loadedAt"`
	// Hash is the sha256 of the file being served (empty when the
	// services were built in Go).
	Hash     string `json:"hash,omitempty"`
	Services int    `json:"services"`
	Reloads  int    `json:"reloads"`
	// LastAttempt, LastError and Errors describe the last reload that
	// failed, until one succeeds; the old services kept running.
	LastAttempt time.Time    `json:"lastAttempt,omitzero"`
	LastError   string       `json:"lastError,omitempty"`
	Errors      ConfigErrors `json:"errors,omitempty"`
}

// ErrNoServicesFile: Reload was called on a gate built without a file.
var ErrNoServicesFile = errors.New("gate: no services file to reload")

// Status returns the reload status.
func (g *Gate) Status() ReloadStatus {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.status
}

// Reload re-reads the services file and serves it if it is valid. An
// invalid file is refused with every problem and its line, and the
// services running before keep running. changed is false when the file's
// content is what is already served.
func (g *Gate) Reload(context.Context) (changed bool, err error) {
	if g.cfg.ServicesFile == "" {
		return false, ErrNoServicesFile
	}
	data, err := readLimited(g.cfg.ServicesFile)
	if err != nil {
		g.log.Error("gate: services file unreadable; the previous services keep running", "file", g.cfg.ServicesFile, "err", err)
		g.reloadMu.Lock()
		g.recordFailure(err)
		g.reloadMu.Unlock()
		return false, err
	}
	return g.reloadData(data)
}

func (g *Gate) reloadData(data []byte) (bool, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	hash := sha256.Sum256(data)
	if hash == g.state.Load().svcs.hash {
		// Back to (or still at) what runs: nothing failed.
		g.status.LastError, g.status.Errors = "", nil
		return false, nil
	}
	svcs, err := ParseServices(data, g.parseOptions())
	if err == nil {
		err = g.install(svcs)
	}
	if err != nil {
		g.recordFailure(err)
		g.log.Error("gate: services file refused; the previous services keep running", "file", g.cfg.ServicesFile, "err", err)
		return false, err
	}
	g.status = ReloadStatus{File: g.cfg.ServicesFile, LoadedAt: g.cfg.Now().UTC(), Hash: hashString(hash), Services: svcs.Len(), Reloads: g.status.Reloads + 1}
	g.log.Info("gate: services reloaded", "file", g.cfg.ServicesFile, "services", svcs.Len(), "hash", g.status.Hash[:12])
	return true, nil
}

// recordFailure notes a failed reload; the caller holds reloadMu.
func (g *Gate) recordFailure(err error) {
	g.status.LastAttempt = g.cfg.Now().UTC()
	g.status.LastError = err.Error()
	g.status.Errors = nil
	var ce ConfigErrors
	if errors.As(err, &ce) {
		g.status.Errors = ce
	}
}

// Swap serves svcs from now on, for programs that build their services
// in Go. Requests in flight finish with the services they started with.
func (g *Gate) Swap(svcs *Services) error {
	if svcs == nil {
		return errors.New("gate: Swap needs services")
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if err := g.install(svcs); err != nil {
		return err
	}
	g.status = ReloadStatus{File: g.cfg.ServicesFile, LoadedAt: g.cfg.Now().UTC(), Hash: hashString(svcs.hash), Services: svcs.Len(), Reloads: g.status.Reloads + 1}
	return nil
}

// Watch reloads the services file whenever its content changes, checking
// every interval, until ctx ends. A change that does not parse is logged
// once and the running services are kept.
func (g *Gate) Watch(ctx context.Context, interval time.Duration) error {
	if g.cfg.ServicesFile == "" {
		return ErrNoServicesFile
	}
	if interval <= 0 {
		return fmt.Errorf("gate: watch interval %v must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastMod time.Time
	var lastSize int64 = -1
	var lastSeen [32]byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fi, err := os.Stat(g.cfg.ServicesFile)
		if err != nil {
			if lastSize != -2 {
				g.log.Warn("gate: services file unreadable; the running services are kept", "file", g.cfg.ServicesFile, "err", err)
			}
			lastSize = -2
			continue
		}
		if fi.ModTime().Equal(lastMod) && fi.Size() == lastSize {
			continue
		}
		lastMod, lastSize = fi.ModTime(), fi.Size()
		data, err := readLimited(g.cfg.ServicesFile)
		if err != nil {
			g.log.Warn("gate: reading the services file", "err", err)
			continue
		}
		hash := sha256.Sum256(data)
		if bytes.Equal(hash[:], lastSeen[:]) {
			continue
		}
		lastSeen = hash
		_, _ = g.reloadData(data) // logged and recorded by reloadData
	}
}

func hashString(h [32]byte) string {
	if h == ([32]byte{}) {
		return ""
	}
	return hex.EncodeToString(h[:])
}

// serviceView is a service as the admin API shows it: its configuration,
// defaults applied, upstream included.
type serviceView struct {
	Name          string         `json:"name"`
	Host          string         `json:"host,omitempty"`
	Path          string         `json:"path"`
	Upstream      string         `json:"upstream,omitempty"`
	Protocol      Protocol       `json:"protocol"`
	Auth          AuthMode       `json:"auth"`
	FreeRequests  int            `json:"freeRequests,omitempty"`
	FreeWindow    string         `json:"freeWindow,omitempty"`
	PriceSats     int64          `json:"priceSats,omitempty"`
	Pricing       []pricingView  `json:"pricing,omitempty"`
	TokenValidity string         `json:"tokenValidity"`
	Capabilities  []string       `json:"capabilities,omitempty"`
	Whitelist     []string       `json:"whitelist,omitempty"`
	Timeout       string         `json:"timeout"`
	RateLimit     *rateLimitView `json:"rateLimit,omitempty"`
	Description   string         `json:"description,omitempty"`
}

type pricingView struct {
	Path      string `json:"path"`
	PriceSats int64  `json:"priceSats"`
}

type rateLimitView struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

func viewOf(svc *service) serviceView {
	c := svc.cfg
	v := serviceView{Name: c.Name, Host: c.Host, Path: c.Path, Upstream: c.Upstream, Protocol: c.Protocol, Auth: c.Auth,
		PriceSats: c.PriceSats, Capabilities: c.Capabilities, Whitelist: c.Whitelist, Timeout: c.Timeout.String(), Description: c.Description}
	if c.Auth == AuthFreebie {
		v.FreeRequests, v.FreeWindow = c.FreeRequests, c.FreeWindow.String()
	}
	for _, p := range c.Pricing {
		v.Pricing = append(v.Pricing, pricingView{Path: p.Path, PriceSats: p.PriceSats})
	}
	switch {
	case c.TokenValidity < 0:
		v.TokenValidity = "never expires"
	case c.TokenValidity == 0:
		v.TokenValidity = "default"
	default:
		v.TokenValidity = c.TokenValidity.String()
	}
	if rl := c.RateLimit; rl != nil {
		v.RateLimit = &rateLimitView{Rate: rl.Rate, Burst: svc.tokenBurst}
	}
	return v
}

// ServicesHandler serves the running services, upstreams included, and
// the reload status. Mount it behind the admin key.
func (g *Gate) ServicesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := g.state.Load()
		views := make([]serviceView, len(st.svcs.list))
		for i, svc := range st.svcs.list {
			views[i] = viewOf(svc)
		}
		writeJSON(w, http.StatusOK, struct {
			Status    ReloadStatus  `json:"status"`
			Discovery bool          `json:"discovery"`
			Pending   int           `json:"pendingInvoices"`
			Services  []serviceView `json:"services"`
		}{g.Status(), st.svcs.discovery, g.pending.outstanding(), views})
	})
}

// ReloadHandler reloads the services file now and answers with the
// outcome: 200 with changed true or false, or 422 with every problem and
// its line (the old services keep running).
func (g *Gate) ReloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		changed, err := g.Reload(r.Context())
		var ce ConfigErrors
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, struct {
				Changed bool         `json:"changed"`
				Status  ReloadStatus `json:"status"`
			}{changed, g.Status()})
		case errors.Is(err, ErrNoServicesFile):
			writeJSON(w, http.StatusConflict, errorBody{Error: "the gate was started without a services file", Code: "no_services_file", Fix: "start l402d with --gate.services FILE"})
		case errors.As(err, &ce):
			first := ce[0]
			writeJSON(w, http.StatusUnprocessableEntity, struct {
				errorBody
				Errors ConfigErrors `json:"errors"`
			}{errorBody{Error: "the services file was refused; the previous services keep running: " + first.Error(), Code: "invalid_services",
				Field: first.Field, Fix: first.Fix}, ce})
		default:
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "reloading the services file: " + err.Error(), Code: "reload_failed",
				Fix: "check that the file exists and l402d may read it"})
		}
	})
}

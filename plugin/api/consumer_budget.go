package api

import (
	"net/http"
	"time"

	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/storage"
)

// BudgetResponse is the budget as GET and PUT /api/consumer/budget show it.
type BudgetResponse = apiclient.Budget

// BudgetWindow is what one budget window holds today. RemainingSats is
// null when the window has no limit.
type BudgetWindow = apiclient.BudgetWindow

// NewBudgetResponse renders the budget state as the budget endpoints (and
// MCP's get_budget_status) show it.
func NewBudgetResponse(b consumer.Budget) BudgetResponse {
	var out BudgetResponse
	l := b.Limits
	out.Limits.PerPaymentSats, out.Limits.PerDaySats, out.Limits.PerDomainSats = l.PerPaymentSats, l.PerDaySats, l.PerDomainSats
	out.Limits.UnapprovedPerHourSats = l.UnapprovedPerHourSats
	out.Limits.AllowDomains, out.Limits.DenyDomains, out.Limits.UpdatedAt = l.AllowDomains, l.DenyDomains, l.UpdatedAt.UTC()
	if out.Limits.AllowDomains == nil {
		out.Limits.AllowDomains = []string{}
	}
	if out.Limits.DenyDomains == nil {
		out.Limits.DenyDomains = []string{}
	}
	out.Window = "UTC calendar day"
	out.Day = b.Usage.Day.Format(time.DateOnly)
	out.ResetsAt = b.Usage.Day.Add(24 * time.Hour)
	window := func(domain string, c storage.BudgetCounter, limit int64) BudgetWindow {
		w := BudgetWindow{Domain: domain, SpentSats: c.SpentMsat / 1000, SpentMsat: c.SpentMsat, ReservedMsat: c.ReservedMsat}
		if limit > 0 {
			rem := max(0, (limit*1000-c.SpentMsat-c.ReservedMsat)/1000)
			w.RemainingSats = &rem
		}
		return w
	}
	out.Today = window("", b.Usage.Total, l.PerDaySats)
	out.Domains = []BudgetWindow{}
	for _, d := range b.Usage.Domains {
		out.Domains = append(out.Domains, window(d.Domain, d.BudgetCounter, l.PerDomainSats))
	}
	return out
}

func (h *consumerAPI) budget(w http.ResponseWriter, r *http.Request) {
	b, err := h.c.Budget(r.Context())
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewBudgetResponse(b))
}

func (h *consumerAPI) setBudget(w http.ResponseWriter, r *http.Request) {
	if !IsLoopback(r) {
		WriteError(w, http.StatusForbidden, ErrorBody{Error: "the budget can only be changed from the node itself", Code: "forbidden", Field: "X-API-Key",
			Fix: "run l402cli budget set on the machine l402d runs on, with the admin key"})
		return
	}
	f, e := decodeObject(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	var u consumer.BudgetUpdate
	for _, p := range []struct {
		dst  **int64
		name string
	}{{&u.PerPaymentSats, "perPaymentSats"}, {&u.PerDaySats, "perDaySats"}, {&u.PerDomainSats, "perDomainSats"}, {&u.UnapprovedPerHourSats, "unapprovedPerHourSats"}} {
		n, present, e := f.int64(p.name)
		if e != nil {
			WriteError(w, http.StatusBadRequest, *e)
			return
		}
		if present {
			*p.dst = &n
		}
	}
	for _, p := range []struct {
		dst  **[]string
		name string
	}{{&u.AllowDomains, "allowDomains"}, {&u.DenyDomains, "denyDomains"}} {
		list, present, e := f.strList(p.name)
		if e != nil {
			WriteError(w, http.StatusBadRequest, *e)
			return
		}
		if present {
			*p.dst = &list
		}
	}
	b, err := h.c.SetBudget(r.Context(), u)
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewBudgetResponse(b))
}

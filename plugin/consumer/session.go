package consumer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// HeaderBalance is the header a seller's gate reports a session's
// balance in (msat).
const HeaderBalance = "L402-Balance-Msat"

// HeaderMeter is the header a seller's gate marks a metered response
// with (what it charges per, and the price).
const HeaderMeter = "L402-Meter"

// returnInvoiceExpiry is how long the refund invoice of a session can be
// paid: a session may stay open for weeks.
const returnInvoiceExpiry = 30 * 24 * time.Hour

// sessionAccess is Access with AccessRequest.Session: the request is paid
// from a prepaid MPP session held at the URL's origin — opened with one
// deposit on the first 402 that offers one, topped up with another when
// the seller says the balance is spent — so requests after the first cost
// no Lightning payment. Every deposit goes through the journal, the spend
// policy and the budgets like any payment, and the session is recorded
// before its deposit is paid, so a crash in between is resumed, not paid
// again.
func (c *Consumer) sessionAccess(ctx context.Context, req AccessRequest, pr *prepared) (*Response, error) {
	if pr.header.Get("Authorization") != "" {
		return nil, &field.Error{Field: "header.Authorization", Problem: "is set; a session access sends its own credential", Fix: "leave Authorization out, or do not ask for a session"}
	}
	// A seller's sessions are per service, and one origin may sell
	// several: the held session tried first is the one opened on the
	// closest URL; a 402 naming another service (wrong_session) points to
	// that service's session, or opens one.
	tried := map[lntypes.Hash]bool{}
	prefer := ""
	for range 4 {
		all, err := c.store.HeldSessions(ctx, pr.origin)
		if err != nil {
			return nil, err
		}
		held := pickHeld(all, storage.HeldOpen, pr.u.Path, prefer, tried)
		var resp *http.Response
		if held != nil {
			if resp, err = c.sendSession(ctx, pr, held, mpp.SessionPayload{Action: mpp.ActionBearer, SessionID: held.ID.String()}, nil); err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusPaymentRequired {
				return c.sessionAnswer(ctx, resp, held, false, nil, nil), nil
			}
		} else {
			// Learn the offer (and which service it is for) first.
			if resp, err = c.do(ctx, pr, nil); err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusPaymentRequired {
				return c.answer(resp, nil, false), nil
			}
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		var why struct {
			Reason  string `json:"reason"`
			Service string `json:"service"`
		}
		_ = json.Unmarshal(body, &why)
		if held != nil {
			switch why.Reason {
			case "insufficient_balance":
				return c.topUp(ctx, req, pr, held, resp.Header, body)
			case "session_closed", "unknown_token":
				if _, err := c.store.UpdateHeldSession(ctx, held.Origin, held.ID, func(h *storage.HeldSession) { h.State = storage.HeldClosed }); err != nil {
					return nil, err
				}
			}
			tried[held.ID] = true
		}
		if why.Service != "" && pickHeld(all, storage.HeldOpen, pr.u.Path, why.Service, tried) != nil {
			prefer = why.Service
			continue
		}
		// A session of this service left opening by a crash is resumed
		// (its deposit is in the journal); else this 402 opens one.
		return c.openSession(ctx, req, pr, pickHeld(all, storage.HeldOpening, pr.u.Path, why.Service, nil), resp.Header, why.Service, tried)
	}
	return nil, &PolicyError{Code: "no_session_fits", Field: "url", Problem: "the seller refused every session held at " + pr.origin + " for this URL",
		Fix: "close them (POST /api/consumer/sessions/{id}/close) and access again"}
}

// pickHeld is the held session in state to use for path: of service when
// it is set (else any), not in skip, opened on the URL whose path shares
// the longest prefix with path (the most recently used among equals); nil
// for none.
func pickHeld(all []storage.HeldSession, state, path, service string, skip map[lntypes.Hash]bool) *storage.HeldSession {
	var best *storage.HeldSession
	bestLen := -1
	for i := range all {
		h := &all[i]
		// A session left opening by an older l402d has no service: it
		// may be resumed for any (the seller refuses a wrong one).
		// L402 prepaid credit is held beside the sessions; it is spent
		// with its token, never with a session credential.
		if h.Prepaid || h.State != state || skip[h.ID] || (service != "" && h.Service != service && !(state == storage.HeldOpening && h.Service == "")) {
			continue
		}
		n := 0
		if u, err := url.Parse(h.URL); err == nil {
			for n < len(u.Path) && n < len(path) && u.Path[n] == path[n] {
				n++
			}
		}
		if n > bestLen || (n == bestLen && h.UpdatedAt.After(best.UpdatedAt)) {
			best, bestLen = h, n
		}
	}
	return best
}

// sessionOffer is the session challenge of a 402's headers.
func sessionOffer(h http.Header) (mpp.Challenge, mpp.SessionRequest, error) {
	cs, _ := mpp.ParseChallengesHeader(h)
	for _, c := range cs {
		if c.Intent != mpp.IntentSession {
			continue
		}
		req, err := c.SessionRequest()
		if err == nil && req.DepositInvoice != "" {
			return c, req, nil
		}
	}
	return mpp.Challenge{}, mpp.SessionRequest{}, &PolicyError{Code: "no_session_offered", Field: "url", Problem: "the seller's 402 offers no prepaid session",
		Fix: "access it without session, paying per request"}
}

// openSession opens a session of service at pr's origin: with held
// (opening, left by a crash) it resumes that one; otherwise it reads the
// session challenge of challenge (a 402's headers; nil: it asks for one),
// records the session, pays its deposit and opens it with this request.
//
// tried are the open sessions that this access found no good for it; one
// opened by a concurrent access meanwhile is used instead, so that
// concurrent first accesses pay one deposit.
func (c *Consumer) openSession(ctx context.Context, req AccessRequest, pr *prepared, held *storage.HeldSession, challenge http.Header, service string, tried map[lntypes.Hash]bool) (*Response, error) {
	unlock, err := c.lockOrigin(ctx, pr.origin)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A concurrent access may have opened one while this one waited:
	// one deposit, not two.
	all, err := c.store.HeldSessions(ctx, pr.origin)
	if err != nil {
		return nil, err
	}
	if pickHeld(all, storage.HeldOpen, pr.u.Path, service, tried) != nil {
		unlock()
		return c.sessionAccess(ctx, req, pr)
	}
	if held == nil && service != "" {
		// One a concurrent access recorded and could not finish: resume
		// it rather than record (and pay) a second.
		held = pickHeld(all, storage.HeldOpening, pr.u.Path, service, nil)
	}
	var ch mpp.Challenge
	var sreq mpp.SessionRequest
	if held != nil {
		if err := json.Unmarshal(held.Challenge, &ch); err != nil {
			return nil, fmt.Errorf("consumer: held session %s: %w", held.ID, err)
		}
		if sreq, err = ch.SessionRequest(); err != nil {
			return nil, err
		}
	} else {
		if challenge == nil {
			resp, err := c.do(ctx, pr, nil)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusPaymentRequired {
				return c.answer(resp, nil, false), nil
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			challenge = resp.Header
		}
		if ch, sreq, err = sessionOffer(challenge); err != nil {
			return nil, err
		}
		inv, err := c.ln.AddInvoice(ctx, invoices.AddInvoiceRequest{Memo: "l402d session refund from " + pr.origin, Expiry: returnInvoiceExpiry})
		if err != nil {
			return nil, fmt.Errorf("consumer: making the session's refund invoice: %w", err)
		}
		raw, _ := json.Marshal(ch)
		held = &storage.HeldSession{Origin: pr.origin, Service: service, URL: pr.u.String(), Challenge: raw, ReturnInvoice: inv.PaymentRequest, ReturnHash: inv.PaymentHash,
			DepositedMsat: sreq.DepositSats() * 1000, State: storage.HeldOpening, OpenedAt: c.cfg.Now()}
		if held.ID, err = lntypes.MakeHashFromStr(sreq.PaymentHash); err != nil {
			return nil, err
		}
		if err := c.store.PutHeldSession(ctx, held); err != nil {
			return nil, err
		}
	}
	p, err := c.payDeposit(ctx, req, pr, sreq)
	var pe *PolicyError
	if errors.As(err, &pe) && pe.Code == "invoice_expired" && held.State == storage.HeldOpening {
		// A deposit left unpaid by a crash until its invoice expired:
		// nothing was paid; forget it and open afresh.
		if _, err := c.store.UpdateHeldSession(ctx, held.Origin, held.ID, func(h *storage.HeldSession) { h.State = storage.HeldClosed }); err != nil {
			return nil, err
		}
		unlock()
		return c.openSession(ctx, req, pr, nil, nil, service, tried)
	}
	if err != nil {
		return nil, err
	}
	resp, err := c.sendSession(ctx, pr, held, mpp.SessionPayload{Action: mpp.ActionOpen, ReturnInvoice: held.ReturnInvoice}, &p.Preimage)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusPaymentRequired {
		r := c.answer(resp, nil, false)
		r.Paid, r.Payment, r.Note = true, paymentInfo(p, false), "the seller refused to open the session its deposit paid for; the deposit is recorded in the journal"
		return r, nil
	}
	return c.sessionAnswer(ctx, resp, held, true, p, func(h *storage.HeldSession) { h.State = storage.HeldOpen }), nil
}

// topUp pays the deposit of the session challenge in a 402 (h) that said
// held's balance is spent, and presents it with the request.
func (c *Consumer) topUp(ctx context.Context, req AccessRequest, pr *prepared, held *storage.HeldSession, h http.Header, body []byte) (*Response, error) {
	unlock, err := c.lockOrigin(ctx, pr.origin)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := c.store.HeldSession(ctx, held.ID)
	if err != nil {
		return nil, err
	}
	if cur.DepositedMsat != held.DepositedMsat || cur.State != storage.HeldOpen {
		// Topped up (or closed) by a concurrent access meanwhile.
		unlock()
		return c.sessionAccess(ctx, req, pr)
	}
	var ch mpp.Challenge
	var sreq mpp.SessionRequest
	pending := len(cur.TopUp) > 0
	if pending {
		// A top-up decided before a crash or a lost answer: that deposit
		// (paid or not) is presented, never a second one.
		if err := json.Unmarshal(cur.TopUp, &ch); err != nil {
			return nil, fmt.Errorf("consumer: held session %s: its top-up: %w", cur.ID, err)
		}
		if sreq, err = ch.SessionRequest(); err != nil {
			return nil, err
		}
	} else {
		if ch, sreq, err = sessionOffer(h); err != nil {
			return nil, err
		}
		var said struct {
			Meter json.RawMessage `json:"meter"`
		}
		_ = json.Unmarshal(body, &said)
		// A metered seller's balance shrinks as its responses flow,
		// after it reported it: its ask for a top-up is believable (the
		// deposit is still bounded by the budgets).
		metered := cur.Metered || len(said.Meter) > 0
		balance, said402 := cur.BalanceMsat, "last reported"
		if bal, err := strconv.ParseInt(h.Get(HeaderBalance), 10, 64); err == nil && bal >= 0 {
			// The seller's word now, on the 402 itself: newer than the
			// record, which concurrent answers may have left stale (or a
			// crash between an answer and its record).
			balance, said402 = bal, "reports"
			if cur, err = c.store.UpdateHeldSession(ctx, cur.Origin, cur.ID, func(hs *storage.HeldSession) { hs.BalanceMsat = bal }); err != nil {
				return nil, err
			}
		}
		if !metered && balance >= sreq.AmountSats()*1000 && sreq.AmountSats() > 0 {
			// The seller says the balance covers a request at this
			// price: a seller that asks for another deposit anyway would
			// drain one per request. Refuse.
			return nil, &PolicyError{Code: "session_topup_refused", Field: "session",
				Problem: fmt.Sprintf("the seller asks for a top-up, but %s a balance of %d msat, enough for a request at %s sats: %s", said402, balance, sreq.Amount, bytes.TrimSpace(body)),
				Fix:     "close the session (l402cli sessions close) and check the seller"}
		}
		raw, _ := json.Marshal(ch)
		if _, err := c.store.UpdateHeldSession(ctx, cur.Origin, cur.ID, func(h *storage.HeldSession) { h.TopUp = raw }); err != nil {
			return nil, err
		}
	}
	p, err := c.payDeposit(ctx, req, pr, sreq)
	var pe *PolicyError
	if errors.As(err, &pe) && pe.Code == "invoice_expired" && pending {
		// Never paid, and now it cannot be: forget it, top up afresh.
		if _, err := c.store.UpdateHeldSession(ctx, cur.Origin, cur.ID, func(h *storage.HeldSession) { h.TopUp = nil }); err != nil {
			return nil, err
		}
		unlock()
		return c.sessionAccess(ctx, req, pr)
	}
	if err != nil {
		return nil, err
	}
	resp, err := c.sendSessionWith(ctx, pr, ch, mpp.SessionPayload{Action: mpp.ActionTopUp, SessionID: cur.ID.String(), TopUpPreimage: p.Preimage.String()})
	if err != nil {
		return nil, err // the top-up stays pending: the next access presents it again
	}
	// The seller credits a top-up before it lets the request through: an
	// answer from the service, one carrying the balance, or a 402 saying
	// the balance (now topped up) is still short means it was credited,
	// and "consumed" that an earlier try whose answer was lost credited it.
	// A 4xx or 5xx without the balance (the seller's store failed, it is
	// shutting down, a proxy in front of it refused) says nothing: the
	// top-up stays pending and is presented again. Any other 402 refused
	// it.
	reason := ""
	var kept []byte
	if resp.StatusCode == http.StatusPaymentRequired {
		kept, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		var why struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(kept, &why)
		reason = why.Reason
		resp.Body = io.NopCloser(bytes.NewReader(kept))
	}
	credited := resp.Header.Get(HeaderBalance) != "" || reason == "insufficient_balance" || reason == "consumed" || resp.StatusCode < 400
	if !credited && resp.StatusCode != http.StatusPaymentRequired {
		// Not a verdict on the credential: keep it pending. Presenting a
		// credited top-up again costs nothing (it is answered
		// "consumed"); forgetting an uncredited one would lose it.
		return c.sessionAnswer(ctx, resp, cur, true, p, nil), nil
	}
	if !credited {
		// The session is gone (closed, or unknown to the seller), not the
		// deposit: unspent at the seller, it opens a session of its own,
		// which resumeOpenings finishes. Otherwise it is lost; say so.
		if err := c.reuseDeposit(ctx, cur, ch, sreq, reason); err != nil {
			c.log.Warn("consumer: the seller refused a session top-up; its deposit was paid and is not credited", "session", cur.ID, "deposit", sreq.PaymentHash, "reason", reason, "err", err)
		}
	}
	record := func(h *storage.HeldSession) {
		if credited {
			h.DepositedMsat += sreq.DepositSats() * 1000
		}
		h.TopUp = nil
	}
	if reason == "consumed" {
		if _, err := c.store.UpdateHeldSession(ctx, cur.Origin, cur.ID, record); err != nil {
			return nil, err
		}
		unlock()
		return c.sessionAccess(ctx, req, pr)
	}
	return c.sessionAnswer(ctx, resp, cur, true, p, record), nil
}

// reuseDeposit records top-up ch of held, paid and refused because the
// session is closed or unknown, as a new session opening with it (the
// caller holds the origin's lock). Refusals for other reasons are errors.
func (c *Consumer) reuseDeposit(ctx context.Context, held *storage.HeldSession, ch mpp.Challenge, sreq mpp.SessionRequest, reason string) error {
	if reason != "session_closed" && reason != "unknown_token" {
		return fmt.Errorf("refused: %s", reason)
	}
	id, err := lntypes.MakeHashFromStr(sreq.PaymentHash)
	if err != nil {
		return err
	}
	inv, err := c.ln.AddInvoice(ctx, invoices.AddInvoiceRequest{Memo: "l402d session refund from " + held.Origin, Expiry: returnInvoiceExpiry})
	if err != nil {
		return fmt.Errorf("making the refund invoice: %w", err)
	}
	raw, _ := json.Marshal(ch)
	if err := c.store.PutHeldSession(ctx, &storage.HeldSession{ID: id, Origin: held.Origin, Service: held.Service, URL: held.URL, Challenge: raw,
		ReturnInvoice: inv.PaymentRequest, ReturnHash: inv.PaymentHash, DepositedMsat: sreq.DepositSats() * 1000, State: storage.HeldOpening,
		OpenedAt: c.cfg.Now()}); err != nil {
		return err
	}
	if reason == "session_closed" {
		_, err = c.store.UpdateHeldSession(ctx, held.Origin, held.ID, func(h *storage.HeldSession) { h.State = storage.HeldClosed })
	}
	c.log.Info("consumer: a refused top-up's deposit opens a new session", "session", id, "closed", held.ID, "reason", reason)
	return err
}

// lockOrigin serializes opening and topping up sessions at origin.
func (c *Consumer) lockOrigin(ctx context.Context, origin string) (func(), error) {
	unlock, err := c.urlLocks.lock(ctx, sha256.Sum256([]byte("session\x00"+origin)))
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(unlock) }, nil
}

// payDeposit pays a session deposit through the journal, after the spend
// policy, the caller's cap and approval; a deposit the journal already
// paid is not paid again.
func (c *Consumer) payDeposit(ctx context.Context, req AccessRequest, pr *prepared, sreq mpp.SessionRequest) (*storage.Payment, error) {
	d, err := c.ln.DecodeInvoice(ctx, sreq.DepositInvoice)
	if err != nil {
		return nil, &PolicyError{Code: "invalid_invoice", Field: "depositInvoice", Problem: err.Error(), Fix: "ask the seller for a valid deposit invoice"}
	}
	if d.PaymentHash.String() != sreq.PaymentHash {
		return nil, &PolicyError{Code: "hash_mismatch", Field: "paymentHash", Problem: "the deposit invoice pays another hash than the challenge names", Fix: "do not pay this seller"}
	}
	paid, err := c.paidBefore(ctx, d.PaymentHash)
	if err != nil {
		return nil, err
	}
	sp := spendFor(pr.u, d.AmountMsat, c.feeLimitMsat(d.AmountMsat), req.Approved)
	if !paid {
		err := checkOffer(offerTerms{invoice: d, advertisedSats: []int64{sreq.DepositSats()}, maxMsat: pr.maxMsat}, c.cfg.Now())
		if err == nil {
			err = c.checkSpend(ctx, sp)
		}
		if err == nil && req.Approve != nil {
			err = req.Approve(ctx, Proposal{URL: pr.u.String(), Description: d.Description, PaymentHash: d.PaymentHash, AmountMsat: d.AmountMsat, FeeLimitMsat: sp.feeLimitMsat})
		}
		if err != nil {
			c.count("refused", nil)
			return nil, err
		}
	}
	p, _, err := c.pay(ctx, storage.Payment{PaymentHash: d.PaymentHash, Kind: storage.KindInvoice, Invoice: sreq.DepositInvoice, AmountMsat: d.AmountMsat,
		FeeLimitMsat: sp.feeLimitMsat, Domain: sp.domain, Approved: req.Approved, URL: pr.u.String()})
	if err != nil {
		return nil, err
	}
	if p.State != storage.PaymentSucceeded {
		return nil, &PaymentError{PaymentHash: p.PaymentHash, InFlight: p.State != storage.PaymentFailed, Reason: p.FailureReason}
	}
	return p, nil
}

// sendSession sends pr with a session credential of held (the preimage
// from the journal, or pre when given) echoing held's challenge.
func (c *Consumer) sendSession(ctx context.Context, pr *prepared, held *storage.HeldSession, p mpp.SessionPayload, pre *lntypes.Preimage) (*http.Response, error) {
	var ch mpp.Challenge
	if err := json.Unmarshal(held.Challenge, &ch); err != nil {
		return nil, fmt.Errorf("consumer: held session %s: %w", held.ID, err)
	}
	if p.Action != mpp.ActionTopUp {
		if pre == nil {
			dep, err := c.store.Payment(ctx, held.ID)
			if err != nil || dep.State != storage.PaymentSucceeded {
				return nil, fmt.Errorf("consumer: the deposit of session %s is not paid in the journal: %v", held.ID, err)
			}
			pre = &dep.Preimage
		}
		p.Preimage = pre.String()
	}
	return c.sendSessionWith(ctx, pr, ch, p)
}

func (c *Consumer) sendSessionWith(ctx context.Context, pr *prepared, ch mpp.Challenge, p mpp.SessionPayload) (*http.Response, error) {
	v, err := mpp.NewSessionCredential(ch, p)
	if err != nil {
		return nil, err
	}
	q := *pr
	q.header = pr.header.Clone()
	q.header.Set(mpp.HeaderAuthorization, v)
	return c.do(ctx, &q, nil)
}

// sessionAnswer records what the seller's answer says of held (the
// balance it reports, whether it meters) and what the caller learned
// (update, if set: a state, a deposit credited) on the session as stored
// now, and answers.
func (c *Consumer) sessionAnswer(ctx context.Context, resp *http.Response, held *storage.HeldSession, paid bool, p *storage.Payment, update func(*storage.HeldSession)) *Response {
	bal, balErr := strconv.ParseInt(resp.Header.Get(HeaderBalance), 10, 64)
	metered := resp.Header.Get(HeaderMeter) != ""
	cur, err := c.store.UpdateHeldSession(ctx, held.Origin, held.ID, func(h *storage.HeldSession) {
		if update != nil {
			update(h)
		}
		if balErr == nil && bal >= 0 {
			h.BalanceMsat = bal
		}
		h.Metered = h.Metered || metered
	})
	if err != nil {
		c.log.Warn("consumer: recording a session's balance failed", "session", held.ID, "err", err)
		cur = held
	}
	r := c.answer(resp, nil, false)
	r.Session = heldInfo(cur)
	if paid && p != nil {
		r.Paid, r.Payment = true, paymentInfo(p, false)
	}
	return r
}

// SessionInfo is a held session as the API shows it.
type SessionInfo = apiclient.SessionInfo

func heldInfo(h *storage.HeldSession) *SessionInfo {
	kind := "mpp"
	if h.Prepaid {
		kind = "l402"
	}
	return &SessionInfo{SessionID: h.ID.String(), Kind: kind, Origin: h.Origin, URL: h.URL, State: h.State, DepositedMsat: h.DepositedMsat,
		BalanceMsat: h.BalanceMsat, RefundMsat: h.RefundMsat, RefundStatus: h.RefundStatus}
}

// Sessions lists the sessions this node holds.
func (c *Consumer) Sessions(ctx context.Context) ([]SessionInfo, error) {
	all, err := c.store.HeldSessions(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, 0, len(all))
	for i := range all {
		out = append(out, *heldInfo(&all[i]))
	}
	return out, nil
}

// resumeOpenings opens the held sessions left opening whose deposit the
// journal shows paid: a crash or a lost answer between paying a deposit
// and opening its session must not leave the deposit unspent at the
// seller while another session of the same service is used. Each is opened
// with a request for the URL it was recorded on, as an access would.
func (c *Consumer) resumeOpenings(ctx context.Context) {
	all, err := c.store.HeldSessions(ctx, "")
	if err != nil {
		c.log.Warn("consumer: listing held sessions", "err", err)
		return
	}
	for i := range all {
		h := &all[i]
		if h.State == storage.HeldOpen && len(h.TopUp) > 0 {
			c.finishTopUp(ctx, h)
			continue
		}
		if h.State != storage.HeldOpening {
			continue
		}
		p, err := c.store.Payment(ctx, h.ID)
		if err != nil || p.State != storage.PaymentSucceeded {
			continue // not paid (yet): the next access of its service pays or resumes it
		}
		pr, err := prepare(AccessRequest{URL: h.URL})
		if err != nil {
			continue
		}
		r, err := c.openSession(ctx, AccessRequest{URL: h.URL, Approved: true}, pr, h, nil, h.Service, map[lntypes.Hash]bool{})
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("consumer: finishing the opening of a paid session failed; retrying later", "session", h.ID, "url", h.URL, "err", err)
			}
			continue
		}
		if r.Body != nil {
			r.Body.Close()
		}
		c.log.Info("consumer: opened a session whose deposit was paid before a crash", "session", h.ID, "url", h.URL, "status", r.Status)
	}
}

// finishTopUp presents held's pending top-up if the journal shows its
// deposit paid (a crash or a lost answer came between paying and seeing
// it credited), with a request for the URL the session was opened on.
func (c *Consumer) finishTopUp(ctx context.Context, held *storage.HeldSession) {
	var ch mpp.Challenge
	if err := json.Unmarshal(held.TopUp, &ch); err != nil {
		return
	}
	sreq, err := ch.SessionRequest()
	if err != nil {
		return
	}
	h, err := lntypes.MakeHashFromStr(sreq.PaymentHash)
	if err != nil {
		return
	}
	if p, err := c.store.Payment(ctx, h); err != nil || p.State != storage.PaymentSucceeded {
		return // not paid: the next top-up pays it, or forgets it when it expires
	}
	pr, err := prepare(AccessRequest{URL: held.URL})
	if err != nil {
		return
	}
	r, err := c.topUp(ctx, AccessRequest{URL: held.URL, Approved: true}, pr, held, nil, nil)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("consumer: presenting a paid top-up failed; retrying later", "session", held.ID, "err", err)
		}
		return
	}
	if r.Body != nil {
		r.Body.Close()
	}
	c.log.Info("consumer: presented a top-up paid before a crash", "session", held.ID, "status", r.Status)
}

// closeIdle closes the held sessions unused for SessionIdleClose and
// collects their refunds; sessions closed but not yet seen refunded are
// asked again, once per idle period. Failures are logged and retried on the next round.
func (c *Consumer) closeIdle(ctx context.Context) {
	all, err := c.store.HeldSessions(ctx, "")
	if err != nil {
		c.log.Warn("consumer: listing held sessions", "err", err)
		return
	}
	now := c.cfg.Now()
	for _, h := range all {
		// A closed one not seen refunded is asked again once per idle
		// period (a close records its answer, which restarts it).
		if (h.State != storage.HeldOpen && h.State != storage.HeldClosed) || now.Sub(h.UpdatedAt) < c.cfg.SessionIdleClose {
			continue
		}
		if h.Prepaid && h.State == storage.HeldOpen {
			// Its uses are not recorded here (they go through the token
			// cache), so idleness cannot be told: it is closed on request.
			continue
		}
		unlock, err := c.lockOrigin(ctx, h.Origin)
		if err != nil {
			return
		}
		// Used (or closed) while this waited: look again next round.
		cur, err := c.store.HeldSession(ctx, h.ID)
		if err == nil && cur.UpdatedAt.Equal(h.UpdatedAt) {
			var info *SessionInfo
			if info, err = c.CloseSession(ctx, h.ID.String()); err == nil {
				c.log.Info("consumer: closed an idle session", "session", h.ID, "origin", h.Origin, "state", info.State, "refund_msat", info.RefundMsat)
			}
		}
		unlock()
		if err != nil && ctx.Err() == nil {
			c.log.Warn("consumer: closing an idle session failed; retrying later", "session", h.ID, "origin", h.Origin, "err", err)
		}
	}
}

// CloseSession closes a held session at its seller and collects the
// refund: the seller pays the unspent balance to the session's return
// invoice, and the session is marked refunded once this node's LND shows
// that invoice settled (the amount received is what is recorded, not what
// the seller claims). Closing a closed session asks again.
func (c *Consumer) CloseSession(ctx context.Context, id string) (*SessionInfo, error) {
	h, err := lntypes.MakeHashFromStr(id)
	if err != nil {
		return nil, &field.Error{Field: "sessionId", Problem: "is not 32 bytes of hex", Fix: "send a sessionId from GET /api/consumer/sessions"}
	}
	held, err := c.store.HeldSession(ctx, h)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, &field.Error{Field: "sessionId", Problem: "no session held with this id", Fix: "send a sessionId from GET /api/consumer/sessions"}
	}
	if err != nil {
		return nil, err
	}
	if held.State == storage.HeldOpening {
		return nil, &field.Error{Field: "sessionId", Problem: "the session was never opened", Fix: "access its URL with session to finish opening it first"}
	}
	if held.State == storage.HeldOpen && len(held.TopUp) > 0 {
		// A top-up paid and never seen credited is presented first, so
		// that its deposit is in the balance the refund returns.
		c.finishTopUp(ctx, held)
		if held, err = c.store.HeldSession(ctx, h); err != nil {
			return nil, err
		}
	}
	if held.Prepaid && held.State != storage.HeldRefunded {
		if err := c.closePrepaid(ctx, held); err != nil {
			return nil, err
		}
	} else if held.State != storage.HeldRefunded {
		pr, err := prepare(AccessRequest{URL: held.URL})
		if err != nil {
			return nil, err
		}
		resp, err := c.sendSession(ctx, pr, held, mpp.SessionPayload{Action: mpp.ActionClose, SessionID: held.ID.String()}, nil)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, &UpstreamError{Method: "GET", URL: held.URL, Err: fmt.Errorf("the seller answered the close %d: %s", resp.StatusCode, bytes.TrimSpace(body))}
		}
		var out struct {
			RefundMsat   int64  `json:"refundMsat"`
			RefundStatus string `json:"refundStatus"`
		}
		_ = json.Unmarshal(body, &out)
		held.State, held.RefundMsat, held.RefundStatus, held.BalanceMsat = storage.HeldClosed, out.RefundMsat, out.RefundStatus, 0
	}
	if st, err := c.ln.LookupInvoice(ctx, held.ReturnHash); err == nil && st.State == invoices.InvoiceSettled && held.State != storage.HeldRefunded {
		held.State, held.RefundMsat, held.RefundStatus = storage.HeldRefunded, st.AmountPaidMsat, storage.RefundSucceeded
		u, err := url.Parse(held.URL)
		if err != nil {
			return nil, fmt.Errorf("consumer: held session %s: %w", held.ID, err)
		}
		if _, err := c.store.RefundedHeldSession(ctx, held, BudgetDomain(Domain(u))); err != nil {
			return nil, err
		}
		return heldInfo(held), nil
	}
	cur, err := c.store.UpdateHeldSession(ctx, held.Origin, held.ID, func(h *storage.HeldSession) {
		h.State, h.RefundMsat, h.RefundStatus, h.BalanceMsat = held.State, held.RefundMsat, held.RefundStatus, held.BalanceMsat
	})
	if err != nil {
		return nil, err
	}
	return heldInfo(cur), nil
}

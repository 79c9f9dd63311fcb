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
	held, err := c.heldFor(ctx, pr.origin)
	if err != nil {
		return nil, err
	}
	if held != nil && held.State == storage.HeldOpen {
		resp, err := c.sendSession(ctx, pr, held, mpp.SessionPayload{Action: mpp.ActionBearer, SessionID: held.ID.String()}, nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusPaymentRequired {
			return c.sessionAnswer(ctx, resp, held, false, nil), nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		var why struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(body, &why)
		if why.Reason == "insufficient_balance" {
			return c.topUp(ctx, req, pr, held, resp.Header, body)
		}
		// Closed, unknown or another service's: this session is no good
		// here; open a new one with this 402.
		if why.Reason == "session_closed" || why.Reason == "unknown_token" {
			held.State = storage.HeldClosed
			if err := c.store.PutHeldSession(ctx, held); err != nil {
				return nil, err
			}
		}
		return c.openSession(ctx, req, pr, nil, resp.Header)
	}
	return c.openSession(ctx, req, pr, held, nil)
}

// heldFor is the session held at origin to use: an open one, else one
// left opening by a crash; nil for none.
func (c *Consumer) heldFor(ctx context.Context, origin string) (*storage.HeldSession, error) {
	all, err := c.store.HeldSessions(ctx, origin)
	if err != nil {
		return nil, err
	}
	var opening *storage.HeldSession
	for i := range all {
		switch all[i].State {
		case storage.HeldOpen:
			return &all[i], nil
		case storage.HeldOpening:
			opening = &all[i]
		}
	}
	return opening, nil
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

// openSession opens a session at pr's origin: with held (opening, left by
// a crash) it resumes that one; otherwise it reads the session challenge
// of challenge (a 402's headers; nil: it asks for one), records the
// session, pays its deposit and opens it with this request.
func (c *Consumer) openSession(ctx context.Context, req AccessRequest, pr *prepared, held *storage.HeldSession, challenge http.Header) (*Response, error) {
	unlock, err := c.lockOrigin(ctx, pr.origin)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A concurrent access may have opened one while this one waited:
	// one deposit, not two.
	if now, err := c.heldFor(ctx, pr.origin); err != nil {
		return nil, err
	} else if now != nil && now.State == storage.HeldOpen {
		unlock()
		return c.sessionAccess(ctx, req, pr)
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
		held = &storage.HeldSession{Origin: pr.origin, URL: pr.u.String(), Challenge: raw, ReturnInvoice: inv.PaymentRequest, ReturnHash: inv.PaymentHash,
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
		held.State = storage.HeldClosed
		if err := c.store.PutHeldSession(ctx, held); err != nil {
			return nil, err
		}
		unlock()
		return c.openSession(ctx, req, pr, nil, nil)
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
	held.State = storage.HeldOpen
	return c.sessionAnswer(ctx, resp, held, true, p), nil
}

// topUp pays the deposit of the session challenge in a 402 (h) that said
// held's balance is spent, and presents it with the request.
func (c *Consumer) topUp(ctx context.Context, req AccessRequest, pr *prepared, held *storage.HeldSession, h http.Header, body []byte) (*Response, error) {
	ch, sreq, err := sessionOffer(h)
	if err != nil {
		return nil, err
	}
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
	var said struct {
		Meter json.RawMessage `json:"meter"`
	}
	_ = json.Unmarshal(body, &said)
	// A metered seller's balance shrinks as its responses flow, after
	// it reported it: its ask for a top-up is believable (the deposit is
	// still bounded by the budgets).
	metered := cur.Metered || len(said.Meter) > 0
	if !metered && cur.BalanceMsat >= sreq.AmountSats()*1000 && sreq.AmountSats() > 0 {
		// The seller said, on its last answer, that the balance covers a
		// request at this price: a seller that now asks for another
		// deposit would drain one per request. Refuse.
		return nil, &PolicyError{Code: "session_topup_refused", Field: "session",
			Problem: fmt.Sprintf("the seller asks for a top-up, but last reported a balance of %d msat, enough for a request at %s sats: %s", cur.BalanceMsat, sreq.Amount, bytes.TrimSpace(body)),
			Fix:     "close the session (l402cli sessions close) and check the seller"}
	}
	p, err := c.payDeposit(ctx, req, pr, sreq)
	if err != nil {
		return nil, err
	}
	resp, err := c.sendSessionWith(ctx, pr, ch, mpp.SessionPayload{Action: mpp.ActionTopUp, SessionID: held.ID.String(), TopUpPreimage: p.Preimage.String()})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusPaymentRequired {
		held.DepositedMsat += sreq.DepositSats() * 1000
	}
	return c.sessionAnswer(ctx, resp, held, true, p), nil
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

// sessionAnswer records the balance the seller reported and answers.
func (c *Consumer) sessionAnswer(ctx context.Context, resp *http.Response, held *storage.HeldSession, paid bool, p *storage.Payment) *Response {
	if n, err := strconv.ParseInt(resp.Header.Get(HeaderBalance), 10, 64); err == nil {
		held.BalanceMsat = n
	}
	if resp.Header.Get(HeaderMeter) != "" {
		held.Metered = true
	}
	if err := c.store.PutHeldSession(ctx, held); err != nil {
		c.log.Warn("consumer: recording a session's balance failed", "session", held.ID, "err", err)
	}
	r := c.answer(resp, nil, false)
	r.Session = heldInfo(held)
	if paid && p != nil {
		r.Paid, r.Payment = true, paymentInfo(p, false)
	}
	return r
}

// SessionInfo is a held session as the API shows it.
type SessionInfo = apiclient.SessionInfo

func heldInfo(h *storage.HeldSession) *SessionInfo {
	return &SessionInfo{SessionID: h.ID.String(), Origin: h.Origin, URL: h.URL, State: h.State, DepositedMsat: h.DepositedMsat,
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
	if held.State != storage.HeldRefunded {
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
	if err := c.store.PutHeldSession(ctx, held); err != nil {
		return nil, err
	}
	return heldInfo(held), nil
}

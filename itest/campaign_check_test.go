//go:build itest

package itest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// The crash campaign's invariants, checked after every restart with the
// two LNDs as ground truth.
//
// Producer (each l402d beside alice; its invoices are those of alice's
// LND whose memo starts with its tag):
//
//	A1 every challenge it handed out (answered 200) is in its store
//	A2 every invoice LND reports settled is recorded settled, for the amount paid
//	A3 no challenge is recorded settled whose invoice LND does not report settled
//	A4 its counters count each settlement exactly once (count and revenue)
//	A5 every challenge it handed out whose invoice was paid verifies, with
//	   the preimage from LND (after a restart: all of them again)
//	A6 (while the workload runs) a paid challenge verifies right away
//
// Consumer (bob's l402d; bob's LND payments made since the campaign began,
// except those the test made itself):
//
//	B1 every payment LND knows has a journal entry (written before paying)
//	B2 the journal agrees with LND's final state, preimage, amount and fee
//	B3 nothing is succeeded in the journal that LND did not pay, and
//	   nothing is reserved or in flight once LND has a final state
//	B4 no hash is paid twice
//	B5 the day's budget: spent = the succeeded entries, reserved = the
//	   unfinished ones, reserved + spent covers LND's payments (equal
//	   when nothing is in flight), within the daily limit; per domain too
const (
	// checkConverge bounds the wait for a violation of an invariant not
	// seen broken before to clear up by itself. The slowest thing that
	// converges: on a shared (Postgres) store, a payment bob marked in
	// flight and was killed before sending stays in flight for the
	// consumer's notSentGrace (30 s: another replica may be about to
	// send it) and is failed at the resumer's next pass (every 10 s).
	checkConverge = 50 * time.Second
	// checkGrace bounds the wait for a new instance of an invariant
	// already reported broken (a known bug) before it is counted.
	checkGrace = 3 * time.Second
)

// violation is one broken invariant: class names the invariant (A1…B5,
// check-error when the check itself failed) and id the instance (a
// payment hash, a difference).
type violation struct {
	class, id, msg string
}

func checkError(msg string) violation { return violation{"check-error", msg, msg} }

// checkRound checks every invariant after what happened, waiting for
// what converges by itself: the watcher's replay, the payment resumer,
// LND finishing payments. The first violation of each invariant fails
// the test with the seed; later ones are counted for the summary, so that
// one known bug does not hide others or end the campaign.
func (c *campaign) checkRound(what string, producers []*producerUT) {
	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var vs []violation
	for {
		ctx, cancel := context.WithTimeout(c.t.Context(), time.Minute)
		vs = c.checkOnce(ctx, producers)
		cancel()
		newClass, newInstance := false, false
		for _, v := range vs {
			switch {
			case !c.reported[v.class]:
				newClass = true
			case !c.instances[v.class][v.id]:
				newInstance = true
			}
		}
		waited := time.Since(start)
		if !newClass && (!newInstance || waited > checkGrace) || waited > checkConverge {
			break
		}
		<-tick.C
	}
	ctx, cancel := context.WithTimeout(c.t.Context(), 2*time.Minute)
	for _, p := range producers {
		vs = append(vs, c.verifyPaid(ctx, p)...)
	}
	cancel()
	c.mu.Lock()
	vs = append(vs, c.live...)
	c.live = nil
	c.mu.Unlock()

	var b strings.Builder
	n := 0
	for _, v := range vs {
		if c.instances[v.class] == nil {
			c.instances[v.class] = map[string]bool{}
		}
		c.instances[v.class][v.id] = true
		if c.reported[v.class] {
			continue
		}
		if v.class != "check-error" {
			c.reported[v.class] = true
		}
		n++
		fmt.Fprintf(&b, "\n  - [%s] %s", v.class, v.msg)
	}
	if n > 0 {
		c.t.Errorf("after %s: %d invariant(s) broken; %s:%s", what, n, c.seedNote(), b.String())
	}
}

// violationSummary counts the instances of each broken invariant.
func (c *campaign) violationSummary() string {
	if len(c.instances) == 0 {
		return "no invariant broken"
	}
	var parts []string
	for _, class := range sortedKeys(c.instances) {
		parts = append(parts, fmt.Sprintf("%s ×%d", class, len(c.instances[class])))
	}
	return "invariants broken: " + strings.Join(parts, ", ")
}

func (c *campaign) checkOnce(ctx context.Context, producers []*producerUT) []violation {
	var vs []violation
	invs, err := c.aliceInvoices(ctx)
	if err != nil {
		return []violation{checkError("listing alice's invoices: " + err.Error())}
	}
	for _, p := range producers {
		vs = append(vs, c.checkProducer(ctx, p, invs)...)
	}
	vs = append(vs, c.checkConsumer(ctx)...)
	return append(vs, c.checkSessions(ctx)...)
}

// sessionsOf lists alice's sessions (the gate's books) and bob's held
// ones, by id.
func (c *campaign) sessionsOf(ctx context.Context) (alice, bob map[string]map[string]any, err error) {
	code, out, err := c.do(ctx, c.alice.d, c.alice.key, "GET", "/api/l402/sessions", nil)
	if err != nil || code != 200 {
		return nil, nil, fmt.Errorf("alice's sessions: %d %v %v", code, out, err)
	}
	alice = map[string]map[string]any{}
	for _, x := range out["sessions"].([]any) {
		s := x.(map[string]any)
		alice[str(s["sessionId"])] = s
	}
	code, out, err = c.do(ctx, c.bob, c.bobKey, "GET", "/api/consumer/sessions", nil)
	if err != nil || code != 200 {
		return nil, nil, fmt.Errorf("bob's sessions: %d %v %v", code, out, err)
	}
	bob = map[string]map[string]any{}
	for _, x := range out["sessions"].([]any) {
		s := x.(map[string]any)
		bob[str(s["sessionId"])] = s
	}
	return alice, bob, nil
}

// checkSessions checks the prepaid sessions between bob and alice's gate:
// S1 every session's books balance at alice, to the msat; S2 a session
// bob holds open (it got an answer to its open) exists at alice; S3 alice
// credited at least the deposits bob recorded.
func (c *campaign) checkSessions(ctx context.Context) []violation {
	alice, bob, err := c.sessionsOf(ctx)
	if err != nil {
		return []violation{checkError(err.Error())}
	}
	var vs []violation
	for id, s := range alice {
		dep, deb, bal, ref := msat(s["depositedMsat"]), msat(s["debitedMsat"]), msat(s["balanceMsat"]), msat(s["refundMsat"])
		if dep != deb+bal+ref || bal < 0 {
			vs = append(vs, violation{"S1", id, fmt.Sprintf("alice: session %s: deposited %d != debited %d + balance %d + refund %d", id, dep, deb, bal, ref)})
		}
	}
	for id, h := range bob {
		if h["state"] == "opening" {
			continue
		}
		a, ok := alice[id]
		switch {
		case h["kind"] == "l402":
			// Prepaid credit is opened at alice by its token's first
			// use (or its close), after bob recorded and paid it: S5
			// checks at the end that every credit paid was credited.
		case !ok:
			vs = append(vs, violation{"S2", id, fmt.Sprintf("bob holds session %s %v, alice has no such session", id, h["state"])})
		case msat(a["depositedMsat"]) < msat(h["depositedMsat"]):
			vs = append(vs, violation{"S3", id, fmt.Sprintf("bob recorded %d msat deposited in session %s, alice credited %d", msat(h["depositedMsat"]), id, msat(a["depositedMsat"]))})
		}
	}
	return vs
}

// closeSessions, at the campaign's end, has bob close every session it
// holds and checks S4: what bob's LND received is the refund alice's books
// owe, for each session refunded, and every refund alice owes is paid.
func (c *campaign) closeSessions() {
	t := c.t
	ctx := testCtx(t, 3*time.Minute)
	// A session whose deposit was paid before a kill and never opened is
	// opened by bob's l402d in the background.
	c.eventually(time.Minute, "bob to open every session whose deposit it paid", func() error {
		_, bob, err := c.sessionsOf(ctx)
		if err != nil {
			return err
		}
		j, err := c.journal(ctx)
		if err != nil {
			return err
		}
		for id, h := range bob {
			if h["state"] == "opening" && j[id].state == "succeeded" {
				return fmt.Errorf("session %s paid, still opening", id)
			}
		}
		return nil
	})
	_, bob, err := c.sessionsOf(ctx)
	if err != nil {
		t.Fatalf("%v; %s", err, c.seedNote())
	}
	closed, credits := 0, 0
	for id, h := range bob {
		if h["kind"] == "l402" {
			credits++
		}
		if h["state"] != "open" && h["state"] != "closed" {
			continue
		}
		if code, out, err := c.do(ctx, c.bob, c.bobKey, "POST", "/api/consumer/sessions/"+id+"/close", nil); err != nil || code != 200 {
			t.Errorf("closing session %s: %d %v %v; %s", id, code, out, err, c.seedNote())
		}
		closed++
	}
	c.eventually(2*time.Minute, "every session's refund to be paid and seen", func() error {
		alice, bob, err := c.sessionsOf(ctx)
		if err != nil {
			return err
		}
		for id, h := range bob {
			a := alice[id]
			if h["state"] == "opening" || a == nil {
				continue
			}
			switch {
			case a["refundStatus"] == "failed" && msat(a["refundMsat"]) < 1000:
				// Under the smallest HTLC: owed, on the books.
			case a["refundStatus"] != "succeeded" && a["refundStatus"] != "skipped":
				return fmt.Errorf("session %s: alice's refund %v", id, a["refundStatus"])
			case a["refundStatus"] == "succeeded" && h["state"] != "refunded":
				_, _, _ = c.do(ctx, c.bob, c.bobKey, "POST", "/api/consumer/sessions/"+id+"/close", nil)
				return fmt.Errorf("session %s: bob has it %v", id, h["state"])
			case a["refundStatus"] == "succeeded" && msat(h["refundMsat"]) != msat(a["refundMsat"]):
				t.Errorf("[S4] session %s: bob received %d msat, alice owed %d; %s", id, msat(h["refundMsat"]), msat(a["refundMsat"]), c.seedNote())
			}
		}
		return nil
	})
	// S5: every deposit bob paid alice's gate was credited to a session.
	j, err := c.journal(ctx)
	if err != nil {
		t.Fatalf("%v; %s", err, c.seedNote())
	}
	alice, _, err := c.sessionsOf(ctx)
	if err != nil {
		t.Fatalf("%v; %s", err, c.seedNote())
	}
	var paid, credited int64
	for _, e := range j {
		if e.state == "succeeded" && strings.HasPrefix(e.url, "http://"+c.gate+"/") {
			paid += e.amountMsat
		}
	}
	for _, a := range alice {
		credited += msat(a["depositedMsat"])
	}
	if paid != credited {
		_, bob, _ := c.sessionsOf(ctx)
		var detail strings.Builder
		for id, a := range alice {
			fmt.Fprintf(&detail, "\n  alice %s: %v deposited %d, %v top-ups; bob: %v", id, a["state"], msat(a["depositedMsat"]), a["topUps"], bob[id])
		}
		for id, h := range bob {
			if alice[id] == nil {
				fmt.Fprintf(&detail, "\n  bob only %s: %v", id, h)
			}
		}
		for h, e := range j {
			if e.state == "succeeded" && strings.HasPrefix(e.url, "http://"+c.gate+"/") && alice[h] == nil {
				fmt.Fprintf(&detail, "\n  deposit %s (%s) paid %d", h, e.url, e.amountMsat)
			}
		}
		t.Errorf("[S5] bob paid %d msat of deposits to alice's gate, alice credited %d to sessions; %s%s", paid, credited, c.seedNote(), detail.String())
	}
	t.Logf("sessions: closed %d at the end (%d of them L402 prepaid credit), every refund paid as owed; %d msat of deposits paid, %d credited", closed, credits, paid, credited)
}

// aliceInvoices lists alice's LND invoices added since the campaign began.
func (c *campaign) aliceInvoices(ctx context.Context) ([]*lnrpc.Invoice, error) {
	resp, err := c.aliceLND.Lightning.ListInvoices(ctx, &lnrpc.ListInvoiceRequest{IndexOffset: c.aliceAddIndex, NumMaxInvoices: 1 << 20})
	if err != nil {
		return nil, err
	}
	return resp.Invoices, nil
}

// record is a challenge as l402d's list API shows it.
type record struct {
	state          string
	amountPaidSats int64
}

// challenges lists every challenge in p's store.
func (c *campaign) challenges(ctx context.Context, p *producerUT) (map[string]record, error) {
	out := map[string]record{}
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		code, body, err := c.do(ctx, p.d, p.key, "GET", "/api/l402/challenges?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		if code != 200 {
			return nil, fmt.Errorf("listing challenges: %d %v", code, body)
		}
		list, _ := body["challenges"].([]any)
		for _, x := range list {
			m := obj(x)
			out[str(m["paymentHash"])] = record{state: str(m["state"]), amountPaidSats: int64(num(m["amountPaidSats"]))}
		}
		if after = str(body["next"]); after == "" {
			return out, nil
		}
	}
}

func (c *campaign) checkProducer(ctx context.Context, p *producerUT, invs []*lnrpc.Invoice) []violation {
	recs, err := c.challenges(ctx, p)
	if err != nil {
		return []violation{checkError(p.name + ": " + err.Error())}
	}
	code, stats, err := c.do(ctx, p.d, p.key, "GET", "/api/l402/stats", nil)
	if err != nil || code != 200 {
		return []violation{checkError(fmt.Sprintf("%s: stats: %d %v %v", p.name, code, stats, err))}
	}
	var vs []violation
	add := func(class, id, format string, args ...any) {
		vs = append(vs, violation{class, p.name + ":" + id, p.name + ": " + fmt.Sprintf(format, args...)})
	}
	p.mu.Lock()
	acked := make(map[string]challenge, len(p.acked))
	for h, ch := range p.acked {
		acked[h] = ch
	}
	p.mu.Unlock()
	for h, ch := range acked {
		if _, ok := recs[h]; !ok {
			add("A1", h, "challenge %s (%s) was handed out but is not in the store", h, ch.Resource)
		}
	}
	settled := map[string]bool{}
	var nSettled, revenue int64
	for _, inv := range invs {
		if !strings.HasPrefix(inv.Memo, p.tag+" ") {
			continue
		}
		h := hex.EncodeToString(inv.RHash)
		if inv.State != lnrpc.Invoice_SETTLED {
			continue
		}
		settled[h] = true
		nSettled++
		revenue += inv.AmtPaidSat
		rec, ok := recs[h]
		switch {
		case !ok:
			add("A2", h, "LND settled invoice %s (%q, %d sat) but there is no challenge for it", h, inv.Memo, inv.AmtPaidSat)
		case rec.state != "settled":
			add("A2", h, "LND settled invoice %s (%q, settle index %d) but its challenge is %s: the settlement is lost", h, inv.Memo, inv.SettleIndex, rec.state)
		case rec.amountPaidSats != inv.AmtPaidSat:
			add("A2", h, "challenge %s recorded %d sat paid, LND says %d", h, rec.amountPaidSats, inv.AmtPaidSat)
		}
	}
	for h, rec := range recs {
		if rec.state == "settled" && !settled[h] {
			add("A3", h, "challenge %s is recorded settled but LND does not report its invoice settled", h)
		}
	}
	total := obj(stats["total"])
	if got := int64(num(total["challengesSettled"])); got != nSettled {
		add("A4", fmt.Sprintf("count%+d", got-nSettled), "counts %d settlements, LND settled %d of its invoices", got, nSettled)
	}
	if got := int64(num(total["revenueSats"])); got != revenue {
		add("A4", fmt.Sprintf("revenue%+d", got-revenue), "counts %d sat of revenue, LND received %d sat for its invoices", got, revenue)
	}
	return vs
}

// verifyPaid verifies every challenge p handed out whose invoice LND
// reports settled and that did not verify since p last started.
func (c *campaign) verifyPaid(ctx context.Context, p *producerUT) []violation {
	invs, err := c.aliceInvoices(ctx)
	if err != nil {
		return []violation{checkError("listing alice's invoices: " + err.Error())}
	}
	pre := map[string]string{}
	for _, inv := range invs {
		if inv.State == lnrpc.Invoice_SETTLED {
			pre[hex.EncodeToString(inv.RHash)] = hex.EncodeToString(inv.RPreimage)
		}
	}
	var todo []challenge
	p.mu.Lock()
	for h, ch := range p.acked {
		if pre[h] != "" && !p.verified[h] {
			todo = append(todo, ch)
		}
	}
	p.mu.Unlock()
	var mu sync.Mutex
	var vs []violation
	var wg sync.WaitGroup
	work := make(chan challenge)
	for range 4 {
		wg.Go(func() {
			for ch := range work {
				code, out, err := c.do(ctx, p.d, p.key, "POST", "/api/l402/challenges/verify",
					map[string]any{"macaroon": ch.Macaroon, "preimage": pre[ch.PaymentHash], "resource": ch.Resource})
				mu.Lock()
				switch {
				case err != nil || code != 200:
					vs = append(vs, checkError(fmt.Sprintf("%s: verify: %d %v %v", p.name, code, out, err)))
				case out["valid"] != true:
					vs = append(vs, violation{"A5", ch.PaymentHash, fmt.Sprintf("%s: challenge %s (%s) handed out and paid does not verify: %v: %v",
						p.name, ch.PaymentHash, ch.Resource, out["reason"], out["error"])})
				default:
					p.mu.Lock()
					p.verified[ch.PaymentHash] = true
					p.mu.Unlock()
				}
				mu.Unlock()
			}
		})
	}
	for _, ch := range todo {
		work <- ch
	}
	close(work)
	wg.Wait()
	return vs
}

// entry is a journal entry as bob's payments API shows it.
type entry struct {
	state, preimage, day, domain      string
	amountMsat, feeMsat, feeLimitMsat int64
	failureReason, kind, url          string
}

func (c *campaign) journal(ctx context.Context) (map[string]entry, error) {
	out := map[string]entry{}
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		code, body, err := c.do(ctx, c.bob, c.bobKey, "GET", "/api/consumer/payments?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		if code != 200 {
			return nil, fmt.Errorf("listing payments: %d %v", code, body)
		}
		list, _ := body["payments"].([]any)
		for _, x := range list {
			m := obj(x)
			u := str(m["url"])
			if len(u) > 80 {
				u = u[:80] + "…"
			}
			out[str(m["paymentHash"])] = entry{state: str(m["state"]), preimage: str(m["preimage"]), day: str(m["budgetDay"]), domain: str(m["domain"]),
				amountMsat: int64(num(m["amountMsat"])), feeMsat: int64(num(m["feeMsat"])), feeLimitMsat: int64(num(m["feeLimitMsat"])),
				failureReason: str(m["failureReason"]), kind: str(m["kind"]), url: u}
		}
		if after = str(body["next"]); after == "" {
			return out, nil
		}
	}
}

func (c *campaign) checkConsumer(ctx context.Context) []violation {
	resp, err := c.bobLND.Lightning.ListPayments(ctx, &lnrpc.ListPaymentsRequest{IncludeIncomplete: true, IndexOffset: c.bobPayIndex, MaxPayments: 1 << 20})
	if err != nil {
		return []violation{checkError("listing bob's payments: " + err.Error())}
	}
	j, err := c.journal(ctx)
	if err != nil {
		return []violation{checkError("bob: " + err.Error())}
	}
	code, budget, err := c.do(ctx, c.bob, c.bobKey, "GET", "/api/consumer/budget", nil)
	if err != nil || code != 200 {
		return []violation{checkError(fmt.Sprintf("bob: budget: %d %v %v", code, budget, err))}
	}
	var vs []violation
	add := func(class, id, format string, args ...any) {
		vs = append(vs, violation{class, id, "bob: " + fmt.Sprintf(format, args...)})
	}
	c.mu.Lock()
	direct := make(map[string]bool, len(c.direct))
	for h := range c.direct {
		direct[h] = true
	}
	c.mu.Unlock()

	byHash := map[string][]*lnrpc.Payment{}
	var order []string
	for _, p := range resp.Payments {
		if direct[p.PaymentHash] {
			continue
		}
		if byHash[p.PaymentHash] == nil {
			order = append(order, p.PaymentHash)
		}
		byHash[p.PaymentHash] = append(byHash[p.PaymentHash], p)
	}
	today := str(budget["day"])
	lndInFlight := 0
	var lndSpentToday int64
	for _, h := range order {
		ps := byHash[h]
		succeededHTLCs := 0
		for _, p := range ps {
			for _, htlc := range p.Htlcs {
				if htlc.Status == lnrpc.HTLCAttempt_SUCCEEDED {
					succeededHTLCs++
				}
			}
		}
		if len(ps) > 1 || succeededHTLCs > 1 {
			add("B4", h, "hash %s paid twice: LND lists %d payments with %d succeeded HTLCs", h, len(ps), succeededHTLCs)
		}
		p := ps[len(ps)-1]
		e, ok := j[h]
		if p.Status == lnrpc.Payment_IN_FLIGHT || p.Status == lnrpc.Payment_INITIATED {
			lndInFlight++
		}
		if !ok {
			add("B1", h, "LND has a payment of %s (%s) that the journal does not know", h, p.Status)
			continue
		}
		if e.day == today && p.Status == lnrpc.Payment_SUCCEEDED {
			lndSpentToday += p.ValueMsat + p.FeeMsat
		}
		switch p.Status {
		case lnrpc.Payment_SUCCEEDED:
			switch {
			case e.state != "succeeded":
				add("B2 ("+e.state+")", h, "LND paid %s (%d msat + %d fee) but the journal has it %s (%s %s %s)", h, p.ValueMsat, p.FeeMsat, e.state, e.kind, e.url, e.failureReason)
			case e.preimage != p.PaymentPreimage || e.amountMsat != p.ValueMsat || e.feeMsat != p.FeeMsat:
				add("B2", h, "journal has %s with preimage %s, %d msat + %d fee; LND %s, %d + %d", h, e.preimage, e.amountMsat, e.feeMsat, p.PaymentPreimage, p.ValueMsat, p.FeeMsat)
			}
		case lnrpc.Payment_FAILED:
			if e.state != "failed" {
				add("B2 ("+e.state+")", h, "LND failed payment %s (%s) but the journal has it %s", h, p.FailureReason, e.state)
			}
		default:
			if e.state == "succeeded" || e.state == "failed" {
				add("B2", h, "payment %s is %s in LND but %s in the journal", h, p.Status, e.state)
			}
		}
	}
	var spent, reserved int64
	domSpent, domReserved := map[string]int64{}, map[string]int64{}
	pending := 0
	for h, e := range j {
		ps := byHash[h]
		var lst lnrpc.Payment_PaymentStatus = -1
		if len(ps) > 0 {
			lst = ps[len(ps)-1].Status
		}
		final := lst == lnrpc.Payment_SUCCEEDED || lst == lnrpc.Payment_FAILED
		switch e.state {
		case "succeeded":
			if lst != lnrpc.Payment_SUCCEEDED {
				add("B3", h, "journal has %s succeeded but LND's payment is %s", h, statusName(lst))
			}
			if e.day == today {
				spent += e.amountMsat + e.feeMsat
				if e.domain != "" {
					domSpent[e.domain] += e.amountMsat + e.feeMsat
				}
			}
		case "reserved", "in_flight":
			pending++
			if final || lst == -1 {
				// The class names LND's state: a payment stuck after it
				// succeeded and one never sent are different bugs.
				add("B3 ("+statusName(lst)+")", h, "journal has %s %s (%s %s) although LND's payment is %s", h, e.state, e.kind, e.url, statusName(lst))
			}
			if e.day == today {
				reserved += e.amountMsat + e.feeLimitMsat
				if e.domain != "" {
					domReserved[e.domain] += e.amountMsat + e.feeLimitMsat
				}
			}
		}
	}
	t := obj(budget["today"])
	gotSpent, gotReserved := int64(num(t["spentMsat"])), int64(num(t["reservedMsat"]))
	if gotSpent != spent {
		add("B5", fmt.Sprintf("spent%+d", gotSpent-spent), "budget says %d msat spent today, the journal's succeeded payments sum to %d", gotSpent, spent)
	}
	if gotReserved != reserved {
		add("B5", fmt.Sprintf("reserved%+d", gotReserved-reserved), "budget says %d msat reserved today, the journal's unfinished payments reserve %d", gotReserved, reserved)
	}
	if lndInFlight == 0 && pending == 0 && gotSpent != lndSpentToday {
		add("B5", fmt.Sprintf("lnd%+d", gotSpent-lndSpentToday), "budget says %d msat spent today with nothing in flight, LND paid %d", gotSpent, lndSpentToday)
	}
	if gotSpent+gotReserved < lndSpentToday {
		add("B5", fmt.Sprintf("cover%+d", gotSpent+gotReserved-lndSpentToday), "reserved %d + spent %d msat do not cover LND's %d", gotReserved, gotSpent, lndSpentToday)
	}
	if limit := int64(num(obj(budget["limits"])["perDaySats"])); limit > 0 && gotSpent+gotReserved > limit*1000 {
		c.mu.Lock()
		set := c.budgetDay
		c.mu.Unlock()
		if limit == set {
			add("B5", fmt.Sprintf("limit%d", limit), "spent %d + reserved %d msat exceed the daily limit of %d sat", gotSpent, gotReserved, limit)
		}
	}
	doms, _ := budget["domains"].([]any)
	seen := map[string]bool{}
	for _, x := range doms {
		d := obj(x)
		name := str(d["domain"])
		seen[name] = true
		if s, r := int64(num(d["spentMsat"])), int64(num(d["reservedMsat"])); s != domSpent[name] || r != domReserved[name] {
			add("B5", fmt.Sprintf("domain:%s:%+d:%+d", name, s-domSpent[name], r-domReserved[name]),
				"budget of %s says %d msat spent and %d reserved today, the journal says %d and %d", name, s, r, domSpent[name], domReserved[name])
		}
	}
	for _, name := range sortedKeys(domSpent) {
		if !seen[name] && domSpent[name] != 0 {
			add("B5", "domain:"+name, "the journal has %d msat spent today on %s but the budget has no window for it", domSpent[name], name)
		}
	}
	return vs
}

func statusName(s lnrpc.Payment_PaymentStatus) string {
	if s == -1 {
		return "unknown to LND"
	}
	return s.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

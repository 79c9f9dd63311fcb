//go:build itest

package itest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402/mpp"
)

// sessionServices sells a service in prepaid sessions: a 400-sat deposit
// spent at 3 sats a request, 10 on its dear paths.
func sessionServices(upstream string) string {
	return fmt.Sprintf(`services:
  - name: metered
    path: /sess/*
    upstream: http://%[1]s
    price: 3
    pricing:
      - path: /sess/dear/*
        price: 10
    schemes: [mpp]
    session_deposit: 400
`, upstream)
}

// buyer is bob holding one session of the gate's, as an MPP client would.
type buyer struct {
	g       *gateDaemon
	echo    mpp.Challenge // a session challenge of the gate's, echoed in bearer and close
	id      lntypes.Hash
	pre     lntypes.Preimage
	refund  string // bob's amountless return invoice
	refundH []byte
}

// sessionChallenge gets a 402 for path and returns its session challenge.
func (g *gateDaemon) sessionChallenge(t testing.TB, path, auth string) (gateResp, mpp.Challenge, mpp.SessionRequest) {
	t.Helper()
	var r gateResp
	if auth == "" {
		r = g.get(t, path)
	} else {
		r = g.get(t, path, "Authorization", auth)
	}
	if r.code != http.StatusPaymentRequired {
		t.Fatalf("GET %s: %d %s, want 402", path, r.code, r.raw)
	}
	cs, err := mpp.ParseChallengesHeader(r.header)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Intent == mpp.IntentSession {
			req, err := c.SessionRequest()
			if err != nil {
				t.Fatal(err)
			}
			return r, c, req
		}
	}
	t.Fatalf("no session challenge in %q", r.header.Values("WWW-Authenticate"))
	return r, mpp.Challenge{}, mpp.SessionRequest{}
}

// openSession pays a deposit for path and opens a session with it.
func openSession(t testing.TB, g *gateDaemon, path string) (*buyer, gateResp) {
	t.Helper()
	_, c, req := g.sessionChallenge(t, path, "")
	pre, err := lntypes.MakePreimageFromStr(payInvoice(t, "bob", req.DepositInvoice))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := lnd(t, testNet(t), "bob").Lightning.AddInvoice(testCtx(t, time.Minute), &lnrpc.Invoice{Memo: "session refund", Expiry: 24 * 3600})
	if err != nil {
		t.Fatal(err)
	}
	b := &buyer{g: g, echo: c, id: pre.Hash(), pre: pre, refund: inv.PaymentRequest, refundH: inv.RHash}
	r := b.do(t, path, mpp.SessionPayload{Action: mpp.ActionOpen, Preimage: pre.String(), ReturnInvoice: inv.PaymentRequest}, c)
	return b, r
}

// do sends a session credential with payload p, echoing c.
func (b *buyer) do(t testing.TB, path string, p mpp.SessionPayload, c mpp.Challenge) gateResp {
	t.Helper()
	v, err := mpp.NewSessionCredential(c, p)
	if err != nil {
		t.Fatal(err)
	}
	return b.g.get(t, path, "Authorization", v)
}

// bearer spends from the session.
func (b *buyer) bearer(t testing.TB, path string) gateResp {
	t.Helper()
	return b.do(t, path, mpp.SessionPayload{Action: mpp.ActionBearer, Preimage: b.pre.String(), SessionID: b.id.String()}, b.echo)
}

// close closes the session.
func (b *buyer) close(t testing.TB) gateResp {
	t.Helper()
	return b.closeAt(t, "/sess/close")
}

// closeAt closes the session with a request for path (of its service).
func (b *buyer) closeAt(t testing.TB, path string) gateResp {
	t.Helper()
	return b.do(t, path, mpp.SessionPayload{Action: mpp.ActionClose, Preimage: b.pre.String(), SessionID: b.id.String()}, b.echo)
}

// refundPaid is what bob's return invoice received, msat (0: unpaid).
func (b *buyer) refundPaid(t testing.TB) int64 {
	t.Helper()
	inv, err := lnd(t, testNet(t), "bob").Lightning.LookupInvoice(testCtx(t, time.Minute), &lnrpc.PaymentHash{RHash: b.refundH})
	if err != nil {
		t.Fatal(err)
	}
	if inv.State != lnrpc.Invoice_SETTLED {
		return 0
	}
	return inv.AmtPaidMsat
}

func balanceOf(t testing.TB, r gateResp) int64 {
	t.Helper()
	n, err := strconv.ParseInt(r.header.Get("L402-Balance-Msat"), 10, 64)
	if err != nil {
		t.Fatalf("L402-Balance-Msat %q on %d %s", r.header.Get("L402-Balance-Msat"), r.code, r.raw)
	}
	return n
}

// sessionBooks reads the gate's sessions and checks that each one's books
// balance: deposited = debited + balance + refund.
func sessionBooks(t testing.TB, g *gateDaemon) map[string]map[string]any {
	t.Helper()
	code, out := g.call(t, "GET", "/api/l402/sessions", nil)
	if code != 200 {
		t.Fatalf("GET /api/l402/sessions: %d %v", code, out)
	}
	byID := map[string]map[string]any{}
	for _, x := range out["sessions"].([]any) {
		s := x.(map[string]any)
		dep, deb, bal, ref := msat(s["depositedMsat"]), msat(s["debitedMsat"]), msat(s["balanceMsat"]), msat(s["refundMsat"])
		if dep != deb+bal+ref {
			t.Fatalf("session %v: deposited %d != debited %d + balance %d + refund %d", s["sessionId"], dep, deb, bal, ref)
		}
		byID[str(s["sessionId"])] = s
	}
	return byID
}

func msat(v any) int64 { return int64(num(v)) }

// hammer sends each requests from each of clients at once with try and
// counts the answers served (200) and refused for the balance (402
// insufficient_balance); any other answer fails t.
func hammer(t *testing.T, clients, each int, try func() gateResp) (ok, refused int64) {
	t.Helper()
	var okN, refusedN atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range each {
				switch r := try(); {
				case r.code == 200:
					okN.Add(1)
				case r.code == 402 && r.json["reason"] == "insufficient_balance":
					refusedN.Add(1)
				default:
					t.Errorf("%d %s", r.code, r.raw)
				}
			}
		})
	}
	wg.Wait()
	return okN.Load(), refusedN.Load()
}

func TestSessions(t *testing.T) {
	u := startGateUpstreams(t)
	g := startGateDaemon(t, sessionServices(u.http), "--gate.mint-rate", "100", "--gate.mint-burst", "1000")

	t.Run("one deposit buys 100 requests, a top-up more, and the change comes back", func(t *testing.T) {
		r, c, req := g.sessionChallenge(t, "/sess/a", "")
		if req.Amount != "3" || req.DepositAmount != "400" || req.Currency != "sat" || req.DepositInvoice == "" || c.Realm == "" {
			t.Fatalf("session challenge %+v request %+v", c, req)
		}
		if cs, _ := mpp.ParseChallengesHeader(r.header); len(cs) != 2 || cs[0].Intent != mpp.IntentCharge {
			t.Fatalf("want a charge and a session offered, got %+v", cs)
		}
		b, r := openSession(t, g, "/sess/a")
		if r.code != 200 || r.json["path"] != "/sess/a" || balanceOf(t, r) != 397_000 {
			t.Fatalf("open: %d %s %v", r.code, r.raw, r.header)
		}
		rc, err := mpp.ParseReceipt(r.header.Get(mpp.HeaderReceipt))
		if err != nil || rc.Reference != b.id.String() {
			t.Fatalf("receipt %+v %v", rc, err)
		}
		for i := 2; i <= 100; i++ {
			if r := b.bearer(t, "/sess/a"); r.code != 200 || balanceOf(t, r) != 400_000-int64(i)*3000 {
				t.Fatalf("request %d: %d %s balance %s", i, r.code, r.raw, r.header.Get("L402-Balance-Msat"))
			}
		}
		// The dear path costs the gate's price, whatever the echoed
		// challenge (priced for /sess/a at 3) says.
		for i := 1; i <= 10; i++ {
			if r := b.bearer(t, "/sess/dear/x"); r.code != 200 || balanceOf(t, r) != 100_000-int64(i)*10_000 {
				t.Fatalf("dear request %d: %d %s", i, r.code, r.raw)
			}
		}
		// Empty: 402 with a top-up challenge.
		r, top, topReq := g.sessionChallenge(t, "/sess/dear/y", sessionAuth(t, b))
		if r.json["reason"] != "insufficient_balance" || r.header.Get("L402-Balance-Msat") != "0" {
			t.Fatalf("empty session: %v, balance %q (want the 402 to say 0 msat are left)", r.json, r.header.Get("L402-Balance-Msat"))
		}
		topPre := payInvoice(t, "bob", topReq.DepositInvoice)
		topUp := mpp.SessionPayload{Action: mpp.ActionTopUp, SessionID: b.id.String(), TopUpPreimage: topPre}
		if r := b.do(t, "/sess/dear/y", topUp, top); r.code != 200 || balanceOf(t, r) != 390_000 {
			t.Fatalf("top-up: %d %s", r.code, r.raw)
		}
		if r := b.do(t, "/sess/dear/y", topUp, top); r.code != 402 || r.json["reason"] != "consumed" {
			t.Fatalf("replayed top-up: %d %v", r.code, r.json)
		}
		// Another buyer's preimage opens nothing; a forged session id neither.
		var other lntypes.Preimage
		other[0] = 1
		if r := b.do(t, "/sess/a", mpp.SessionPayload{Action: mpp.ActionBearer, Preimage: other.String(), SessionID: b.id.String()}, b.echo); r.code != 402 {
			t.Fatalf("bearer with a wrong preimage: %d %v", r.code, r.json)
		}

		r = b.close(t)
		if r.code != 200 || msat(r.json["refundMsat"]) != 390_000 || r.json["refundStatus"] != "succeeded" || r.json["state"] != "closed" {
			t.Fatalf("close: %d %s", r.code, r.raw)
		}
		if rc, err := mpp.ParseReceipt(r.header.Get(mpp.HeaderReceipt)); err != nil || rc.RefundSats != 390 || rc.RefundStatus != "succeeded" {
			t.Fatalf("close receipt %+v %v", rc, err)
		}
		if got := b.refundPaid(t); got != 390_000 {
			t.Fatalf("bob's return invoice received %d msat, want 390000", got)
		}
		if r := b.bearer(t, "/sess/a"); r.code != 402 || r.json["reason"] != "session_closed" {
			t.Fatalf("after close: %d %v", r.code, r.json)
		}
		if r := b.close(t); r.code != 200 || msat(r.json["refundMsat"]) != 390_000 || b.refundPaid(t) != 390_000 {
			t.Fatalf("second close: %d %s", r.code, r.raw)
		}
		s := sessionBooks(t, g)[b.id.String()]
		if msat(s["depositedMsat"]) != 800_000 || msat(s["debitedMsat"]) != 410_000 || msat(s["requests"]) != 111 || msat(s["topUps"]) != 1 {
			t.Fatalf("books %v", s)
		}
	})

	t.Run("bob's l402d buys 110 requests with two deposits and gets its change back", func(t *testing.T) {
		bob := startBob(t)
		access := func(path string) map[string]any {
			t.Helper()
			code, out := bob.call(t, "POST", "/api/consumer/access", map[string]any{"url": "http://" + g.gate + path, "session": true, "maxSats": 500})
			if code != 200 || msat(out["status"]) != 200 {
				t.Fatalf("access %s: %d %v", path, code, out)
			}
			return out
		}
		first := access("/sess/c")
		sess, _ := first["session"].(map[string]any)
		if first["paid"] != true || sess == nil || sess["state"] != "open" || msat(sess["balanceMsat"]) != 397_000 {
			t.Fatalf("first access: %v", first)
		}
		id := str(sess["sessionId"])
		for i := 2; i <= 100; i++ {
			if out := access("/sess/c"); out["paid"] != false || msat(out["session"].(map[string]any)["balanceMsat"]) != 400_000-int64(i)*3000 {
				t.Fatalf("access %d: %v", i, out)
			}
		}
		for i := 1; i <= 10; i++ {
			access("/sess/dear/c")
		}
		// Spent: the next dear request tops the session up with a second deposit.
		if out := access("/sess/dear/c"); out["paid"] != true || msat(out["session"].(map[string]any)["balanceMsat"]) != 390_000 {
			t.Fatalf("top-up access: %v", out)
		}
		code, out := bob.call(t, "POST", "/api/consumer/sessions/"+id+"/close", nil)
		if code != 200 || out["state"] != "refunded" || msat(out["refundMsat"]) != 390_000 {
			t.Fatalf("close: %d %v", code, out)
		}
		// What bob spent is what alice's gate debited: two deposits paid
		// once each, the rest back on bob's node.
		s := sessionBooks(t, g)[id]
		if msat(s["depositedMsat"]) != 800_000 || msat(s["debitedMsat"]) != 410_000 || msat(s["refundMsat"]) != 390_000 || s["refundStatus"] != "succeeded" {
			t.Fatalf("alice's books %v", s)
		}
		if ps := bobPayments(t, id); len(ps) != 1 || ps[0].ValueMsat != 400_000 {
			t.Fatalf("bob paid the deposit %d times", len(ps))
		}
		code, list := bob.call(t, "GET", "/api/consumer/sessions", nil)
		if code != 200 || len(list["sessions"].([]any)) != 1 {
			t.Fatalf("bob's sessions: %d %v", code, list)
		}
	})

	t.Run("bob's l402d chooses the session by the calls it expects", func(t *testing.T) {
		bob := startBob(t)
		access := func(calls int) map[string]any {
			t.Helper()
			code, out := bob.call(t, "POST", "/api/consumer/access", map[string]any{"url": "http://" + g.gate + "/sess/auto", "expectedCalls": calls})
			if code != 200 || msat(out["status"]) != 200 || out["paid"] != true {
				t.Fatalf("access expecting %d calls: %d %v", calls, code, out)
			}
			return out
		}
		// 10 calls × 3 sats < the 400-sat deposit: per request.
		if out := access(10); out["session"] != nil {
			t.Fatalf("10 expected calls opened a session: %v", out)
		}
		// 200 × 3 ≥ 400: the session, and the note says why.
		out := access(200)
		sess, _ := out["session"].(map[string]any)
		if sess == nil || sess["state"] != "open" || msat(sess["balanceMsat"]) != 397_000 || !strings.Contains(str(out["note"]), "expected calls") {
			t.Fatalf("200 expected calls: %v", out)
		}
		id := str(sess["sessionId"])
		if code, out := bob.call(t, "POST", "/api/consumer/sessions/"+id+"/close", nil); code != 200 || out["state"] != "refunded" || msat(out["refundMsat"]) != 397_000 {
			t.Fatalf("close: %d %v", code, out)
		}
	})

	t.Run("an agent over MCP buys from a session and closes it", func(t *testing.T) {
		bob := startBob(t, "--mcp.approval-threshold-sats", "1000")
		agent := httpAgent(t, bob, agentOpts{})
		url := "http://" + g.gate + "/sess/mcp"
		first, isErr := agent.call("access_l402_resource", map[string]any{"url": url, "session": true, "maxSats": 500})
		sess, _ := first["session"].(map[string]any)
		if isErr || msat(first["status"]) != 200 || first["paid"] != true || sess == nil || msat(sess["balanceMsat"]) != 397_000 {
			t.Fatalf("first access: %v", first)
		}
		second, isErr := agent.call("access_l402_resource", map[string]any{"url": url, "session": true})
		if isErr || second["paid"] != false || msat(second["session"].(map[string]any)["balanceMsat"]) != 394_000 {
			t.Fatalf("second access: %v", second)
		}
		if list, isErr := agent.call("list_l402_sessions", nil); isErr || len(list["sessions"].([]any)) != 1 {
			t.Fatalf("list_l402_sessions: %v", list)
		}
		closed, isErr := agent.call("close_l402_session", map[string]any{"sessionId": sess["sessionId"]})
		if isErr || closed["state"] != "refunded" || msat(closed["refundMsat"]) != 394_000 {
			t.Fatalf("close_l402_session: %v", closed)
		}
	})

	t.Run("16 clients on one balance never overdraw", func(t *testing.T) {
		b, r := openSession(t, g, "/sess/a")
		if r.code != 200 {
			t.Fatalf("open: %d %s", r.code, r.raw)
		}
		// 397 sats left buy 132 requests at 3; 160 are tried.
		ok, refused := hammer(t, 16, 10, func() gateResp { return b.bearer(t, "/sess/a") })
		if ok != 132 || refused != 28 {
			t.Fatalf("%d served, %d refused; want 132 and 28", ok, refused)
		}
		if r := b.close(t); r.code != 200 || msat(r.json["refundMsat"]) != 1000 || b.refundPaid(t) != 1000 {
			t.Fatalf("close: %d %s, refund received %d", r.code, r.raw, b.refundPaid(t))
		}
		if s := sessionBooks(t, g)[b.id.String()]; msat(s["requests"]) != 133 || msat(s["debitedMsat"]) != 399_000 {
			t.Fatalf("books %v", s)
		}
	})

	t.Run("kill -9 under load and at close: the books balance and the refund is paid once", func(t *testing.T) {
		b, r := openSession(t, g, "/sess/a")
		if r.code != 200 {
			t.Fatalf("open: %d %s", r.code, r.raw)
		}
		served := killUnderLoad(t, g, "/sess/a", sessionAuth(t, b))
		s := sessionBooks(t, g)[b.id.String()]
		// Every answered request was debited before it was answered.
		if got := msat(s["requests"]); got < served.Load()+1 {
			t.Fatalf("%d requests answered 200 but only %d debited", served.Load()+1, got)
		}

		// A crash while the refund is journaled or in flight.
		closeAuth, err := mpp.NewSessionCredential(b.echo, mpp.SessionPayload{Action: mpp.ActionClose, Preimage: b.pre.String(), SessionID: b.id.String()})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = tryPresent(g, "/sess/close", closeAuth)
		}()
		waitFor(t, 30*time.Second, "the close to reach the store", func() error {
			if b.refundPaid(t) > 0 {
				return nil
			}
			code, out := g.call(t, "GET", "/api/l402/sessions?state=open", nil)
			if code == 200 {
				for _, x := range out["sessions"].([]any) {
					if str(x.(map[string]any)["sessionId"]) == b.id.String() {
						return fmt.Errorf("still open")
					}
				}
			}
			return nil
		})
		g.kill9(t)
		<-done
		g.start(t)
		r = b.close(t)
		if r.code != 200 {
			t.Fatalf("close after restart: %d %s", r.code, r.raw)
		}
		want := msat(r.json["refundMsat"])
		waitFor(t, time.Minute, "the refund to be recorded", func() error {
			s := sessionBooks(t, g)[b.id.String()]
			if s["refundStatus"] != "succeeded" {
				return fmt.Errorf("refund %v", s["refundStatus"])
			}
			return nil
		})
		s = sessionBooks(t, g)[b.id.String()]
		if got := b.refundPaid(t); got != want || want != msat(s["refundMsat"]) || want == 0 {
			t.Fatalf("bob received %d msat; the gate owes %d (close said %d)", got, msat(s["refundMsat"]), want)
		}
		if msat(s["depositedMsat"]) != 400_000 || msat(s["debitedMsat"]) != msat(s["requests"])*3000 {
			t.Fatalf("books %v", s)
		}
	})
}

// sessionAuth is b's bearer credential.
func sessionAuth(t testing.TB, b *buyer) string {
	t.Helper()
	v, err := mpp.NewSessionCredential(b.echo, mpp.SessionPayload{Action: mpp.ActionBearer, Preimage: b.pre.String(), SessionID: b.id.String()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// killUnderLoad has 4 clients present auth for path until 20 requests
// were served, kills the gate's l402d with -9 under them, waits for them
// to stop and starts it again. It returns how many were answered 200.
func killUnderLoad(t *testing.T, g *gateDaemon, path, auth string) *atomic.Int64 {
	t.Helper()
	served := new(atomic.Int64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if code, err := tryPresent(g, path, auth); err == nil && code == 200 {
					served.Add(1)
				}
			}
		})
	}
	waitFor(t, 30*time.Second, "requests to flow", func() error {
		if served.Load() < 20 {
			return fmt.Errorf("%d served", served.Load())
		}
		return nil
	})
	g.kill9(t)
	close(stop)
	wg.Wait()
	g.start(t)
	return served
}

// tryPresent sends a GET with Authorization auth and reports the status,
// or the error of a daemon being killed.
func tryPresent(g *gateDaemon, path, auth string) (int, error) {
	req, err := http.NewRequest("GET", "http://"+g.gate+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

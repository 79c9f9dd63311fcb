//go:build itest

package itest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// meteredServices sells metered services in prepaid sessions: per KiB
// (1 sat a KiB), per second (5 sats a second), and a cheap per-KiB one
// for long streams; each request also costs 1 sat.
func meteredServices(upstream string) string {
	return fmt.Sprintf(`services:
  - name: perkib
    path: /meter/kib/*
    upstream: http://%[1]s
    price: 1
    schemes: [mpp]
    session_deposit: 50
    meter: kib
    meter_price_msat: 1000
    meter_block: 8
  - name: persec
    path: /meter/sec/*
    upstream: http://%[1]s
    price: 1
    schemes: [mpp]
    session_deposit: 20
    meter: second
    meter_price_msat: 5000
    meter_block: 1
  - name: wssec
    path: /meter/ws/*
    upstream: http://%[1]s
    price: 1
    schemes: [mpp]
    session_deposit: 20
    meter: second
    meter_price_msat: 5000
    meter_block: 1
  - name: long
    path: /meter/long/*
    upstream: http://%[1]s
    price: 1
    schemes: [mpp]
    session_deposit: 100
    meter: kib
    meter_price_msat: 1
    meter_block: 64
  - name: flat
    path: /meter/flat/*
    upstream: http://%[1]s
    price: 1
    schemes: [mpp]
    session_deposit: 100
`, upstream)
}

// meteredUpstream serves /meter/...: kind=bytes (n bytes, declared
// length), kind=chunks (n bytes in 32 KiB writes, no length) or kind=sse
// (events of size bytes every `every`, until the client leaves).
func meteredUpstream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	switch q.Get("kind") {
	case "bytes":
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(bytes.Repeat([]byte("b"), n))
	case "chunks":
		buf := bytes.Repeat([]byte("c"), 32<<10)
		for n > 0 {
			k := min(n, len(buf))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	case "sse":
		size, _ := strconv.Atoi(q.Get("size"))
		every, _ := time.ParseDuration(q.Get("every"))
		w.Header().Set("Content-Type", "text/event-stream")
		ev := []byte("data: " + strings.Repeat("e", max(size-8, 0)) + "\n\n")
		for {
			if _, err := w.Write(ev); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(every):
			case <-r.Context().Done():
				return
			}
		}
	case "ws":
		// A WebSocket that sends a message every 50 ms until it is closed.
		websocket.Handler(func(ws *websocket.Conn) {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if websocket.Message.Send(ws, "tick") != nil {
					return
				}
			}
		}).ServeHTTP(w, r)
	default:
		http.Error(w, "kind?", http.StatusBadRequest)
	}
}

// costKiB is n bytes at msat per KiB, rounded up, as the gate meters.
func costKiB(n, msat int64) int64 { return (n*msat + 1023) / 1024 }

// stream GETs path with auth and reads the body to its end or cut; it
// returns the status, the L402-Meter header, the body and how long it
// took.
func stream(t testing.TB, g *gateDaemon, path, auth string) (int, string, string, time.Duration) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t, 2*time.Minute), "GET", "http://"+g.gate+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // a cut stream ends with an error
	return resp.StatusCode, resp.Header.Get("L402-Meter"), string(body), time.Since(start)
}

// finalEvent is where the stream's final event starts, -1 if it has none.
func finalEvent(body string) int { return strings.Index(body, "event: l402-balance-exhausted\n") }

func TestMeteredSessions(t *testing.T) {
	u := startGateUpstreams(t)
	g := startGateDaemon(t, meteredServices(u.http), "--gate.mint-rate", "100", "--gate.mint-burst", "1000")

	t.Run("a metered service sells sessions only", func(t *testing.T) {
		r, _, _ := g.sessionChallenge(t, "/meter/kib/x?kind=bytes&n=10", "")
		m, _ := r.json["meter"].(map[string]any)
		if r.header.Get("WWW-Authenticate") == "" || strings.Contains(strings.Join(r.header.Values("WWW-Authenticate"), " "), "L402") ||
			m == nil || m["unit"] != "kib" || msat(m["priceMsat"]) != 1000 || r.json["amountSats"] != float64(50) {
			t.Fatalf("402: %v %s", r.header, r.raw)
		}
		// A token or single payment of another service's is refused, not served.
		if r := g.get(t, "/meter/kib/x?kind=bytes&n=10", "Authorization", "L402 AGIAJEemVQUTEyNCR0exk7ek90Cg==:"+strings.Repeat("0", 64)); r.code != 402 {
			t.Fatalf("an L402 token on a metered service: %d %s", r.code, r.raw)
		}
	})

	t.Run("an SSE stream metered per KiB stops at zero balance with a final event, and the books balance to the msat", func(t *testing.T) {
		b, r := openSession(t, g, "/meter/kib/o?kind=bytes&n=100")
		if r.code != 200 || len(r.raw) != 100 || r.header.Get("L402-Meter") != "kib; price-msat=1000" {
			t.Fatalf("open: %d %v %q", r.code, r.header, r.raw)
		}
		code, meter, body, _ := stream(t, g, "/meter/kib/s?kind=sse&size=1000&every=2ms", sessionAuth(t, b))
		end := finalEvent(body)
		if code != 200 || meter == "" || end < 0 || !strings.HasSuffix(body, "\n\n") || !strings.Contains(body[end:], `"code":"insufficient_balance"`) {
			t.Fatalf("stream: %d %q, %d bytes, tail %q", code, meter, len(body), body[max(len(body)-300, 0):])
		}
		if end%1000 != 0 {
			t.Fatalf("the stream was cut inside an event: %d bytes before the final event", end)
		}
		s := sessionBooks(t, g)[b.id.String()]
		metered := costKiB(100, 1000) + costKiB(int64(end), 1000)
		if msat(s["meteredMsat"]) != metered || msat(s["debitedMsat"]) != 2000+metered || msat(s["requests"]) != 2 {
			t.Fatalf("bob received %d bytes of events; the gate metered %v (want %d): %v", end, s["meteredMsat"], metered, s)
		}
		if bal := msat(s["balanceMsat"]); bal >= costKiB(int64(end)+1000, 1000)-costKiB(int64(end), 1000) {
			t.Fatalf("the stream stopped with %d msat left, enough for another event", bal)
		}
		left := msat(s["balanceMsat"])
		if r := b.closeAt(t, "/meter/kib/close"); r.code != 200 || msat(r.json["refundMsat"]) != left {
			t.Fatalf("close: %d %s (balance %d)", r.code, r.raw, left)
		}
		waitFor(t, time.Minute, "the refund's outcome", func() error {
			s := sessionBooks(t, g)[b.id.String()]
			got := b.refundPaid(t)
			switch {
			case left >= 1000 && got != left:
				return fmt.Errorf("bob received %d of %d msat", got, left)
			case left < 1000 && s["refundStatus"] != "failed":
				// Under a channel's smallest HTLC: no route carries it;
				// it stays owed, on the books.
				return fmt.Errorf("refund of %d msat: %v", left, s["refundStatus"])
			}
			return nil
		})
	})

	t.Run("a stream metered per second ends when its paid seconds run out; a response it cannot start is refused and costs nothing", func(t *testing.T) {
		b, r := openSession(t, g, "/meter/sec/o?kind=bytes&n=10")
		if r.code != 200 {
			t.Fatalf("open: %d %s", r.code, r.raw)
		}
		// 20 sats - 1 - 5 (the open) - 1 (this request) = 13: two seconds.
		code, _, body, took := stream(t, g, "/meter/sec/s?kind=sse&size=100&every=50ms", sessionAuth(t, b))
		if code != 200 || finalEvent(body) < 0 || took < 2*time.Second || took > 20*time.Second {
			t.Fatalf("stream: %d after %v, tail %q", code, took, body[max(len(body)-200, 0):])
		}
		s := sessionBooks(t, g)[b.id.String()]
		if msat(s["meteredMsat"]) != 15_000 || msat(s["balanceMsat"]) != 3000 {
			t.Fatalf("books after two paid seconds: %v", s)
		}
		// 3 sats: the request's 1 sat, but not a second at 5.
		r = b.bearer(t, "/meter/sec/b?kind=bytes&n=10")
		if r.code != 402 || r.json["reason"] != "insufficient_balance" || r.json["meter"] == nil {
			t.Fatalf("a response the balance cannot start: %d %s", r.code, r.raw)
		}
		s = sessionBooks(t, g)[b.id.String()]
		if msat(s["balanceMsat"]) != 3000 || msat(s["requests"]) != 2 {
			t.Fatalf("the refused response cost something: %v", s)
		}
		if r := b.closeAt(t, "/meter/sec/close"); r.code != 200 || msat(r.json["refundMsat"]) != 3000 {
			t.Fatalf("close: %d %s", r.code, r.raw)
		}
	})

	t.Run("a WebSocket metered per second is closed when its paid seconds run out", func(t *testing.T) {
		b, r := openSession(t, g, "/meter/ws/o?kind=bytes&n=10")
		if r.code != 200 {
			t.Fatalf("open: %d %s", r.code, r.raw)
		}
		cfg, err := websocket.NewConfig("ws://"+g.gate+"/meter/ws/s?kind=ws", "http://"+g.gate)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Header = http.Header{"Authorization": {sessionAuth(t, b)}}
		start := time.Now()
		ws, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ticks := 0
		var msg string
		for websocket.Message.Receive(ws, &msg) == nil {
			ticks++
			if time.Since(start) > 20*time.Second {
				t.Fatal("the WebSocket outlived its balance")
			}
		}
		took := time.Since(start)
		// 20 sats − 1 − 5 (the open) − 1 (this request) = 13: two seconds.
		if took < 2*time.Second || ticks < 20 {
			t.Fatalf("closed after %v and %d messages; two seconds were paid for", took, ticks)
		}
		s := sessionBooks(t, g)[b.id.String()]
		if msat(s["meteredMsat"]) != 15_000 || msat(s["balanceMsat"]) != 3000 {
			t.Fatalf("books after a WebSocket of two paid seconds: %v", s)
		}
	})

	t.Run("bob's l402d on a metered service tops up when a response needs it and spends exactly what the gate metered", func(t *testing.T) {
		bob := startBob(t)
		access := func() map[string]any {
			t.Helper()
			code, out := bob.call(t, "POST", "/api/consumer/access", map[string]any{"url": "http://" + g.gate + "/meter/kib/c?kind=bytes&n=5000", "session": true, "maxSats": 100})
			if code != 200 || msat(out["status"]) != 200 || len(str(out["body"])) == 0 {
				t.Fatalf("access: %d %v", code, out)
			}
			return out
		}
		var id string
		payments := 0
		for i := 1; i <= 9; i++ {
			out := access()
			if out["paid"] == true {
				payments++
			}
			id = str(out["session"].(map[string]any)["sessionId"])
		}
		// Each request: 1 sat + 5000 bytes at 1 sat/KiB = 5883 msat; 8
		// fit one 50-sat deposit, the 9th needed a top-up.
		if payments != 2 {
			t.Fatalf("bob paid %d deposits for 9 requests, want 2", payments)
		}
		spentToday := func() int64 {
			t.Helper()
			code, b := bob.call(t, "GET", "/api/consumer/budget", nil)
			if code != 200 {
				t.Fatalf("budget: %d %v", code, b)
			}
			return msat(obj(b["today"])["spentMsat"])
		}
		before := spentToday()
		code, out := bob.call(t, "POST", "/api/consumer/sessions/"+id+"/close", nil)
		want := int64(100_000 - 9*(1000+costKiB(5000, 1000)))
		if code != 200 || out["state"] != "refunded" || msat(out["refundMsat"]) != want {
			t.Fatalf("close: %d %v; want %d msat back", code, out, want)
		}
		s := sessionBooks(t, g)[id]
		if msat(s["depositedMsat"]) != 100_000 || msat(s["refundMsat"]) != want || msat(s["requests"]) != 9 {
			t.Fatalf("alice's books %v", s)
		}
		// The refund is credited back to bob's budget, once.
		if after := spentToday(); after != before-want {
			t.Fatalf("bob's budget spent today %d before the close, %d after; want the %d msat refund credited", before, after, want)
		}
		if code, _ := bob.call(t, "POST", "/api/consumer/sessions/"+id+"/close", nil); code != 200 || spentToday() != before-want {
			t.Fatal("a second close credited the refund again")
		}
	})

	t.Run("one origin, two services: bob holds a session for each and pays each deposit once", func(t *testing.T) {
		bob := startBob(t)
		deposits := 0
		for i := range 6 {
			path := fmt.Sprintf("/meter/flat/two/%d?kind=bytes&n=10", i)
			if i%2 == 1 {
				path = fmt.Sprintf("/meter/kib/two/%d?kind=bytes&n=10", i)
			}
			code, out := bob.call(t, "POST", "/api/consumer/access", map[string]any{"url": "http://" + g.gate + path, "session": true, "maxSats": 200})
			if code != 200 || msat(out["status"]) != 200 {
				t.Fatalf("access %s: %d %v", path, code, out)
			}
			if out["paid"] == true {
				deposits++
			}
		}
		_, list := bob.call(t, "GET", "/api/consumer/sessions", nil)
		if deposits != 2 || len(list["sessions"].([]any)) != 2 {
			t.Fatalf("%d deposits paid for 6 alternating accesses; bob holds %v", deposits, list)
		}
	})

	t.Run("bob's l402d closes a session left idle and collects its refund", func(t *testing.T) {
		bob := startBob(t, "--consumer.session-idle-close", "2s")
		code, out := bob.call(t, "POST", "/api/consumer/access", map[string]any{"url": "http://" + g.gate + "/meter/kib/i?kind=bytes&n=1024", "session": true, "maxSats": 100})
		if code != 200 || msat(out["status"]) != 200 {
			t.Fatalf("access: %d %v", code, out)
		}
		id := str(out["session"].(map[string]any)["sessionId"])
		waitFor(t, time.Minute, "the idle session to be closed and refunded", func() error {
			_, list := bob.call(t, "GET", "/api/consumer/sessions", nil)
			for _, x := range list["sessions"].([]any) {
				if s := x.(map[string]any); str(s["sessionId"]) == id && s["state"] != "refunded" {
					return fmt.Errorf("session %v", s["state"])
				}
			}
			return nil
		})
		// 50 sats − 1 sat for the request − 1 sat for its KiB.
		if s := sessionBooks(t, g)[id]; s["state"] != "closed" || msat(s["refundMsat"]) != 48_000 || s["refundStatus"] != "succeeded" {
			t.Fatalf("alice's books %v", s)
		}
	})

	t.Run("kill -9 mid-stream: the books balance and every byte bob got was paid for", func(t *testing.T) {
		b, r := openSession(t, g, "/meter/long/o?kind=bytes&n=10")
		if r.code != 200 {
			t.Fatalf("open: %d %s", r.code, r.raw)
		}
		req, err := http.NewRequestWithContext(testCtx(t, time.Minute), "GET", "http://"+g.gate+"/meter/long/s?kind=sse&size=4096&every=1ms", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", sessionAuth(t, b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream: %v %v", resp, err)
		}
		var got atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 32<<10)
			for {
				n, err := resp.Body.Read(buf)
				got.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
		waitFor(t, 30*time.Second, "the stream to flow", func() error {
			if got.Load() < 1<<20 {
				return fmt.Errorf("%d bytes", got.Load())
			}
			return nil
		})
		g.kill9(t)
		<-done
		resp.Body.Close()
		g.start(t)
		s := sessionBooks(t, g)[b.id.String()]
		paidFor := msat(s["meteredMsat"]) - costKiB(10, 1)
		if paidFor < costKiB(got.Load(), 1) {
			t.Fatalf("bob received %d bytes (%d msat) but the gate metered %d msat before the crash", got.Load(), costKiB(got.Load(), 1), paidFor)
		}
		t.Logf("bob received %d bytes (%d msat); the gate had metered %d msat", got.Load(), costKiB(got.Load(), 1), paidFor)
		// The session goes on after the crash.
		if r := b.bearer(t, "/meter/long/x?kind=bytes&n=2048"); r.code != 200 || len(r.raw) != 2048 {
			t.Fatalf("after restart: %d", r.code)
		}
		sessionBooks(t, g)
	})
}

// BenchmarkMeteredStream measures, in one run on one gate, what metering
// costs a stream: the throughput of a 256 MiB chunked body bought from a
// prepaid session, through a service metered per KiB (1 msat a KiB, the
// default block: 10 sats' worth, 9.8 MiB, debited ahead) and through an unmetered one,
// alternating, 5 rounds. Printed as Markdown; no assertions.
//
// Run: make bench-schemes
func BenchmarkMeteredStream(b *testing.B) {
	u := startGateUpstreams(b)
	g := startGateDaemon(b, meteredServices(u.http)+fmt.Sprintf(`  - name: bulk
    path: /meter/bulk/*
    upstream: http://%[1]s
    price: 1
    schemes: [mpp]
    session_deposit: 2000
    meter: kib
    meter_price_msat: 1
  - name: bigblock
    path: /meter/big/*
    upstream: http://%[1]s
    price: 1
    schemes: [mpp]
    session_deposit: 2000
    meter: kib
    meter_price_msat: 1
    meter_block: 65536
`, u.http), "--log.level", "warn")
	const size = 256 << 20
	path := fmt.Sprintf("?kind=chunks&n=%d", size)
	flat, r := openSession(b, g, "/meter/flat/o?kind=bytes&n=10")
	if r.code != 200 {
		b.Fatalf("open: %d %s", r.code, r.raw)
	}
	bulk, r := openSession(b, g, "/meter/bulk/o?kind=bytes&n=10")
	if r.code != 200 {
		b.Fatalf("open: %d %s", r.code, r.raw)
	}
	big, r := openSession(b, g, "/meter/big/o?kind=bytes&n=10")
	if r.code != 200 {
		b.Fatalf("open: %d %s", r.code, r.raw)
	}
	run := func(prefix string, by *buyer) float64 {
		req, err := http.NewRequestWithContext(testCtx(b, 5*time.Minute), "GET", "http://"+g.gate+prefix+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", sessionAuth(b, by))
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || resp.StatusCode != 200 {
			b.Fatalf("%s: %d, %d bytes, %v", prefix, resp.StatusCode, n, err)
		}
		return float64(size) / (1 << 20) / time.Since(start).Seconds()
	}
	targets := []struct {
		prefix string
		by     *buyer
		rs     []float64
	}{{"/meter/flat/s", flat, nil}, {"/meter/bulk/s", bulk, nil}, {"/meter/big/s", big, nil}}
	for i := range 5 {
		for j := range targets {
			tg := &targets[(i+j)%len(targets)]
			tg.rs = append(tg.rs, run(tg.prefix, tg.by))
		}
	}
	flatR, bulkR, bigR := targets[0].rs, targets[1].rs, targets[2].rs
	s := sessionBooks(b, g)[bulk.id.String()]
	fmt.Printf("\n| 256 MiB through the gate on a session | MiB/s, per round | median |\n|---|---|---|\n")
	fmt.Printf("| unmetered | %s | %.0f |\n", rounds(flatR), medianF(flatR))
	fmt.Printf("| metered per KiB (1 msat/KiB, default block 10,000 KiB) | %s | %.0f |\n", rounds(bulkR), medianF(bulkR))
	fmt.Printf("| metered per KiB (1 msat/KiB, meter_block 65,536 KiB) | %s | %.0f |\n", rounds(bigR), medianF(bigR))
	fmt.Printf("\nmetered / unmetered: %.0f %% (default block), %.0f %% (64 MiB block); the metered session was debited %d msat for %d × 256 MiB (%d msat expected)\n",
		100*medianF(bulkR)/medianF(flatR), 100*medianF(bigR)/medianF(flatR), msat(s["meteredMsat"]), len(bulkR), costKiB(10, 1)+int64(len(bulkR))*costKiB(size, 1))
}

func rounds(xs []float64) string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(out, ", ")
}

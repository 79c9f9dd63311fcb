package gate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// HeaderMeter announces, on a metered response, what it is metered by:
// "kib; price-msat=10" or "second; price-msat=1000".
const HeaderMeter = "L402-Meter"

// MeterEndEvent is the name of the server-sent event a metered SSE
// stream ends with when its session's balance runs out (or the session
// is closed); its data is a JSON object with code, message, sessionId
// and fix.
const MeterEndEvent = "l402-balance-exhausted"

// errMeterExhausted is what a metered response's writes return once its
// session cannot pay for more: the handler (the proxy) stops there.
var errMeterExhausted = errors.New("gate: the session's balance ran out; the metered response was cut")

// meterFirstKiB is the first block of a per-KiB meter: small, so that a
// small response takes little ahead; each later block doubles, up to the
// service's meter_block.
const meterFirstKiB = 16

// meterLead is how long before its paid time runs out a per-second meter
// debits its next block: a second, or half a block if that is shorter.
func meterLead(blockSecs int64) time.Duration {
	return min(time.Second, time.Duration(blockSecs)*time.Second/2)
}

// meterDebits is what a meter takes from and gives back to a session.
type meterDebits interface {
	MeterSession(ctx context.Context, id lntypes.Hash, service string, wantMsat, minMsat int64) (int64, storage.Session, error)
	UnmeterSession(ctx context.Context, id lntypes.Hash, msat int64) error
}

// meter charges a session for one response as it flows: per KiB of body,
// or per second from the response's start to its end. It debits ahead, a
// block at a time (the next block while the current one still has half
// left), so that what it releases is always paid for durably; when the
// response ends it gives back what it took and did not use.
//
// It is the response's writer (and, for a WebSocket, wraps the hijacked
// connection). The handler's goroutine writes; a per-second meter's timer
// and an ahead debit run beside it; mu orders them.
type meter struct {
	spec    meterSpec
	debits  meterDebits
	service string
	id      lntypes.Hash
	ctx     context.Context    // for debits: outlives the request
	stop    context.CancelFunc // cancels the request the handler serves
	w       http.ResponseWriter
	method  string
	now     func() time.Time
	log     interface{ Warn(string, ...any) }
	// refuse answers a response the balance cannot even start (402 with
	// a top-up challenge) on w.
	refuse func(error)

	mu       sync.Mutex
	started  bool
	start    time.Time
	paid     int64         // msat taken ahead, in all
	bytes    int64         // body bytes released
	block    int64         // the next block, in units
	refill   chan struct{} // set while an ahead debit runs; closed when it is done
	ended    bool
	endErr   error // why the balance ended, for the final event
	sse      bool
	whole    bool // the declared length is paid for: nothing to take ahead
	hijacked net.Conn
	timer    *time.Timer
	tail     [2]byte // the last two bytes released, for the final event
}

func newMeter(spec meterSpec, debits meterDebits, service string, id lntypes.Hash, ctx context.Context, stop context.CancelFunc,
	w http.ResponseWriter, r *http.Request, now func() time.Time, log interface{ Warn(string, ...any) }, refuse func(error)) *meter {
	m := &meter{spec: spec, debits: debits, service: service, id: id, ctx: ctx, stop: stop, w: w, method: r.Method, now: now, log: log, refuse: refuse,
		block: spec.block, tail: [2]byte{'\n', '\n'}}
	if spec.unit == MeterKiB {
		m.block = min(spec.block, meterFirstKiB)
	}
	w.Header().Set(HeaderMeter, string(spec.unit)+"; price-msat="+strconv.FormatInt(spec.price, 10))
	return m
}

// costKiB is what n bytes cost at price msat per KiB, rounded up; ok is
// false when it does not fit in an int64.
func costKiB(n, price int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(n), uint64(price))
	if hi != 0 || lo > 1<<63-1-1023 {
		return 0, false
	}
	return int64((lo + 1023) / 1024), true
}

// used is what the response has cost so far, in msat.
func (m *meter) used() int64 {
	if !m.started {
		return 0
	}
	if m.spec.unit == MeterSecond {
		secs := int64((m.now().Sub(m.start) + time.Second - 1) / time.Second)
		return min(max(secs, 1)*m.spec.price, m.paid)
	}
	c, ok := costKiB(m.bytes, m.spec.price)
	if !ok {
		return m.paid
	}
	return min(c, m.paid)
}

// Header, Write, WriteHeader, Flush, Hijack: the meter is the response's
// writer.

func (m *meter) Header() http.Header { return m.w.Header() }

// Unwrap lets http.ResponseController reach the writer beneath for what
// the meter does not handle itself.
func (m *meter) Unwrap() http.ResponseWriter { return m.w }

func (m *meter) WriteHeader(code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended || m.started || code < 200 {
		if !m.ended {
			m.w.WriteHeader(code)
		}
		return
	}
	if !m.begin(code) {
		return
	}
	m.w.WriteHeader(code)
}

func (m *meter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started && !m.ended {
		if !m.begin(http.StatusOK) {
			return 0, errMeterExhausted
		}
	}
	if m.ended {
		return 0, errMeterExhausted
	}
	n := len(p)
	if m.spec.unit == MeterKiB {
		n = int(m.coverKiB(int64(len(p))))
	}
	w, err := m.w.Write(p[:n])
	m.release(p[:w])
	if err == nil && n < len(p) {
		m.end(errMeterExhausted)
		err = errMeterExhausted
	}
	return w, err
}

func (m *meter) Flush() { _ = m.FlushError() }

func (m *meter) FlushError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hijacked != nil {
		return nil
	}
	return http.NewResponseController(m.w).Flush()
}

// Hijack hands over the connection (a WebSocket upgrade), wrapped so
// that what the upstream sends the client is metered.
func (m *meter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return nil, nil, errMeterExhausted
	}
	if !m.started && !m.begin(http.StatusSwitchingProtocols) {
		return nil, nil, errMeterExhausted
	}
	c, brw, err := http.NewResponseController(m.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	m.hijacked = c
	return &meteredConn{Conn: c, m: m}, brw, nil
}

// meteredConn is a hijacked connection whose writes (upstream to client)
// are metered.
type meteredConn struct {
	net.Conn
	m *meter
}

func (c *meteredConn) Write(p []byte) (int, error) {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return 0, errMeterExhausted
	}
	n := len(p)
	if m.spec.unit == MeterKiB {
		n = int(m.coverKiB(int64(len(p))))
	}
	w, err := c.Conn.Write(p[:n])
	m.bytes += int64(w)
	if err == nil && n < len(p) {
		m.end(errMeterExhausted)
		err = errMeterExhausted
	}
	return w, err
}

// begin starts the response with status code: it takes the first block
// (per second: at least one second; per KiB with a declared length: the
// whole body) and reports false, having answered 402, when the balance
// cannot pay for that. Called with mu held.
func (m *meter) begin(code int) bool {
	m.started, m.start = true, m.now()
	h := m.w.Header()
	m.sse = strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.Get("Content-Type"))), "text/event-stream")
	var err error
	switch m.spec.unit {
	case MeterSecond:
		var took int64
		took, _, err = m.debits.MeterSession(m.ctx, m.id, m.service, m.spec.block*m.spec.price, m.spec.price)
		m.paid += took
		if err == nil {
			m.schedule()
		}
	case MeterKiB:
		cl, perr := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
		if perr != nil || cl <= 0 || m.method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified {
			return true // metered as it flows
		}
		cost, ok := costKiB(cl, m.spec.price)
		if !ok {
			err = &storage.BalanceError{WantMsat: 1<<63 - 1}
			break
		}
		var took int64
		took, _, err = m.debits.MeterSession(m.ctx, m.id, m.service, cost, cost)
		m.paid += took
		m.whole = err == nil
	}
	if err == nil {
		return true
	}
	m.ended, m.endErr = true, err
	m.started = false
	m.refuse(err)
	return false
}

// coverKiB makes sure the next n bytes are paid for, debiting what is
// missing (waiting for an ahead debit first), and returns how many of
// them are. It starts the next block ahead when less than half of one is
// left. Called with mu held; it may let go of mu while it waits.
func (m *meter) coverKiB(n int64) int64 {
	need, ok := costKiB(m.bytes+n, m.spec.price)
	if !ok {
		return 0
	}
	for need > m.paid && m.refill != nil && !m.ended {
		ch := m.refill
		m.mu.Unlock()
		<-ch
		m.mu.Lock()
	}
	if m.ended {
		return 0
	}
	if need > m.paid {
		want := max(m.nextBlockMsat(), need-m.paid)
		took, _, err := m.debits.MeterSession(m.ctx, m.id, m.service, want, 1)
		m.paid += took
		if err != nil {
			m.endErr = err
		}
	}
	if need > m.paid {
		// What the balance still pays for, and not a byte more.
		var afford int64
		for lo, hi := int64(0), n; lo <= hi; {
			mid := (lo + hi) / 2
			if c, _ := costKiB(m.bytes+mid, m.spec.price); c <= m.paid {
				afford, lo = mid, mid+1
			} else {
				hi = mid - 1
			}
		}
		if m.sse {
			return 0 // never half an event
		}
		return afford
	}
	if !m.whole && m.refill == nil && m.paid-need < m.spec.block*m.spec.price/2 {
		m.ahead(m.nextBlockMsat())
	}
	return n
}

// nextBlockMsat is the next block's price, and grows the block after it.
func (m *meter) nextBlockMsat() int64 {
	b := m.block
	m.block = min(m.block*2, m.spec.block)
	return b * m.spec.price
}

// ahead debits want msat in the background (per KiB), so that the
// response does not wait for the write. Called with mu held.
func (m *meter) ahead(want int64) {
	ch := make(chan struct{})
	m.refill = ch
	go func() {
		took, _, err := m.debits.MeterSession(m.ctx, m.id, m.service, want, 1)
		m.mu.Lock()
		defer m.mu.Unlock()
		m.paid += took
		if err != nil && m.endErr == nil {
			m.endErr = err
		}
		m.refill = nil
		close(ch)
	}()
}

// schedule arms a per-second meter's timer: the next block's debit
// meterLead before the paid time runs out. Called with mu held.
func (m *meter) schedule() {
	paidFor := time.Duration(m.paid/m.spec.price) * time.Second
	at := m.start.Add(paidFor - meterLead(m.spec.block))
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timer = time.AfterFunc(max(at.Sub(m.now()), 0), m.tick)
}

// tick debits a per-second meter's next block, or, when the balance
// cannot pay for another second, ends the response when the paid time
// runs out.
func (m *meter) tick() {
	m.mu.Lock()
	if m.ended {
		m.mu.Unlock()
		return
	}
	paidUntil := m.start.Add(time.Duration(m.paid/m.spec.price) * time.Second)
	if !m.now().Before(paidUntil) {
		m.end(errMeterExhausted)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	took, _, err := m.debits.MeterSession(m.ctx, m.id, m.service, m.spec.block*m.spec.price, m.spec.price)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		// Finished while debiting: finish waits for no tick, so give
		// it back here.
		m.giveBack(took)
		return
	}
	m.paid += took
	if err != nil {
		m.endErr = err
		m.timer = time.AfterFunc(max(paidUntil.Sub(m.now()), 0), m.tick)
		return
	}
	m.schedule()
}

// end stops the response for good: an SSE stream gets the final event,
// a WebSocket its connection closed, and the handler's request is
// canceled (the proxy stops reading the upstream). Called with mu held.
func (m *meter) end(why error) {
	if m.ended {
		return
	}
	m.ended = true
	if m.endErr == nil {
		m.endErr = why
	}
	if m.timer != nil {
		m.timer.Stop()
	}
	switch {
	case m.hijacked != nil:
		_ = m.hijacked.Close()
	case m.sse:
		_, _ = m.w.Write(m.finalEvent())
		_ = http.NewResponseController(m.w).Flush()
	}
	m.stop()
}

// finalEvent is the SSE event a stream ends with, after whatever ends
// the event the stream was in.
func (m *meter) finalEvent() []byte {
	code := producer.ReasonCode(m.endErr)
	if code == "error" || errors.Is(m.endErr, errMeterExhausted) {
		code = "insufficient_balance"
	}
	body, _ := json.Marshal(map[string]string{
		"code":      code,
		"message":   "the session's balance does not pay for more of this stream",
		"sessionId": m.id.String(),
		"fix":       "top up the session (a Payment credential with action topUp) and request the stream again",
	})
	var b []byte
	switch {
	case m.tail[1] != '\n':
		b = append(b, "\n\n"...)
	case m.tail[0] != '\n':
		b = append(b, '\n')
	}
	return fmt.Appendf(b, "event: %s\ndata: %s\n\n", MeterEndEvent, body)
}

// release records p as written.
func (m *meter) release(p []byte) {
	m.bytes += int64(len(p))
	switch len(p) {
	case 0:
	case 1:
		m.tail = [2]byte{m.tail[1], p[0]}
	default:
		m.tail = [2]byte{p[len(p)-2], p[len(p)-1]}
	}
}

// finish ends the meter when the handler has returned: it waits for an
// ahead debit, then gives back what was taken and not used.
func (m *meter) finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.refill != nil {
		ch := m.refill
		m.mu.Unlock()
		<-ch
		m.mu.Lock()
	}
	used := m.used()
	m.ended = true
	if m.timer != nil {
		m.timer.Stop()
	}
	m.giveBack(m.paid - used)
	m.paid = used
}

// giveBack returns msat taken ahead and not used. Called with mu held.
func (m *meter) giveBack(msat int64) {
	if msat <= 0 {
		return
	}
	if err := m.debits.UnmeterSession(m.ctx, m.id, msat); err != nil {
		m.log.Warn("gate: giving back unused metering failed; the session keeps it spent", "session", m.id, "msat", msat, "err", err)
	}
}

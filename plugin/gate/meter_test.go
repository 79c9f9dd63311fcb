package gate

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/storage"
)

// fakeBalance is a session's balance for unit-testing the meter's
// arithmetic; the store's own tests and the itests cover the real one.
type fakeBalance struct {
	mu      sync.Mutex
	balance int64
	metered int64
	debits  int
}

func (f *fakeBalance) MeterSession(_ context.Context, _ lntypes.Hash, _ string, want, minMsat int64) (int64, storage.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	took := min(want, f.balance)
	if took < minMsat {
		return 0, storage.Session{}, &storage.BalanceError{BalanceMsat: f.balance, WantMsat: minMsat}
	}
	f.balance -= took
	f.metered += took
	f.debits++
	return took, storage.Session{}, nil
}

func (f *fakeBalance) UnmeterSession(_ context.Context, _ lntypes.Hash, msat int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.balance += msat
	f.metered -= msat
	return nil
}

func (f *fakeBalance) state() (balance, metered int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.balance, f.metered
}

type nopLog struct{}

func (nopLog) Warn(string, ...any) {}

func testMeter(t *testing.T, spec meterSpec, bal *fakeBalance, hdr http.Header) (*meter, *httptest.ResponseRecorder, *bool, context.Context) {
	t.Helper()
	rec := httptest.NewRecorder()
	for k, v := range hdr {
		rec.Header()[k] = v
	}
	ctx, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	refused := new(bool)
	r := httptest.NewRequest(http.MethodGet, "/stream", nil)
	m := newMeter(spec, bal, "api", lntypes.Hash{1}, context.Background(), stop, rec, r, time.Now, nopLog{}, func(error) { *refused = true })
	return m, rec, refused, ctx
}

func TestCostKiB(t *testing.T) {
	tests := []struct {
		n, price, want int64
		ok             bool
	}{
		{0, 10, 0, true},
		{1, 10, 1, true},
		{1024, 10, 10, true},
		{1025, 10, 11, true},
		{10 << 20, 3, 30720, true},
		{1 << 62, 4, 0, false},
	}
	for _, tt := range tests {
		if got, ok := costKiB(tt.n, tt.price); got != tt.want || ok != tt.ok {
			t.Errorf("costKiB(%d, %d) = %d, %v; want %d, %v", tt.n, tt.price, got, ok, tt.want, tt.ok)
		}
	}
}

// TestMeterKiB: a stream the balance covers costs exactly its bytes; the
// unused block goes back; the debits are few.
func TestMeterKiB(t *testing.T) {
	bal := &fakeBalance{balance: 10_000_000}
	m, rec, refused, _ := testMeter(t, meterSpec{unit: MeterKiB, price: 10, block: 256}, bal, nil)
	chunk := strings.Repeat("x", 1000)
	for range 3000 {
		if _, err := m.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	m.finish()
	want, _ := costKiB(3_000_000, 10)
	if b, metered := bal.state(); metered != want || b != 10_000_000-want || *refused || rec.Body.Len() != 3_000_000 {
		t.Fatalf("metered %d, balance %d, body %d; want %d metered", metered, b, rec.Body.Len(), want)
	}
	if bal.debits > 20 {
		t.Errorf("%d debits for 3 MB at blocks up to 256 KiB; want them to grow", bal.debits)
	}
	if rec.Header().Get(HeaderMeter) != "kib; price-msat=10" {
		t.Errorf("%s = %q", HeaderMeter, rec.Header().Get(HeaderMeter))
	}
}

// TestMeterKiBRunsOut: an SSE stream stops at a write its balance does
// not cover, with the final event, and never releases more than was paid.
func TestMeterKiBRunsOut(t *testing.T) {
	bal := &fakeBalance{balance: 5000} // 500 KiB at 10 msat
	m, rec, _, ctx := testMeter(t, meterSpec{unit: MeterKiB, price: 10, block: 64}, bal, http.Header{"Content-Type": {"text/event-stream"}})
	m.WriteHeader(http.StatusOK)
	ev := "data: " + strings.Repeat("y", 4088) + "\n\n" // 4 KiB
	var err error
	n := 0
	for ; n < 1000 && err == nil; n++ {
		_, err = m.Write([]byte(ev))
	}
	if !errors.Is(err, errMeterExhausted) {
		t.Fatalf("write %d: %v; want the meter exhausted", n, err)
	}
	if ctx.Err() == nil {
		t.Error("the handler's request was not canceled")
	}
	m.finish()
	body := rec.Body.String()
	events := strings.Count(body, "data: yyyy")
	if events != 125 || !strings.HasSuffix(body, "\n\n") || !strings.Contains(body, "event: "+MeterEndEvent+"\ndata: {") {
		t.Fatalf("%d whole events then %q; want 125 and the final event", events, body[max(len(body)-300, 0):])
	}
	paidBytes := int64(len(body) - len(body[strings.LastIndex(body, "event: "):]))
	cost, _ := costKiB(paidBytes, 10)
	if b, metered := bal.state(); metered != cost || b+metered != 5000 {
		t.Fatalf("metered %d (balance %d) for %d bytes released, cost %d", metered, b, paidBytes, cost)
	}
}

// TestMeterKiBKnownLength: a body of declared length is paid in full
// before it starts, or refused before a byte of it goes out.
func TestMeterKiBKnownLength(t *testing.T) {
	for _, tt := range []struct {
		name    string
		balance int64
		refused bool
	}{{"covered", 100_000, false}, {"not covered", 9_999, true}} {
		t.Run(tt.name, func(t *testing.T) {
			bal := &fakeBalance{balance: tt.balance}
			m, rec, refused, _ := testMeter(t, meterSpec{unit: MeterKiB, price: 10, block: 64}, bal, http.Header{"Content-Length": {"1024000"}})
			m.WriteHeader(http.StatusOK)
			_, err := m.Write(make([]byte, 1024000))
			m.finish()
			b, metered := bal.state()
			if *refused != tt.refused || (err != nil) != tt.refused {
				t.Fatalf("refused %v, write %v; want refused %v", *refused, err, tt.refused)
			}
			if tt.refused && (rec.Body.Len() != 0 || metered != 0 || b != tt.balance) {
				t.Fatalf("refused, yet %d bytes out and %d metered", rec.Body.Len(), metered)
			}
			if !tt.refused && (metered != 10_000 || bal.debits != 1) {
				t.Fatalf("metered %d in %d debits; want 10000 in one", metered, bal.debits)
			}
		})
	}
}

// TestMeterSecond: a per-second stream is debited ahead each block and
// ended, with the final event, when the balance cannot pay another
// second; what it used is ceil(seconds) × price.
func TestMeterSecond(t *testing.T) {
	bal := &fakeBalance{balance: 2_000} // two seconds at 1000 msat
	m, rec, _, ctx := testMeter(t, meterSpec{unit: MeterSecond, price: 1000, block: 1}, bal, http.Header{"Content-Type": {"text/event-stream"}})
	start := time.Now()
	m.WriteHeader(http.StatusOK)
	if _, err := m.Write([]byte("data: tick\n\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream was not ended when its balance ran out")
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("ended after %v; two seconds were paid for", d)
	}
	if _, err := m.Write([]byte("data: late\n\n")); !errors.Is(err, errMeterExhausted) {
		t.Fatalf("write after the end = %v", err)
	}
	m.finish()
	if b, metered := bal.state(); metered != 2000 || b != 0 {
		t.Fatalf("metered %d, balance %d; want both seconds", metered, b)
	}
	if body := rec.Body.String(); !strings.HasSuffix(body, "\n\n") || !strings.Contains(body, "event: "+MeterEndEvent) || strings.Contains(body, "late") {
		t.Fatalf("body %q", body)
	}
}

// TestMeterSecondGivesBack: a response shorter than its block keeps one
// second and gives the rest back; one the balance cannot start is refused.
func TestMeterSecondGivesBack(t *testing.T) {
	bal := &fakeBalance{balance: 10_000}
	m, _, _, _ := testMeter(t, meterSpec{unit: MeterSecond, price: 1000, block: 5}, bal, nil)
	_, _ = m.Write([]byte("short"))
	m.finish()
	if b, metered := bal.state(); metered != 1000 || b != 9000 {
		t.Fatalf("metered %d, balance %d; want one second", metered, b)
	}
	poor := &fakeBalance{balance: 999}
	m, rec, refused, _ := testMeter(t, meterSpec{unit: MeterSecond, price: 1000, block: 5}, poor, nil)
	if _, err := m.Write([]byte("x")); !errors.Is(err, errMeterExhausted) || !*refused || rec.Body.Len() != 0 {
		t.Fatalf("write on a balance under one second = %v, refused %v", err, *refused)
	}
	m.finish()
}

package consumer

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/storage"
)

// trickle answers 200 and then one byte per tick until the request ends;
// stall answers 200, one byte, and then nothing. Both signal done when
// the handler returns (its connection and goroutine are released).
func trickle(done chan<- struct{}, stall bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		if stall {
			<-r.Context().Done()
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}
}

// TestBodyDeadlines: a target that trickles its body, or stops sending
// it, is cut off by the body deadline or the idle timeout; the payment
// made for it stays recorded and its token cached. (Before, reading such
// a body hung access, a goroutine and a connection for ever.)
func TestBodyDeadlines(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stall bool
	}{{"trickle past the total deadline", false}, {"stall past the idle timeout", true}} {
		t.Run(tt.name, func(t *testing.T) {
			ln := newFakeLN()
			c, st := newTestConsumer(t, ln, func(cfg *Config) {
				cfg.BodyTimeout, cfg.BodyIdleTimeout = 300*time.Millisecond, 200*time.Millisecond
			})
			s := newSeller(t, ln, 10)
			done := make(chan struct{})
			s.paidHandler = trickle(done, tt.stall)
			resp, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/slow"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = resp.ReadBody(1 << 20)
			if !errors.Is(err, ErrBodyTimeout) {
				t.Fatalf("reading the body: %v, want ErrBodyTimeout", err)
			}
			resp.Body.Close()
			select {
			case <-done:
			case <-t.Context().Done():
				t.Fatal("the target's handler never ended: the connection is still open")
			}
			h, err := lntypes.MakeHashFromStr(resp.Payment.PaymentHash)
			if err != nil {
				t.Fatal(err)
			}
			p, err := st.Payment(t.Context(), h)
			if err != nil || p.State != storage.PaymentSucceeded {
				t.Fatalf("payment %+v %v", p, err)
			}
			toks, err := st.TokensForOrigin(t.Context(), s.srv.URL)
			if err != nil || len(toks) != 1 {
				t.Fatalf("tokens %v %v", toks, err)
			}
		})
	}
}

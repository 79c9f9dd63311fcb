package embedded

import (
	"os"
	ossignal "os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/signal"
)

// TestDetachOSSignals: once detached, lnd's interceptor ignores SIGTERM
// (l402d's own handler gets it) but still shuts down on request.
func TestDetachOSSignals(t *testing.T) {
	ic, err := signal.Intercept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ic.Alive() {
			ic.RequestShutdown()
		}
	})
	if err := detachOSSignals(&ic); err != nil {
		t.Fatal(err)
	}

	own := make(chan os.Signal, 1)
	ossignal.Notify(own, syscall.SIGTERM)
	defer ossignal.Stop(own)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-own:
	case <-time.After(10 * time.Second):
		t.Fatal("the process's own handler did not get SIGTERM")
	}
	// Had the interceptor still been subscribed, it would have been
	// handed the same signal and begun shutting down by now.
	time.Sleep(200 * time.Millisecond)
	if !ic.Alive() {
		t.Fatal("the detached interceptor acted on SIGTERM")
	}

	ic.RequestShutdown()
	select {
	case <-ic.ShutdownChannel():
	case <-time.After(10 * time.Second):
		t.Fatal("the interceptor did not shut down on request")
	}
}

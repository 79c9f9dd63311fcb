package embedded

import (
	"errors"
	"os"
	ossignal "os/signal"
	"reflect"
	"unsafe"

	"github.com/lightningnetwork/lnd/signal"
)

// detachOSSignals stops ic from receiving OS signals. lnd's
// signal.Intercept subscribes to SIGINT, SIGTERM and SIGQUIT and starts
// LND's shutdown on any of them, so without this a SIGTERM would stop
// LND at the same moment as l402d, while l402d's in-flight requests still
// need it. Detached, the interceptor only acts on RequestShutdown, which
// Node.Stop calls once l402d has stopped.
//
// lnd offers no API for this: the interceptor's signal channel is
// unexported, so it is read by reflection. If a future lnd renames it,
// this fails loudly (and TestDetachOSSignals with it) instead of silently
// shutting down out of order.
func detachOSSignals(ic *signal.Interceptor) error {
	f := reflect.ValueOf(ic).Elem().FieldByName("interruptChannel")
	if !f.IsValid() || f.Type() != reflect.TypeFor[chan os.Signal]() {
		return errors.New("embedded lnd: lnd's signal.Interceptor has no interruptChannel (chan os.Signal) field; " +
			"detachOSSignals must be updated for this lnd version")
	}
	ch := *(*chan os.Signal)(unsafe.Pointer(f.UnsafeAddr()))
	ossignal.Stop(ch)
	return nil
}

package regtest

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WaitFor calls check every interval until it returns nil. It gives up when
// timeout has passed or ctx ends, returning an error that names what was
// awaited and wraps the last error check returned. A check that can tell the
// wait is hopeless (a process exited, say) returns an error wrapped with
// [Unrecoverable] to end the wait at once.
func WaitFor(ctx context.Context, what string, timeout, interval time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var last error
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		last = check(ctx)
		if last == nil {
			return nil
		}
		var u unrecoverable
		if errors.As(last, &u) {
			return fmt.Errorf("waiting for %s: %w", what, u.err)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out after %v waiting for %s: %w", timeout, what, last)
			}
			return fmt.Errorf("waiting for %s: %w (last error: %w)", what, ctx.Err(), last)
		case <-ticker.C:
		}
	}
}

// Unrecoverable marks err as one that no amount of waiting fixes, so that
// [WaitFor] returns it immediately.
func Unrecoverable(err error) error {
	if err == nil {
		return nil
	}
	return unrecoverable{err}
}

type unrecoverable struct{ err error }

func (u unrecoverable) Error() string { return u.err.Error() }
func (u unrecoverable) Unwrap() error { return u.err }

// parallel runs fns concurrently and joins their errors.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	done := make(chan int, len(fns))
	for i, fn := range fns {
		go func() {
			errs[i] = fn()
			done <- i
		}()
	}
	for range fns {
		<-done
	}
	return errors.Join(errs...)
}

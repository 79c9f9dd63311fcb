//go:build itest

package itest

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadResult is what a closed-loop load run measured.
type loadResult struct {
	N, Errors int64
	Elapsed   time.Duration
	P50, P99  time.Duration
}

// PerSec is the completed operations per second.
func (r loadResult) PerSec() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// report puts the figures on a benchmark's line.
func (r loadResult) report(b *testing.B) {
	b.ReportMetric(r.PerSec(), "ops/s")
	b.ReportMetric(float64(r.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
	if r.Errors > 0 {
		b.Errorf("%d of %d operations failed", r.Errors, r.N+r.Errors)
	}
}

// runLoad runs op from workers goroutines, each in a closed loop, until n
// operations in total have run, and measures each operation's latency.
func runLoad(ctx context.Context, workers, n int, op func(ctx context.Context) error) loadResult {
	var (
		next, errs atomic.Int64
		mu         sync.Mutex
		lat        = make([]time.Duration, 0, n)
		wg         sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/workers+1)
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				t := time.Now()
				if err := op(ctx); err != nil {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := loadResult{N: int64(len(lat)), Errors: errs.Load(), Elapsed: time.Since(start)}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

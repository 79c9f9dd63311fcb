package storage

import (
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultMinFreeBytes is the free space the store keeps in reserve. Badger
// writes through memory-mapped, sparsely allocated files (the memtable's
// write-ahead log is 2×16 MiB, flushed into 16 MiB tables), so a write
// into a full filesystem is not an error but a SIGBUS that kills the
// process. Refusing writes while less than this is free turns a full disk
// into a clear error and leaves room for Badger to finish what it started.
const DefaultMinFreeBytes = 64 << 20

// spaceGuard refuses writes when the store's filesystem is nearly full.
// It asks the filesystem at most every spaceCheckEvery.
type spaceGuard struct {
	dir     string
	minFree int64
	checked atomic.Int64 // unix nanos of the last check
	free    atomic.Int64 // free bytes at the last check
}

const spaceCheckEvery = 100 * time.Millisecond

// check returns an error wrapping ErrDiskFull when less than the reserve
// is free. A filesystem that cannot be asked is not guarded.
func (g *spaceGuard) check() error {
	if g == nil || g.minFree <= 0 {
		return nil
	}
	now := time.Now().UnixNano()
	if now-g.checked.Load() > int64(spaceCheckEvery) {
		free, ok := freeBytes(g.dir)
		if !ok {
			return nil
		}
		g.free.Store(free)
		g.checked.Store(now)
	}
	if free := g.free.Load(); free < g.minFree {
		return fmt.Errorf("storage: %w: %s has %d MiB free and l402d keeps %d MiB in reserve; free disk space and writes resume by themselves",
			ErrDiskFull, g.dir, free>>20, g.minFree>>20)
	}
	return nil
}

package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// timeRange is where a newest-first walk of a time index (keys
// prefix ‖ t 8 ‖ hash 32) starts and stops.
type timeRange struct {
	// start is the key to Seek to in a reverse iteration: just past
	// Until, so that Until is exclusive.
	start []byte
	// after is the full key a Cursor names, nil for none: it and every
	// newer key were on earlier pages.
	after []byte
	// since is the lowest encoded time to visit.
	since uint64
}

func newTimeRange(prefix []byte, since, until time.Time, after Cursor) (timeRange, error) {
	var r timeRange
	// Iterating in reverse, Seek lands on the last key <= start.
	r.start = append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, 8+lntypes.HashSize+1)...)
	if !until.IsZero() {
		r.start = binary.BigEndian.AppendUint64(bytes.Clone(prefix), orderedInt64(unixNanos(until)))
	}
	if after != "" {
		raw, err := base64.RawURLEncoding.DecodeString(string(after))
		if err != nil || len(raw) != 8+lntypes.HashSize {
			return r, fmt.Errorf("storage: %w: bad cursor %q", ErrInvalid, after)
		}
		r.after = append(bytes.Clone(prefix), raw...)
	}
	if !since.IsZero() {
		r.since = orderedInt64(unixNanos(since))
	}
	return r, nil
}

// cursorAt returns the Cursor naming index key k.
func cursorAt(prefix, k []byte) Cursor {
	return Cursor(base64.RawURLEncoding.EncodeToString(k[len(prefix):]))
}

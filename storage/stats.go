package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Counters are the revenue aggregates of a period.
type Counters struct {
	Created     uint64 // challenges issued
	Settled     uint64 // challenges paid
	RevenueMsat int64  // sum of AmountPaidMsat over the settled ones
}

func (c *Counters) add(d Counters) {
	c.Created += d.Created
	c.Settled += d.Settled
	c.RevenueMsat += d.RevenueMsat
}

// DayStats are the counters of one UTC day. A challenge counts as created
// on the day of its CreatedAt and as settled, with its revenue, on the day
// of its SettledAt.
type DayStats struct {
	Day time.Time // midnight UTC
	Counters
}

// Stats are the aggregates Stats reports.
type Stats struct {
	Total Counters   // all time
	Range Counters   // the sum of Days
	Days  []DayStats // days in the range with any activity, oldest first
}

// Stats returns the all-time counters and the daily series for the UTC days
// overlapping [since, until); a zero since or until leaves that side open.
// The counters are maintained as challenges are stored and settled, so this
// reads a few keys per day rather than the challenges.
func (s *Store) Stats(ctx context.Context, since, until time.Time) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	var st Stats
	err := s.db.View(ctx, func(txn kvTxn) error {
		for sh := range byte(shards) {
			c, err := getCounters(txn, aggTotalKey(sh))
			if err != nil {
				return err
			}
			st.Total.add(c)
		}

		prefix := []byte(prefixAggDay)
		it := txn.NewIterator(iterOptions{Prefix: prefix})
		defer it.Close()
		start := prefix
		if !since.IsZero() {
			start = aggDayKey(dayOf(since), 0)
		}
		for it.Seek(start); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) != len(prefix)+5 {
				return corrupt(k, "day counters entry has a %d-byte key", len(k))
			}
			day := int64(int32(binary.BigEndian.Uint32(k[len(prefix):]) ^ (1 << 31)))
			if !until.IsZero() && !dayStart(day).Before(until) {
				break
			}
			c, err := countersValue(item)
			if err != nil {
				return err
			}
			if n := len(st.Days); n == 0 || dayOf(st.Days[n-1].Day) != day {
				st.Days = append(st.Days, DayStats{Day: dayStart(day)})
			}
			st.Days[len(st.Days)-1].add(c)
			st.Range.add(c)
		}
		return nil
	})
	if err != nil {
		return Stats{}, err
	}
	return st, nil
}

// addCounters adds d to the all-time and the day counters of shard. The
// reads make concurrent writers of the same shard conflict and retry, so no
// increment is lost.
func addCounters(txn kvTxn, shard byte, day int64, d Counters) error {
	for _, k := range [...][]byte{aggTotalKey(shard), aggDayKey(day, shard)} {
		c, err := getCounters(txn, k)
		if err != nil {
			return err
		}
		c.add(d)
		if err := txn.Set(k, encodeCounters(c)); err != nil {
			return err
		}
	}
	return nil
}

func getCounters(txn kvTxn, k []byte) (Counters, error) {
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return Counters{}, nil
	}
	if err != nil {
		return Counters{}, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	return countersValue(item)
}

func countersValue(item *kvItem) (Counters, error) {
	var c Counters
	err := item.Value(func(v []byte) error {
		if len(v) != 24 {
			return corrupt(item.Key(), "counters are %d bytes, want 24", len(v))
		}
		c.Created = binary.BigEndian.Uint64(v)
		c.Settled = binary.BigEndian.Uint64(v[8:])
		c.RevenueMsat = int64(binary.BigEndian.Uint64(v[16:]))
		return nil
	})
	return c, err
}

func encodeCounters(c Counters) []byte {
	b := make([]byte, 0, 24)
	b = binary.BigEndian.AppendUint64(b, c.Created)
	b = binary.BigEndian.AppendUint64(b, c.Settled)
	return binary.BigEndian.AppendUint64(b, uint64(c.RevenueMsat))
}

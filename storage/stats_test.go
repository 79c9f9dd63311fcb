package storage

import (
	"testing"
	"time"
)

func assertStats(t testing.TB, got, want Stats) {
	t.Helper()
	if got.Total != want.Total || got.Range != want.Range || len(got.Days) != len(want.Days) {
		t.Fatalf("stats = %+v\nwant %+v", got, want)
	}
	for i := range got.Days {
		if !got.Days[i].Day.Equal(want.Days[i].Day) || got.Days[i].Counters != want.Days[i].Counters {
			t.Fatalf("day %d = %+v, want %+v", i, got.Days[i], want.Days[i])
		}
	}
}

func TestStatsDaily(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	day := func(d int) time.Time { return time.Date(2025, 1, 1+d, 0, 0, 0, 0, time.UTC) }

	// Day 0: two created, one settled on day 1 for 5000 msat.
	// Day 1: one created at 23:59:59 and settled on day 3 for 7000 msat.
	// Day 2: nothing. Day 3: one created, never settled.
	put := func(at time.Time) *Challenge {
		c := fullChallenge(t, at)
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := put(day(0).Add(time.Hour))
	put(day(0).Add(2 * time.Hour))
	b := put(day(1).Add(24*time.Hour - time.Second))
	put(day(3).Add(time.Minute))
	for _, st := range []Settlement{
		{PaymentHash: a.PaymentHash, AmountPaidMsat: 5000, SettledAt: day(1).Add(time.Minute), SettleIndex: 1},
		{PaymentHash: b.PaymentHash, AmountPaidMsat: 7000, SettledAt: day(3), SettleIndex: 2},
	} {
		if _, err := s.Settle(ctx, st); err != nil {
			t.Fatal(err)
		}
	}

	total := Counters{Created: 4, Settled: 2, RevenueMsat: 12000}
	d0 := DayStats{day(0), Counters{Created: 2}}
	d1 := DayStats{day(1), Counters{Created: 1, Settled: 1, RevenueMsat: 5000}}
	d3 := DayStats{day(3), Counters{Created: 1, Settled: 1, RevenueMsat: 7000}}
	tests := []struct {
		name         string
		since, until time.Time
		want         Stats
	}{
		{"everything", time.Time{}, time.Time{}, Stats{total, total, []DayStats{d0, d1, d3}}},
		{"since mid-day includes that day", day(1).Add(12 * time.Hour), time.Time{},
			Stats{total, Counters{Created: 2, Settled: 2, RevenueMsat: 12000}, []DayStats{d1, d3}}},
		{"until midnight excludes that day", time.Time{}, day(1),
			Stats{total, Counters{Created: 2}, []DayStats{d0}}},
		{"until mid-day includes that day", time.Time{}, day(1).Add(time.Second),
			Stats{total, Counters{Created: 3, Settled: 1, RevenueMsat: 5000}, []DayStats{d0, d1}}},
		{"empty day", day(2), day(3), Stats{Total: total}},
		{"future", day(10), time.Time{}, Stats{Total: total}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Stats(ctx, tt.since, tt.until)
			if err != nil {
				t.Fatal(err)
			}
			assertStats(t, got, tt.want)
		})
	}
}

func TestDayOf(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(86399, 0), 0},
		{time.Unix(86400, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Unix(-86400, 0), -1},
		{time.Unix(-86401, 0), -2},
		{time.Date(2025, 1, 1, 23, 0, 0, 0, time.FixedZone("x", -5*3600)), 20090}, // 04:00 UTC on Jan 2
	}
	for _, tt := range tests {
		if got := dayOf(tt.t); got != tt.want {
			t.Errorf("dayOf(%v) = %d, want %d", tt.t, got, tt.want)
		}
		if d := dayStart(dayOf(tt.t)); d.After(tt.t) || !tt.t.Before(d.Add(24*time.Hour)) {
			t.Errorf("dayStart(dayOf(%v)) = %v", tt.t, d)
		}
	}
}

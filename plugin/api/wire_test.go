package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
)

// TestWireMatchesInternal holds the apiclient types the API answers with
// to the JSON of the internal types they render: a field added to one
// side only shows here. (The consumer's answers need no such check: its
// types are the apiclient types.)
func TestWireMatchesInternal(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	h := Health{Status: "ok", LND: LNDHealth{Up: true, Pubkey: "02"}, Version: "v", Watcher: invoices.WatcherStatus{
		State: invoices.WatcherStreaming, Since: now, Cursor: 7, LastError: "e", Reconnects: 2, LastSettlement: now, LastLag: invoices.Duration(1234567 * time.Microsecond)}}
	for name, pair := range map[string][2]any{
		"health": {h, h.Wire()},
	} {
		a, err := json.Marshal(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("%s: internal\n%s\nwire\n%s", name, a, b)
		}
	}
}

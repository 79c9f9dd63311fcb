package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/storage"
)

// TestWireMatchesInternal holds the apiclient types the API answers with
// to the JSON of the internal types they render: a field added to one
// side only shows here.
func TestWireMatchesInternal(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	pay := &consumer.PaymentInfo{PaymentHash: "ab", State: storage.PaymentSucceeded, AmountSats: 1, AmountMsat: 1001, FeeMsat: 2, Preimage: "cd", AlreadyPaid: true}
	tok := &consumer.TokenInfo{Authorization: "L402 a:b", Macaroon: "a", Preimage: "b", PaymentHash: "c", Origin: "https://x", Scope: "/",
		Service: "s", AmountSats: 3, ExpiresAt: now}
	q := &consumer.Quote{URL: "u", Status: 402, PaymentRequired: true, PriceSats: 1, PriceMsat: 1001, FeeLimitSats: 1, FeeLimitMsat: 5,
		Invoice: "i", PaymentHash: "h", Description: "d", InvoiceExpiresAt: now, Macaroon: "m", Service: "s", Resource: "r",
		TokenExpiresAt: now, Scope: "/", CachedToken: true, AlreadyPaid: true, WouldPay: true,
		Refusal:  &consumer.Refusal{Code: "c", Field: "f", Problem: "p", Fix: "x"},
		Manifest: &consumer.Manifest{Name: "n", Entries: []consumer.ManifestEntry{{Name: "a", Path: "/a", Method: "GET", Description: "d", PriceSats: 1, PriceMsat: 1000}}}}
	h := Health{Status: "ok", LND: LNDHealth{Up: true, Pubkey: "02"}, Version: "v", Watcher: invoices.WatcherStatus{
		State: invoices.WatcherStreaming, Since: now, Cursor: 7, LastError: "e", Reconnects: 2, LastSettlement: now, LastLag: invoices.Duration(1234567 * time.Microsecond)}}
	for name, pair := range map[string][2]any{
		"payment": {pay, WirePayment(pay)},
		"token":   {tok, WireToken(tok)},
		"quote":   {q, WireQuote(q)},
		"health":  {h, h.Wire()},
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

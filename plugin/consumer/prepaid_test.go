package consumer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// creditSeller sells L402 prepaid credit as l402d's gate does: a token
// of credit sats opens a balance at its first use, each request takes
// price, and a short balance is answered 402 with a top-up bound to it.
type creditSeller struct {
	t      testing.TB
	ln     *fakeLN
	keys   *memKeys
	credit int64 // sats
	price  int64 // sats

	mu       sync.Mutex
	balance  map[lntypes.Hash]int64        // balance id → msat
	fund     map[lntypes.Hash]lntypes.Hash // top-up payment hash → balance id
	credited map[lntypes.Hash]bool         // payments credited to a balance
	sold     int
}

func (s *creditSeller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var topUpOf *lntypes.Hash
	if cred, err := l402.CredentialFromHeader(r.Header); err == nil {
		v, err := (&l402.Verifier{Keys: s.keys}).Verify(r.Context(), cred, l402.Expect{Service: "credit", AnyResource: true})
		if err != nil || !v.Prepaid {
			s.t.Errorf("the seller refused a token of its own: %v", err)
			return
		}
		id := v.PaymentHash
		if b, ok := s.fund[id]; ok {
			if !s.credited[id] {
				s.balance[b] += s.credit * 1000
			}
			s.credited[id], id = true, b
		} else if !s.credited[id] {
			s.balance[id], s.credited[id] = s.credit*1000, true
		}
		if s.balance[id] >= s.price*1000 {
			s.balance[id] -= s.price * 1000
			w.Header().Set("L402-Balance-Msat", strconv.FormatInt(s.balance[id], 10))
			_, _ = w.Write([]byte("ok"))
			return
		}
		topUpOf = &id
	}
	pre, h := newPreimage()
	s.ln.register(pre)
	mac, _, err := l402.Mint(r.Context(), s.keys, l402.MintParams{PaymentHash: h, Service: "credit", Resource: "/c/*", AmountSats: s.credit, Prepaid: true})
	if err != nil {
		s.t.Error(err)
		return
	}
	m, _ := l402.EncodeMacaroon(mac)
	inv := invoiceFor(s.t, &chaincfg.RegressionNetParams, h, s.credit*1000, time.Hour)
	prepaid := map[string]any{"creditSats": s.credit, "refundPath": "/.well-known/l402/refund"}
	if topUpOf != nil {
		s.fund[h] = *topUpOf
		prepaid["topUpOf"] = topUpOf.String()
	}
	s.sold++
	l402.SetChallenge(w.Header(), l402.Challenge{Macaroon: m, Invoice: inv}, false)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusPaymentRequired)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": "payment_required", "macaroon": m, "invoice": inv, "amountSats": s.credit, "priceSats": s.price,
		"service": "credit", "prepaid": prepaid})
}

// TestPrepaidCreditOneAtATime: eight accesses at once on a spent credit
// buy one top-up and share it; every credit paid is credited, and the
// consumer holds one record of the balance.
func TestPrepaidCreditOneAtATime(t *testing.T) {
	ln := newFakeLN()
	s := &creditSeller{t: t, ln: ln, keys: &memKeys{m: map[l402.TokenID][l402.RootKeySize]byte{}}, credit: 10, price: 1,
		balance: map[lntypes.Hash]int64{}, fund: map[lntypes.Hash]lntypes.Hash{}, credited: map[lntypes.Hash]bool{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, _ := newTestConsumer(t, sessionLN{ln, t})
	access := func(path string) {
		t.Helper()
		r, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + path, MaxSats: 10})
		if err != nil || r.Status != 200 {
			t.Errorf("access %s: %+v %v", path, r, err)
			return
		}
		r.Body.Close()
	}
	for i := range 10 { // the first credit, spent
		access("/c/" + strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { access("/c/x" + strconv.Itoa(i)) })
	}
	wg.Wait()
	s.mu.Lock()
	paid, credited := ln.totalPays(), len(s.credited)
	s.mu.Unlock()
	if paid != 2 || credited != 2 {
		t.Fatalf("%d credits paid, %d credited; want the first and one top-up, both credited", paid, credited)
	}
	list, err := c.Sessions(t.Context())
	if err != nil || len(list) != 1 || list[0].Kind != "l402" || list[0].DepositedMsat != 20_000 {
		t.Fatalf("held %+v %v; want one prepaid balance of 20 sats", list, err)
	}
}

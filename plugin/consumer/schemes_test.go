package consumer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/l402/x402"
	"github.com/l402d/l402d/storage"
)

// schemeSeller is a server built from the protocol packages that offers
// one fresh invoice per 402 in the schemes set, and accepts a credential
// of any of them: an L402 token (reusable), an MPP charge or an x402
// payment, each single-use.
type schemeSeller struct {
	t      testing.TB
	ln     *fakeLN
	srv    *httptest.Server
	price  int64
	key    *btcec.PrivateKey
	mppKey []byte
	keys   *memKeys

	mu        sync.Mutex
	offer     []string                            // schemes offered
	issued    map[string]x402.PaymentRequirements // x402 requirement by invoice
	used      map[lntypes.Hash]bool               // single-use credentials consumed
	paid      int                                 // requests let through
	seen      []string                            // credential scheme of each request, "" for none
	cut       int                                 // valid credentials whose connection is cut before an answer
	fail      int                                 // valid credentials answered 500 before being spent
	refuse    bool                                // answer valid credentials with a 402 anyway
	payTo     string                              // x402 payTo, "": the invoice's payee
	timeout   int64                               // x402 maxTimeoutSeconds, 0: the invoice's expiry
	fixed     string                              // the invoice of every 402, "": a fresh one each
	fixedHash lntypes.Hash                        // its payment hash
	mppSats   int64                               // MPP amount stated, 0: price
	x402Msat  int64                               // x402 amount stated, 0: price
}

func mustKey(t testing.TB) *btcec.PrivateKey {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSchemeSeller(t testing.TB, ln *fakeLN, price int64, offer ...string) *schemeSeller {
	t.Helper()
	key, _ := btcec.NewPrivateKey()
	s := &schemeSeller{t: t, ln: ln, price: price, key: key, mppKey: []byte("mpp test key, 32 bytes long....."),
		keys: &memKeys{m: map[l402.TokenID][l402.RootKeySize]byte{}}, offer: offer,
		issued: map[string]x402.PaymentRequirements{}, used: map[lntypes.Hash]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

const invoiceExpiry = time.Hour

func (s *schemeSeller) decode(inv, network string) (x402.Invoice, error) {
	d, err := zpay32.Decode(inv, &chaincfg.RegressionNetParams)
	if err != nil {
		return x402.Invoice{}, err
	}
	out := x402.Invoice{Currency: "bcrt", Created: d.Timestamp, Expiry: d.Expiry(), Descriptions: 1, PaymentHash: *d.PaymentHash}
	if d.MilliSat != nil {
		out.AmountMsat = uint64(*d.MilliSat)
	}
	copy(out.Payee[:], d.Destination.SerializeCompressed())
	return out, nil
}

func (s *schemeSeller) serve(w http.ResponseWriter, r *http.Request) {
	scheme, h, err := s.verify(r)
	s.mu.Lock()
	s.seen = append(s.seen, scheme)
	if err == nil && scheme != "" {
		if s.cut > 0 {
			s.cut--
			s.mu.Unlock()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		if s.fail > 0 {
			s.fail--
			s.mu.Unlock()
			http.Error(w, `{"code":"internal","fix":"retry shortly with the same credential"}`, http.StatusInternalServerError)
			return
		}
		if scheme != SchemeL402 && s.used[h] {
			err = errors.New("credential used already")
		}
		if err == nil && s.refuse {
			err = errors.New("refused")
		}
	}
	if err == nil && scheme != "" {
		if scheme != SchemeL402 {
			s.used[h] = true
		}
		s.paid++
		s.mu.Unlock()
		switch scheme {
		case SchemeMPP:
			mpp.SetReceipt(w.Header(), mpp.NewChargeReceipt(h, "id", time.Now()))
		case SchemeX402:
			v, _ := x402.EncodeHeader(x402.NewLightningSettlement(x402.NetworkRegtest, h))
			w.Header().Set(x402.HeaderPaymentResponse, v)
		}
		io.WriteString(w, "content of "+r.URL.Path)
		return
	}
	offer := s.offer
	s.mu.Unlock()
	s.challenge(w.Header(), r.URL.Path, offer)
	w.WriteHeader(http.StatusPaymentRequired)
}

// verify checks the credential a request carries: its scheme ("" for
// none) and payment hash.
func (s *schemeSeller) verify(r *http.Request) (string, lntypes.Hash, error) {
	if v := r.Header.Get(x402.HeaderPaymentSignature); v != "" {
		p, err := x402.DecodePaymentPayload(v)
		if err != nil {
			return SchemeX402, lntypes.Hash{}, err
		}
		e, _ := p.Accepted.LightningExtra()
		s.mu.Lock()
		req, ok := s.issued[e.Invoice]
		s.mu.Unlock()
		if !ok {
			return SchemeX402, lntypes.Hash{}, errors.New("not issued here")
		}
		h, err := x402.CheckLightningSettle(req, p, s.decode, time.Now(), x402.DefaultSkew)
		return SchemeX402, h, err
	}
	if cred, err := mpp.CredentialFromHeader(r.Header); err == nil {
		ch, err := mpp.VerifyCharge(s.mppKey, cred, time.Now())
		return SchemeMPP, ch.PaymentHash, err
	}
	if cred, err := l402.CredentialFromHeader(r.Header); err == nil {
		v := &l402.Verifier{Keys: s.keys}
		got, err := v.Verify(r.Context(), cred, l402.Expect{Resource: r.URL.Path})
		if err != nil {
			return SchemeL402, lntypes.Hash{}, err
		}
		return SchemeL402, got.PaymentHash, nil
	}
	return "", lntypes.Hash{}, nil
}

// challenge sets a 402's offers for path: one invoice, in each scheme of
// offer.
func (s *schemeSeller) challenge(h http.Header, path string, offer []string) {
	s.t.Helper()
	s.mu.Lock()
	mppSats, x402Msat, inv, hash := s.mppSats, s.x402Msat, s.fixed, s.fixedHash
	s.mu.Unlock()
	if inv == "" {
		var pre lntypes.Preimage
		pre, hash = newPreimage()
		s.ln.register(pre)
		inv = s.invoice(hash, s.price*1000)
	}
	if mppSats == 0 {
		mppSats = s.price
	}
	if x402Msat == 0 {
		x402Msat = s.price * 1000
	}
	for _, scheme := range offer {
		switch scheme {
		case SchemeL402:
			m, _, err := l402.Mint(context.Background(), s.keys, l402.MintParams{PaymentHash: hash, Resource: path, AmountSats: s.price})
			if err != nil {
				s.t.Fatal(err)
			}
			mac, _ := l402.EncodeMacaroon(m)
			l402.SetChallenge(h, l402.Challenge{Macaroon: mac, Invoice: inv}, false)
		case SchemeMPP:
			req := mpp.ChargeRequest{Amount: itoa(mppSats), Currency: mpp.CurrencySat,
				MethodDetails: mpp.ChargeMethodDetails{Invoice: inv, PaymentHash: hash.String(), Network: "regtest"}}
			c, err := mpp.NewChargeChallenge(s.mppKey, "test", req, time.Now().Add(invoiceExpiry))
			if err != nil {
				s.t.Fatal(err)
			}
			mpp.SetChallenge(h, c)
		case SchemeX402:
			payTo, timeout := hex.EncodeToString(s.key.PubKey().SerializeCompressed()), int64(invoiceExpiry/time.Second)
			s.mu.Lock()
			if s.payTo != "" {
				payTo = s.payTo
			}
			if s.timeout != 0 {
				timeout = s.timeout
			}
			s.mu.Unlock()
			req := x402.NewLightningRequirements(x402.NetworkRegtest, payTo, inv, uint64(x402Msat), timeout)
			s.mu.Lock()
			s.issued[inv] = req
			s.mu.Unlock()
			v, err := x402.EncodeHeader(x402.PaymentRequired{X402Version: x402.Version, Resource: &x402.ResourceInfo{URL: s.srv.URL + path},
				Accepts: []x402.PaymentRequirements{req}})
			if err != nil {
				s.t.Fatal(err)
			}
			h.Set(x402.HeaderPaymentRequired, v)
		}
	}
}

func (s *schemeSeller) invoice(h lntypes.Hash, msat int64) string {
	inv, err := zpay32.NewInvoice(&chaincfg.RegressionNetParams, h, time.Now(), zpay32.Description("test"),
		zpay32.Expiry(invoiceExpiry), zpay32.Amount(lnwire.MilliSatoshi(msat)))
	if err != nil {
		s.t.Fatal(err)
	}
	enc, err := inv.Encode(zpay32.MessageSigner{SignCompact: func(m []byte) ([]byte, error) { return ecdsa.SignCompact(s.key, chainhash.HashB(m), true), nil }})
	if err != nil {
		s.t.Fatal(err)
	}
	return enc
}

func (s *schemeSeller) stats() (paid int, seen []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paid, append([]string(nil), s.seen...)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (s *schemeSeller) setCut(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = n
}

// headersOf returns the headers of a 402 offering schemes.
func headersOf(t *testing.T, schemes ...string) http.Header {
	t.Helper()
	s := newSchemeSeller(t, newFakeLN(), 7)
	h := http.Header{}
	s.challenge(h, "/x", schemes)
	return h
}

func TestParseOffers(t *testing.T) {
	all := headersOf(t, SchemeL402, SchemeMPP, SchemeX402)
	tests := []struct {
		name string
		h    http.Header
		body string
		want []string
	}{
		{"none", http.Header{}, "", nil},
		{"l402", headersOf(t, SchemeL402), "", []string{SchemeL402}},
		{"mpp", headersOf(t, SchemeMPP), "", []string{SchemeMPP}},
		{"x402", headersOf(t, SchemeX402), "", []string{SchemeX402}},
		{"all three", all, "", []string{SchemeL402, SchemeMPP, SchemeX402}},
		{"l402 from the body", http.Header{}, `{"macaroon":"AgE","invoice":"lnbcrt1"}`, []string{SchemeL402}},
		{"malformed mpp and x402 beside l402", func() http.Header {
			h := headersOf(t, SchemeL402)
			h.Add("WWW-Authenticate", `Payment id="x", realm="r", method="lightning", intent="charge", request="!!"`)
			h.Set(x402.HeaderPaymentRequired, "not base64 json")
			return h
		}(), "", []string{SchemeL402}},
		{"mpp of another method and intent skipped", func() http.Header {
			h := headersOf(t, SchemeX402)
			h.Add("WWW-Authenticate", `Payment id="x", realm="r", method="card", intent="charge", request="e30"`)
			h.Add("WWW-Authenticate", `Payment id="x", realm="r", method="lightning", intent="session", request="e30"`)
			return h
		}(), "", []string{SchemeX402}},
		{"malformed l402 beside mpp", func() http.Header {
			h := headersOf(t, SchemeMPP)
			h.Add("WWW-Authenticate", `L402 macaroon=, invoice=`)
			return h
		}(), "", []string{SchemeMPP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offers, _ := ParseOffers(tt.h, []byte(tt.body))
			var got []string
			for _, o := range offers {
				got = append(got, o.Scheme)
				if o.Invoice == "" {
					t.Errorf("%s offer without an invoice", o.Scheme)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("schemes %v, want %v", got, tt.want)
			}
		})
	}
	// One invoice, three schemes: the claims are the price.
	offers, _ := ParseOffers(all, nil)
	for _, o := range offers[1:] {
		if o.Invoice != offers[0].Invoice || o.ClaimMsat != 7_000 {
			t.Fatalf("%s offer: claim %d, same invoice %v", o.Scheme, o.ClaimMsat, o.Invoice == offers[0].Invoice)
		}
	}
}

func TestChooseOffer(t *testing.T) {
	offers := []Offer{{Scheme: SchemeX402, Invoice: "x1"}, {Scheme: SchemeMPP, Invoice: "m1"}, {Scheme: SchemeX402, Invoice: "x2"}, {Scheme: SchemeL402, Invoice: "l"}}
	tests := []struct {
		name    string
		offers  []Offer
		pref    []string
		want    string
		wantNil bool
	}{
		{"default prefers l402", offers, DefaultSchemePreference(), "l", false},
		{"default without l402 takes mpp", offers[:3], DefaultSchemePreference(), "m1", false},
		{"x402 first takes the server's first", offers, []string{SchemeX402, SchemeL402}, "x1", false},
		{"none preferred", offers[:1], []string{SchemeL402, SchemeMPP}, "", true},
		{"no offers", nil, DefaultSchemePreference(), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := chooseOffer(tt.offers, tt.pref)
			if ok == tt.wantNil || got.Invoice != tt.want {
				t.Fatalf("got %+v %v, want %q", got, ok, tt.want)
			}
		})
	}
}

func TestParseSchemePreference(t *testing.T) {
	tests := []struct {
		in   []string
		want string
		ok   bool
	}{
		{[]string{"l402", "mpp", "x402"}, "l402,mpp,x402", true},
		{[]string{" MPP ", "x402"}, "mpp,x402", true},
		{[]string{"lsat"}, "", false},
		{[]string{"mpp", "mpp"}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		got, err := ParseSchemePreference(tt.in)
		if (err == nil) != tt.ok || strings.Join(got, ",") != tt.want {
			t.Errorf("%q: %v %v", tt.in, got, err)
		}
	}
	ln := newFakeLN()
	if _, err := New(t.Context(), Config{Store: func() *storage.Store { _, st := newTestConsumer(t, ln); return st }(), Backend: ln,
		SchemePreference: []string{"bitcoin"}}); err == nil || !strings.Contains(err.Error(), "schemePreference") {
		t.Fatalf("New with an unknown scheme: %v", err)
	}
}

func TestAccessPaysWithScheme(t *testing.T) {
	all := []string{SchemeL402, SchemeMPP, SchemeX402}
	tests := []struct {
		name   string
		offer  []string
		pref   []string
		scheme string
	}{
		{"mpp only", []string{SchemeMPP}, nil, SchemeMPP},
		{"x402 only", []string{SchemeX402}, nil, SchemeX402},
		{"all three: l402 by default", all, nil, SchemeL402},
		{"mpp and x402: mpp by default", []string{SchemeX402, SchemeMPP}, nil, SchemeMPP},
		{"all three, mpp preferred", all, []string{SchemeMPP, SchemeL402}, SchemeMPP},
		{"all three, only x402", all, []string{SchemeX402}, SchemeX402},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newFakeLN()
			s := newSchemeSeller(t, ln, 9, tt.offer...)
			c, st := newTestConsumer(t, ln, func(cfg *Config) { cfg.SchemePreference = tt.pref })
			ctx := t.Context()
			for i := range 2 {
				r, err := c.Access(ctx, AccessRequest{URL: s.srv.URL + "/api/data"})
				if err != nil {
					t.Fatal(err)
				}
				got := body(t, r)
				if r.Status != 200 || got != "content of /api/data" || r.Token == nil || r.Token.Scheme != tt.scheme {
					t.Fatalf("access %d: %d %q %+v note %q", i, r.Status, got, r.Token, r.Note)
				}
				// A single-use credential is bought for every request; a
				// token is reused.
				if wantPaid := i == 0 || tt.scheme != SchemeL402; r.Paid != wantPaid {
					t.Fatalf("access %d: paid %v", i, r.Paid)
				}
				if r.Paid && (r.Payment.Scheme != tt.scheme || (tt.scheme != SchemeL402) != (r.Payment.Receipt != "")) {
					t.Fatalf("access %d: payment %+v", i, r.Payment)
				}
			}
			wantPays := 2
			if tt.scheme == SchemeL402 {
				wantPays = 1
			}
			if ln.totalPays() != wantPays {
				t.Fatalf("%d payments, want %d", ln.totalPays(), wantPays)
			}
			ps, _, _, err := st.ListPayments(ctx, storage.PaymentFilter{})
			if err != nil || len(ps) != wantPays {
				t.Fatalf("journal: %v %d entries", err, len(ps))
			}
			for _, p := range ps {
				if p.Scheme != tt.scheme || p.State != storage.PaymentSucceeded || (tt.scheme != SchemeL402) != (p.Receipt != "") {
					t.Fatalf("journal entry: scheme %q state %s receipt %q", p.Scheme, p.State, p.Receipt)
				}
			}
			toks, _ := st.ListTokens(ctx)
			for _, tok := range toks {
				if tok.SingleUse() {
					t.Fatalf("a used single-use credential is still kept: %+v", tok)
				}
			}
		})
	}
}

// The retry after paying gets no answer: the paid credential is kept and
// the next access presents it instead of paying again.
func TestSingleUseKeptWhenRetryGetsNoAnswer(t *testing.T) {
	for _, scheme := range []string{SchemeMPP, SchemeX402} {
		t.Run(scheme, func(t *testing.T) {
			ln := newFakeLN()
			s := newSchemeSeller(t, ln, 9, scheme)
			// Every try is cut: net/http retries a GET whose reused
			// connection broke.
			s.cut = 100
			c, st := newTestConsumer(t, ln)
			ctx := t.Context()
			r, err := c.Access(ctx, AccessRequest{URL: s.srv.URL + "/a"})
			if !errors.Is(err, ErrUpstream) || r == nil || !r.Paid || r.Token == nil || !r.Token.SingleUse {
				t.Fatalf("first access: %v %+v", err, r)
			}
			toks, _ := st.TokensForOrigin(ctx, s.srv.URL)
			if len(toks) != 1 || !toks[0].SingleUse() {
				t.Fatalf("the paid credential is not kept: %+v", toks)
			}
			s.setCut(0)
			r, err = c.Access(ctx, AccessRequest{URL: s.srv.URL + "/a"})
			if err != nil {
				t.Fatal(err)
			}
			if got := body(t, r); r.Status != 200 || got != "content of /a" || r.Paid || ln.totalPays() != 1 {
				t.Fatalf("second access: %d %q paid %v, %d payments", r.Status, got, r.Paid, ln.totalPays())
			}
			if r.Payment == nil || r.Payment.Receipt == "" || !r.Payment.AlreadyPaid {
				t.Fatalf("payment %+v", r.Payment)
			}
			if toks, _ := st.TokensForOrigin(ctx, s.srv.URL); len(toks) != 0 {
				t.Fatalf("the used credential is still kept: %+v", toks)
			}
			if paid, seen := s.stats(); paid != 1 || seen[0] != "" || seen[len(seen)-1] != scheme {
				t.Fatalf("seller let %d through, saw %q", paid, seen)
			}
		})
	}
}

// The process dies with the payment in flight: once LND settles it, the
// resumer keeps the credential and the next access presents it.
func TestSingleUseKeptAcrossCrash(t *testing.T) {
	ln := newFakeLN()
	s := newSchemeSeller(t, ln, 9, SchemeMPP)
	var hash lntypes.Hash
	ln.onPay = func(_ context.Context, h lntypes.Hash) (invoices.Payment, error, bool) {
		hash = h
		return invoices.Payment{}, errors.New("connection to LND lost"), true
	}
	ln.onTrack = func(context.Context, lntypes.Hash) (invoices.Payment, error, bool) {
		return invoices.Payment{}, errors.New("connection to LND lost"), true
	}
	c, st := newTestConsumer(t, ln)
	ctx := t.Context()
	if _, err := c.Access(ctx, AccessRequest{URL: s.srv.URL + "/a"}); !errors.Is(err, ErrPaymentInFlight) {
		t.Fatalf("access: %v", err)
	}
	// LND settles it meanwhile; a new process resumes the journal.
	ln.mu.Lock()
	pre := ln.preimages[hash]
	ln.onPay, ln.onTrack = nil, nil
	ln.mu.Unlock()
	ln.setPayment(invoices.Payment{PaymentHash: hash, State: invoices.PaymentSucceeded, Preimage: pre, AmountMsat: 9_000})
	c2, err := New(ctx, Config{Store: st, Backend: ln, AllowPrivate: true, ResumeInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c2.Run(rctx); close(done) }()
	waitUntil(t, "the resumed payment's credential to be kept", func() error {
		if toks, _ := st.TokensForOrigin(ctx, s.srv.URL); len(toks) != 1 || !toks[0].SingleUse() {
			return fmt.Errorf("token cache %+v", toks)
		}
		return nil
	})
	cancel()
	<-done
	r, err := c2.Access(ctx, AccessRequest{URL: s.srv.URL + "/a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, r); r.Status != 200 || got != "content of /a" || r.Paid || ln.payCount(hash) != 1 || ln.totalPays() != 1 {
		t.Fatalf("access after the crash: %d %q paid %v, %d payments", r.Status, got, r.Paid, ln.totalPays())
	}
}

// The seller answers 500 without a receipt (its store failed before the
// credential was spent): the credential is kept, and the next access
// spends it without paying again.
func TestSingleUseKeptOnServerError(t *testing.T) {
	for _, scheme := range []string{SchemeMPP, SchemeX402} {
		t.Run(scheme, func(t *testing.T) {
			ln := newFakeLN()
			s := newSchemeSeller(t, ln, 9, scheme)
			s.fail = 1
			c, st := newTestConsumer(t, ln)
			ctx := t.Context()
			r, err := c.Access(ctx, AccessRequest{URL: s.srv.URL + "/a"})
			if err != nil {
				t.Fatal(err)
			}
			body(t, r)
			if r.Status != http.StatusInternalServerError || !r.Paid {
				t.Fatalf("first access: %d paid %v", r.Status, r.Paid)
			}
			if toks, _ := st.TokensForOrigin(ctx, s.srv.URL); len(toks) != 1 || !toks[0].SingleUse() {
				t.Fatalf("the unspent credential was dropped: %+v", toks)
			}
			r, err = c.Access(ctx, AccessRequest{URL: s.srv.URL + "/a"})
			if err != nil {
				t.Fatal(err)
			}
			if got := body(t, r); r.Status != 200 || got != "content of /a" || r.Paid || ln.totalPays() != 1 {
				t.Fatalf("second access: %d %q paid %v, %d payments", r.Status, got, r.Paid, ln.totalPays())
			}
			if toks, _ := st.TokensForOrigin(ctx, s.srv.URL); len(toks) != 0 {
				t.Fatalf("the spent credential is still kept: %+v", toks)
			}
		})
	}
}

// A refused single-use credential is dropped, and the 402 is returned
// with a note rather than paid again in a loop.
func TestSingleUseRefusedIsDropped(t *testing.T) {
	ln := newFakeLN()
	s := newSchemeSeller(t, ln, 9, SchemeX402)
	s.refuse = true
	c, st := newTestConsumer(t, ln)
	r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/a"})
	if err != nil {
		t.Fatal(err)
	}
	body(t, r)
	if r.Status != http.StatusPaymentRequired || !r.Paid || !strings.Contains(r.Note, "refused") || ln.totalPays() != 1 {
		t.Fatalf("%d paid %v note %q, %d payments", r.Status, r.Paid, r.Note, ln.totalPays())
	}
	if toks, _ := st.TokensForOrigin(t.Context(), s.srv.URL); len(toks) != 0 {
		t.Fatalf("the refused credential is kept: %+v", toks)
	}
}

// A paid single-use credential goes only to the origin it was bought
// from, and only for its resource.
func TestSingleUseStaysWithItsOrigin(t *testing.T) {
	ln := newFakeLN()
	a := newSchemeSeller(t, ln, 9, SchemeMPP)
	a.cut = 100
	b := newSchemeSeller(t, ln, 9, SchemeMPP)
	c, st := newTestConsumer(t, ln)
	ctx := t.Context()
	if _, err := c.Access(ctx, AccessRequest{URL: a.srv.URL + "/a"}); !errors.Is(err, ErrUpstream) {
		t.Fatalf("access: %v", err)
	}
	a.setCut(0)
	for _, u := range []string{b.srv.URL + "/a", a.srv.URL + "/other"} {
		r, err := c.Access(ctx, AccessRequest{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		body(t, r)
	}
	if _, seen := b.stats(); seen[0] != "" {
		t.Fatalf("another origin was sent a credential first: %q", seen)
	}
	if _, seen := a.stats(); seen[len(seen)-2] != "" {
		t.Fatalf("another resource was sent the credential first: %q", seen)
	}
	toks, _ := st.TokensForOrigin(ctx, a.srv.URL)
	if len(toks) != 1 || toks[0].Scope != onceScope("/a") {
		t.Fatalf("the credential for /a: %+v", toks)
	}
	// do refuses outright to send a credential to another origin.
	pr, _ := prepare(AccessRequest{URL: b.srv.URL + "/a"})
	if _, err := c.do(ctx, pr, &toks[0]); err == nil {
		t.Fatal("a credential went to another origin")
	}
}

// An offer whose invoice asks another amount than the offer states, or
// that the service would refuse as proof once paid, is refused before
// anything is paid.
func TestSingleUseOfferMismatch(t *testing.T) {
	other := hex.EncodeToString(mustKey(t).PubKey().SerializeCompressed())
	tests := []struct {
		name   string
		scheme string
		edit   func(*schemeSeller)
		code   string
		field  string
	}{
		{"mpp states less", SchemeMPP, func(s *schemeSeller) { s.mppSats = 8 }, "price_mismatch", "request.amount"},
		{"mpp states more", SchemeMPP, func(s *schemeSeller) { s.mppSats = 10 }, "price_mismatch", "request.amount"},
		{"x402 states less", SchemeX402, func(s *schemeSeller) { s.x402Msat = 8_999 }, "price_mismatch", "accepts.amount"},
		{"x402 payTo another node", SchemeX402, func(s *schemeSeller) { s.payTo = other }, "offer_mismatch", "accepts.payTo"},
		{"x402 timeout not the expiry", SchemeX402, func(s *schemeSeller) { s.timeout = 60 }, "offer_mismatch", "accepts.maxTimeoutSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newFakeLN()
			s := newSchemeSeller(t, ln, 9, tt.scheme)
			tt.edit(s)
			c, _ := newTestConsumer(t, ln)
			_, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/a"})
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Code != tt.code || pe.Field != tt.field || ln.totalPays() != 0 {
				t.Fatalf("%v (%+v), %d payments", err, pe, ln.totalPays())
			}
		})
	}
}

func TestQuoteSingleUse(t *testing.T) {
	ln := newFakeLN()
	s := newSchemeSeller(t, ln, 9, SchemeX402)
	c, _ := newTestConsumer(t, ln)
	q, err := c.Quote(t.Context(), AccessRequest{URL: s.srv.URL + "/a"})
	if err != nil || !q.WouldPay || q.Scheme != SchemeX402 || q.PriceSats != 9 || ln.totalPays() != 0 {
		t.Fatalf("%v %+v", err, q)
	}
}

// One invoice offered in two schemes is paid once, whichever scheme
// presents it.
func TestSameInvoiceTwoSchemesPaidOnce(t *testing.T) {
	ln := newFakeLN()
	s := newSchemeSeller(t, ln, 9, SchemeL402, SchemeMPP)
	pre, h := newPreimage()
	ln.register(pre)
	s.fixed, s.fixedHash = s.invoice(h, 9_000), h
	c, st := newTestConsumer(t, ln)
	ctx := t.Context()
	r, err := c.Access(ctx, AccessRequest{URL: s.srv.URL + "/a"})
	if err != nil || r.Token == nil || r.Token.Scheme != SchemeL402 || !r.Paid {
		t.Fatalf("l402 access: %v %+v", err, r)
	}
	body(t, r)
	c2, err := New(ctx, Config{Store: st, Backend: ln, AllowPrivate: true, SchemePreference: []string{SchemeMPP}})
	if err != nil {
		t.Fatal(err)
	}
	r, err = c2.Access(ctx, AccessRequest{URL: s.srv.URL + "/b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, r); r.Status != 200 || got != "content of /b" || r.Paid || !r.Payment.AlreadyPaid || r.Token.Scheme != SchemeMPP || ln.totalPays() != 1 {
		t.Fatalf("mpp access of the same invoice: %d %q paid %v %+v, %d payments", r.Status, got, r.Paid, r.Payment, ln.totalPays())
	}
}

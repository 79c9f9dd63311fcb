package consumer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/storage"
)

// invoiceFor returns a real signed regtest (or params) invoice for hash.
func invoiceFor(t testing.TB, params *chaincfg.Params, h lntypes.Hash, msat int64, expiry time.Duration) string {
	t.Helper()
	key, _ := btcec.NewPrivateKey()
	opts := []func(*zpay32.Invoice){zpay32.Description("test"), zpay32.Expiry(expiry)}
	if msat > 0 {
		opts = append(opts, zpay32.Amount(lnwire.MilliSatoshi(msat)))
	}
	inv, err := zpay32.NewInvoice(params, h, time.Now(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := inv.Encode(zpay32.MessageSigner{SignCompact: func(m []byte) ([]byte, error) { return ecdsa.SignCompact(key, m, true), nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newPreimage() (lntypes.Preimage, lntypes.Hash) {
	var p lntypes.Preimage
	rand.Read(p[:])
	return p, lntypes.Hash(sha256.Sum256(p[:]))
}

// fakeLN is a Lightning backend for the journal's state machine: it pays
// an invoice by looking up the preimage the test registered for its
// hash, and keeps LND's rule of one payment per hash. Hooks replace Pay
// and Track to script crashes and timeouts.
type fakeLN struct {
	mu        sync.Mutex
	preimages map[lntypes.Hash]lntypes.Preimage
	payments  map[lntypes.Hash]invoices.Payment
	pays      map[lntypes.Hash]int
	feeMsat   int64
	onPay     func(ctx context.Context, h lntypes.Hash) (invoices.Payment, error, bool)
	onTrack   func(ctx context.Context, h lntypes.Hash) (invoices.Payment, error, bool)
}

func newFakeLN() *fakeLN {
	return &fakeLN{preimages: map[lntypes.Hash]lntypes.Preimage{}, payments: map[lntypes.Hash]invoices.Payment{}, pays: map[lntypes.Hash]int{}, feeMsat: 1_000}
}

func (f *fakeLN) register(p lntypes.Preimage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.preimages[lntypes.Hash(sha256.Sum256(p[:]))] = p
}

func (f *fakeLN) payCount(h lntypes.Hash) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pays[h]
}

func (f *fakeLN) totalPays() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.pays {
		n += c
	}
	return n
}

func (f *fakeLN) Pay(ctx context.Context, req invoices.PayRequest) (invoices.Payment, error) {
	d, err := f.DecodeInvoice(ctx, req.Invoice)
	if err != nil {
		return invoices.Payment{}, err
	}
	h := d.PaymentHash
	f.mu.Lock()
	if p, ok := f.payments[h]; ok && p.State != invoices.PaymentFailed {
		f.mu.Unlock()
		return invoices.Payment{}, fmt.Errorf("send payment: %w", invoices.ErrAlreadyPaid)
	}
	f.pays[h]++
	hook := f.onPay
	f.mu.Unlock()
	if hook != nil {
		if p, err, ok := hook(ctx, h); ok {
			return p, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := invoices.Payment{PaymentHash: h, AmountMsat: d.AmountMsat}
	if pre, ok := f.preimages[h]; ok {
		p.State, p.Preimage, p.FeeMsat = invoices.PaymentSucceeded, pre, min(f.feeMsat, req.MaxFeeMsat)
	} else {
		p.State, p.FailureReason = invoices.PaymentFailed, "no_route"
	}
	f.payments[h] = p
	return p, nil
}

// settle records a payment as LND would after a crash of the payer.
func (f *fakeLN) setPayment(p invoices.Payment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payments[p.PaymentHash] = p
}

func (f *fakeLN) Track(ctx context.Context, h lntypes.Hash) (invoices.Payment, error) {
	f.mu.Lock()
	hook := f.onTrack
	f.mu.Unlock()
	if hook != nil {
		if p, err, ok := hook(ctx, h); ok {
			return p, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[h]
	if !ok {
		return invoices.Payment{}, fmt.Errorf("track payment: %w", invoices.ErrNotFound)
	}
	if p.State == invoices.PaymentInFlight {
		return p, fmt.Errorf("track payment: %w", context.DeadlineExceeded)
	}
	return p, nil
}

func (f *fakeLN) DecodeInvoice(_ context.Context, inv string) (invoices.DecodedInvoice, error) {
	return invoices.DecodeInvoice(inv, "regtest")
}

func (f *fakeLN) AddInvoice(context.Context, invoices.AddInvoiceRequest) (invoices.Invoice, error) {
	return invoices.Invoice{}, invoices.ErrUnavailable
}

func (f *fakeLN) LookupInvoice(context.Context, lntypes.Hash) (invoices.InvoiceStatus, error) {
	return invoices.InvoiceStatus{}, invoices.ErrNotFound
}

func (f *fakeLN) SubscribeSettlements(context.Context, uint64) (<-chan invoices.Settlement, <-chan error, error) {
	return nil, nil, invoices.ErrUnavailable
}

func (f *fakeLN) NodeInfo(context.Context) (invoices.NodeInfo, error) {
	return invoices.NodeInfo{}, invoices.ErrUnavailable
}

func (f *fakeLN) Balance(context.Context) (invoices.Balance, error) {
	return invoices.Balance{}, invoices.ErrUnavailable
}

// memKeys is an in-memory root key store for the test seller.
type memKeys struct {
	mu sync.Mutex
	m  map[l402.TokenID][l402.RootKeySize]byte
}

func (k *memKeys) NewRootKey(_ context.Context, id l402.TokenID) ([l402.RootKeySize]byte, error) {
	var key [l402.RootKeySize]byte
	rand.Read(key[:])
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[id] = key
	return key, nil
}

func (k *memKeys) RootKey(_ context.Context, id l402.TokenID) ([l402.RootKeySize]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.m[id]
	if !ok {
		return key, l402.ErrUnknownToken
	}
	return key, nil
}

func (k *memKeys) forget() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m = map[l402.TokenID][l402.RootKeySize]byte{}
}

// seller is a small L402 server: every path costs price sats; a valid
// credential for the path gets its content.
type seller struct {
	t     testing.TB
	ln    *fakeLN
	keys  *memKeys
	srv   *httptest.Server
	price int64

	mu         sync.Mutex
	challenges int
	// Knobs.
	advertise    int64 // price stated in the 402 body; 0: the real one
	failAfterPay int   // status answered to a valid credential, 0: 200
	service      string
	prefix       bool // resource caveat is path + "*"
	// rules, when set, price path prefixes separately as the gate does: a
	// token is bound to the most specific rule covering its path and only
	// opens paths priced by that rule; a token of another rule is refused
	// with reason wrong_resource.
	rules   []string
	invoice func(h lntypes.Hash, msat int64) string
	// mintParams, when set, edits each token before it is minted (a
	// seller's choice of caveats).
	mintParams func(*l402.MintParams)
	// paidHandler, when set, answers a valid credential instead.
	paidHandler http.HandlerFunc
}

func newSeller(t testing.TB, ln *fakeLN, price int64) *seller {
	t.Helper()
	s := &seller{t: t, ln: ln, keys: &memKeys{m: map[l402.TokenID][l402.RootKeySize]byte{}}, price: price}
	s.invoice = func(h lntypes.Hash, msat int64) string {
		return invoiceFor(t, &chaincfg.RegressionNetParams, h, msat, time.Hour)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *seller) serve(w http.ResponseWriter, r *http.Request) {
	v := &l402.Verifier{Keys: s.keys}
	var reason string
	if cred, err := l402.CredentialFromHeader(r.Header); err == nil {
		want := l402.Expect{Resource: r.URL.Path, Service: s.service}
		got, err := v.Verify(r.Context(), cred, want)
		if err == nil && s.rules != nil && got.Resource != s.ruleFor(r.URL.Path) {
			err, reason = errors.New("bought for another pricing rule"), "wrong_resource"
		} else if err != nil {
			reason = "rejected"
		}
		if err == nil {
			s.mu.Lock()
			status := s.failAfterPay
			s.mu.Unlock()
			if status != 0 {
				http.Error(w, "upstream broke", status)
				return
			}
			if s.paidHandler != nil {
				s.paidHandler(w, r)
				return
			}
			io.WriteString(w, "content of "+r.URL.Path)
			return
		}
	}
	s.mu.Lock()
	s.challenges++
	adv := s.advertise
	s.mu.Unlock()
	m, inv, _ := s.mint(r.Context(), r.URL.Path)
	l402.SetChallenge(w.Header(), l402.Challenge{Macaroon: m, Invoice: inv}, false)
	if adv == 0 {
		adv = s.price
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusPaymentRequired)
	json.NewEncoder(w).Encode(map[string]any{"macaroon": m, "invoice": inv, "amountSats": adv, "reason": reason})
}

// ruleFor is the most specific of s.rules covering path.
func (s *seller) ruleFor(path string) string {
	best := ""
	for _, r := range s.rules {
		if strings.HasPrefix(path, strings.TrimSuffix(r, "*")) && len(r) > len(best) {
			best = r
		}
	}
	return best
}

// mint makes a challenge for path whose preimage the fake LN knows.
func (s *seller) mint(ctx context.Context, path string) (mac, invoice string, h lntypes.Hash) {
	s.t.Helper()
	pre, h := newPreimage()
	s.ln.register(pre)
	res := path
	if s.prefix {
		res += "*"
	}
	if s.rules != nil {
		res = s.ruleFor(path)
	}
	mp := l402.MintParams{PaymentHash: h, Resource: res, AmountSats: s.price, Service: s.service}
	if s.mintParams != nil {
		s.mintParams(&mp)
	}
	m, _, err := l402.Mint(ctx, s.keys, mp)
	if err != nil {
		s.t.Fatal(err)
	}
	mac, _ = l402.EncodeMacaroon(m)
	return mac, s.invoice(h, s.price*1000), h
}

func (s *seller) challengeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.challenges
}

// newTestConsumer opens an in-memory store and a consumer over ln that
// may fetch loopback targets.
func newTestConsumer(t testing.TB, ln invoices.Backend, edit ...func(*Config)) (*Consumer, *storage.Store) {
	t.Helper()
	st, err := storage.Open(t.Context(), storage.Options{InMemory: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Store: st, Backend: ln, AllowPrivate: true, ResumeInterval: 20 * time.Millisecond, PaymentTimeout: 5 * time.Second}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

// body reads and closes a response body.
func body(t testing.TB, r *Response) string {
	t.Helper()
	if r.Body == nil {
		return ""
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var regtest = &chaincfg.RegressionNetParams

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

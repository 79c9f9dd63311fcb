package mcp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// fakeLN is one regtest node that both sells and buys: invoices it makes
// are paid by looking up their preimage. It counts payments, so tests can
// check that refusals moved no money.
type fakeLN struct {
	key *btcec.PrivateKey

	mu        sync.Mutex
	preimages map[lntypes.Hash]lntypes.Preimage
	status    map[lntypes.Hash]*invoices.InvoiceStatus
	payments  map[lntypes.Hash]invoices.Payment
	pays      int
}

func newFakeLN() *fakeLN {
	k, _ := btcec.NewPrivateKey()
	return &fakeLN{key: k, preimages: map[lntypes.Hash]lntypes.Preimage{}, status: map[lntypes.Hash]*invoices.InvoiceStatus{},
		payments: map[lntypes.Hash]invoices.Payment{}}
}

// invoice makes a signed regtest invoice for h; msat 0 makes it amountless.
func (f *fakeLN) invoice(h lntypes.Hash, msat int64, memo string, expiry time.Duration) string {
	opts := []func(*zpay32.Invoice){zpay32.Description(memo), zpay32.Expiry(expiry)}
	if msat > 0 {
		opts = append(opts, zpay32.Amount(lnwire.MilliSatoshi(msat)))
	}
	inv, err := zpay32.NewInvoice(&chaincfg.RegressionNetParams, h, time.Now(), opts...)
	if err != nil {
		panic(err)
	}
	s, err := inv.Encode(zpay32.MessageSigner{SignCompact: func(m []byte) ([]byte, error) { return ecdsa.SignCompact(f.key, m, true), nil }})
	if err != nil {
		panic(err)
	}
	return s
}

func (f *fakeLN) payCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pays
}

func (f *fakeLN) AddInvoice(_ context.Context, req invoices.AddInvoiceRequest) (invoices.Invoice, error) {
	var pre lntypes.Preimage
	rand.Read(pre[:])
	h := lntypes.Hash(sha256.Sum256(pre[:]))
	inv := f.invoice(h, req.AmountSats*1000, req.Memo, req.Expiry)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.preimages[h] = pre
	f.status[h] = &invoices.InvoiceStatus{PaymentHash: h, PaymentRequest: inv, Memo: req.Memo, State: invoices.InvoiceOpen,
		AmountMsat: req.AmountSats * 1000, CreatedAt: time.Now()}
	return invoices.Invoice{PaymentHash: h, PaymentRequest: inv, ExpiresAt: time.Now().Add(req.Expiry)}, nil
}

func (f *fakeLN) LookupInvoice(_ context.Context, h lntypes.Hash) (invoices.InvoiceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.status[h]
	if !ok {
		return invoices.InvoiceStatus{}, fmt.Errorf("lookup: %w", invoices.ErrNotFound)
	}
	return *st, nil
}

func (f *fakeLN) SubscribeSettlements(ctx context.Context, _ uint64) (<-chan invoices.Settlement, <-chan error, error) {
	errc := make(chan error, 1)
	go func() { <-ctx.Done(); errc <- ctx.Err() }()
	return make(chan invoices.Settlement), errc, nil
}

func (f *fakeLN) Pay(ctx context.Context, req invoices.PayRequest) (invoices.Payment, error) {
	d, err := f.DecodeInvoice(ctx, req.Invoice)
	if err != nil {
		return invoices.Payment{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pays++
	p := invoices.Payment{PaymentHash: d.PaymentHash, AmountMsat: d.AmountMsat}
	pre, ok := f.preimages[d.PaymentHash]
	if !ok {
		p.State, p.FailureReason = invoices.PaymentFailed, "no_route"
	} else {
		p.State, p.Preimage, p.FeeMsat = invoices.PaymentSucceeded, pre, 1000
		if st := f.status[d.PaymentHash]; st != nil {
			st.State, st.AmountPaidMsat, st.SettledAt = invoices.InvoiceSettled, d.AmountMsat, time.Now()
		}
	}
	f.payments[d.PaymentHash] = p
	return p, nil
}

func (f *fakeLN) Track(_ context.Context, h lntypes.Hash) (invoices.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[h]
	if !ok {
		return invoices.Payment{}, invoices.ErrNotFound
	}
	return p, nil
}

func (f *fakeLN) DecodeInvoice(_ context.Context, inv string) (invoices.DecodedInvoice, error) {
	return invoices.DecodeInvoice(inv, "regtest")
}

func (f *fakeLN) NodeInfo(context.Context) (invoices.NodeInfo, error) {
	return invoices.NodeInfo{Pubkey: fmt.Sprintf("%x", f.key.PubKey().SerializeCompressed()), Alias: "fake", Network: "regtest", SyncedToChain: true}, nil
}

func (f *fakeLN) Balance(context.Context) (invoices.Balance, error) {
	return invoices.Balance{ChannelLocalMsat: 1_000_000_000, ChannelRemoteMsat: 500_000_000, OnchainConfirmed: 100_000}, nil
}

// env is one node's producer, consumer and MCP server over a fake LND.
type env struct {
	t    testing.TB
	ln   *fakeLN
	prod *producer.Producer
	cons *consumer.Consumer
	srv  *Server
}

func newEnv(t testing.TB, threshold int64) *env {
	t.Helper()
	ctx := t.Context()
	st, err := storage.Open(ctx, storage.Options{InMemory: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ln: newFakeLN()}
	if e.prod, err = producer.New(producer.Config{Store: st, Backend: e.ln}); err != nil {
		t.Fatal(err)
	}
	if err := e.prod.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if e.cons, err = consumer.New(ctx, consumer.Config{Store: st, Backend: e.ln, AllowPrivate: true}); err != nil {
		t.Fatal(err)
	}
	if e.srv, err = New(Config{Producer: e.prod, Consumer: e.cons, ApprovalThresholdSats: threshold, MaxPriceSats: 100_000}); err != nil {
		t.Fatal(err)
	}
	return e
}

// clientOpts say how a test client connects.
type clientOpts struct {
	// legacy connects with protocol 2025-11-25 (server-to-client
	// elicitation) instead of the latest (input requests).
	legacy bool
	// elicit answers elicitation; nil declares no elicitation support.
	elicit func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error)
}

func (o clientOpts) client() *sdk.Client {
	return sdk.NewClient(&sdk.Implementation{Name: "test-agent", Version: "1"}, &sdk.ClientOptions{ElicitationHandler: o.elicit})
}

func (o clientOpts) session() *sdk.ClientSessionOptions {
	if o.legacy {
		return &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"}
	}
	return nil
}

// connect connects a client to srv in memory.
func connect(t testing.TB, srv *sdk.Server, o clientOpts) *sdk.ClientSession {
	t.Helper()
	ct, st := sdk.NewInMemoryTransports()
	ss, err := srv.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := o.client().Connect(t.Context(), ct, o.session())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	if want := map[bool]string{true: "2025-11-25", false: statelessProtocol}[o.legacy]; cs.InitializeResult().ProtocolVersion != want {
		t.Fatalf("protocol %s, want %s", cs.InitializeResult().ProtocolVersion, want)
	}
	return cs
}

// call calls a tool and decodes its JSON result; isError says whether it
// was a tool error.
func call(t testing.TB, cs *sdk.ClientSession, name string, args any) (out map[string]any, isError bool) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d contents, want 1 JSON text", name, len(res.Content))
	}
	tc, ok := res.Content[0].(*sdk.TextContent)
	if !ok {
		t.Fatalf("%s: content is %T", name, res.Content[0])
	}
	if err := json.Unmarshal([]byte(tc.Text), &out); err != nil {
		t.Fatalf("%s: text is not JSON: %v\n%s", name, err, tc.Text)
	}
	sc, _ := json.Marshal(res.StructuredContent)
	var structured map[string]any
	if err := json.Unmarshal(sc, &structured); err != nil || fmt.Sprint(structured) != fmt.Sprint(out) {
		t.Fatalf("%s: structured content %s differs from the text %s", name, sc, tc.Text)
	}
	return out, res.IsError
}

// seller is an L402 HTTP service selling every path for price sats with
// challenges from the env's producer.
func (e *env) seller(price int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cred, err := l402.CredentialFromHeader(r.Header); err == nil {
			if _, err := e.prod.Verify(r.Context(), cred, l402.Expect{Resource: r.URL.Path}); err == nil {
				io.WriteString(w, "paid content of "+r.URL.Path)
				return
			}
		}
		ch, err := e.prod.Issue(r.Context(), producer.Offer{Resource: r.URL.Path, PriceSats: price, Description: "test " + r.URL.Path})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		l402.SetChallenge(w.Header(), l402.Challenge{Macaroon: ch.Macaroon, Invoice: ch.Invoice}, false)
		w.WriteHeader(http.StatusPaymentRequired)
	}))
	e.t.Cleanup(srv.Close)
	return srv
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) int64 { f, _ := v.(float64); return int64(f) }

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

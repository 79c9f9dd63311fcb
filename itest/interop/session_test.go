package interop

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightninglabs/aperture/auth"
	apmpp "github.com/lightninglabs/aperture/mpp"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/l402d/l402d/l402/mpp"
)

// memSessions is Aperture's SessionStore in memory, for its session
// authenticator in these wire-format tests.
type memSessions struct {
	mu sync.Mutex
	m  map[string]*auth.Session
}

func (s *memSessions) CreateSession(_ context.Context, ss *auth.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[ss.SessionID]; ok {
		return errors.New("exists")
	}
	c := *ss
	s.m[ss.SessionID] = &c
	return nil
}

func (s *memSessions) GetSession(_ context.Context, id string) (*auth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[id]
	if !ok {
		return nil, errors.New("not found")
	}
	c := *ss
	return &c, nil
}

func (s *memSessions) UpdateSessionBalance(_ context.Context, id string, add int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id].DepositSats += add
	return nil
}

func (s *memSessions) DeductSessionBalance(_ context.Context, id string, amt int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss.DepositSats-ss.SpentSats < amt {
		return errors.New("insufficient")
	}
	ss.SpentSats += amt
	return nil
}

func (s *memSessions) CloseSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id].Status = "closed"
	return nil
}

func (s *memSessions) CloseSessionAndGetBalance(_ context.Context, id string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	ss.Status = "closed"
	return ss.DepositSats - ss.SpentSats, nil
}

// refunds records Aperture's refund payments.
type refunds chan [2]any

func (r refunds) SendPayment(_ context.Context, invoice string, sats int64) (string, error) {
	r <- [2]any{invoice, sats}
	return "00", nil
}

// returnInvoice is a signed, amountless regtest invoice.
func returnInvoice(t *testing.T) string {
	t.Helper()
	priv, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	var hash [32]byte
	_, _ = rand.Read(hash[:])
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	inv, err := zpay32.NewInvoice(&chaincfg.RegressionNetParams, hash, time.Now(), zpay32.Description("refund"),
		zpay32.Expiry(time.Hour), zpay32.PaymentAddr(secret))
	if err != nil {
		t.Fatal(err)
	}
	s, err := inv.Encode(zpay32.MessageSigner{SignCompact: func(msg []byte) ([]byte, error) {
		return ecdsa.SignCompact(priv, msg, true), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authHeader(v string) *http.Header {
	h := http.Header{}
	h.Set("Authorization", v)
	return &h
}

// TestMPPSessionApertureServer: Aperture's session authenticator sells a
// session; l402/mpp reads its challenges and writes the open, bearer,
// topUp and close credentials, which Aperture accepts; Aperture's close
// receipt reads with ours.
func TestMPPSessionApertureServer(t *testing.T) {
	key := mppKey(t)
	ch := &challenger{preimages: map[lntypes.Hash]lntypes.Preimage{}}
	st := &memSessions{m: map[string]*auth.Session{}}
	paid := make(refunds, 1)
	a := auth.NewMPPSessionAuthenticator(&auth.MPPSessionConfig{
		Challenger: ch, Checker: allPaid{}, SessionStore: st, PaymentSender: paid,
		Realm: "aperture.test", HMACSecret: key, Network: "regtest", DepositMultiplier: 20,
	})
	fresh := func() (mpp.Challenge, mpp.SessionRequest, lntypes.Preimage) {
		t.Helper()
		h, err := a.FreshChallengeHeader("svc", 3)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := mpp.ParseChallengesHeader(h)
		if err != nil || len(cs) != 1 || cs[0].Intent != mpp.IntentSession {
			t.Fatalf("%+v %v", cs, err)
		}
		req, err := cs[0].SessionRequest()
		if err != nil {
			t.Fatal(err)
		}
		hash, _ := lntypes.MakeHashFromStr(req.PaymentHash)
		return cs[0], req, ch.preimages[hash]
	}
	c, req, pre := fresh()
	if req.Amount != "3" || req.DepositSats() != 60 || req.DepositInvoice == "" || !mpp.VerifyChallengeID(key, c) {
		t.Fatalf("aperture's session challenge %+v %+v", c, req)
	}
	id := pre.Hash().String()
	cred := func(c mpp.Challenge, p mpp.SessionPayload) *http.Header {
		v, err := mpp.NewSessionCredential(c, p)
		if err != nil {
			t.Fatal(err)
		}
		return authHeader(v)
	}
	if !a.Accept(cred(c, mpp.SessionPayload{Action: mpp.ActionOpen, Preimage: pre.String(), ReturnInvoice: returnInvoice(t)}), "svc") {
		t.Fatal("aperture refuses our open")
	}
	for range 3 {
		if !a.Accept(cred(c, mpp.SessionPayload{Action: mpp.ActionBearer, Preimage: pre.String(), SessionID: id}), "svc") {
			t.Fatal("aperture refuses our bearer")
		}
	}
	tc, _, tpre := fresh()
	if !a.Accept(cred(tc, mpp.SessionPayload{Action: mpp.ActionTopUp, SessionID: id, TopUpPreimage: tpre.String()}), "svc") {
		t.Fatal("aperture refuses our topUp")
	}
	closeCred := cred(c, mpp.SessionPayload{Action: mpp.ActionClose, Preimage: pre.String(), SessionID: id})
	if !a.Accept(closeCred, "svc") {
		t.Fatal("aperture refuses our close")
	}
	if got := <-paid; got[1].(int64) != 120-9 {
		t.Fatalf("aperture refunded %v, want 111 sats", got)
	}
	rc, err := mpp.ParseReceipt(a.ReceiptHeader(closeCred, "svc").Get(mpp.HeaderReceipt))
	if err != nil || rc.Reference != id || rc.RefundSats != 111 {
		t.Fatalf("aperture's close receipt by ours: %+v %v", rc, err)
	}
}

// TestMPPSessionApertureClient: a session challenge of l402/mpp read by
// Aperture's package, answered with credentials built from Aperture's
// types, verifies with l402/mpp for every action.
func TestMPPSessionApertureClient(t *testing.T) {
	key := mppKey(t)
	var pre, tpre lntypes.Preimage
	_, _ = rand.Read(pre[:])
	_, _ = rand.Read(tpre[:])
	ours := func(p lntypes.Preimage) mpp.Challenge {
		c, err := mpp.NewSessionChallenge(key, "l402d", mpp.SessionRequest{Amount: "3", Currency: "sat", DepositInvoice: "lnbcrt4u1dep",
			PaymentHash: p.Hash().String(), DepositAmount: "400", IdleTimeout: "600"}, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	open, top := ours(pre), ours(tpre)
	apCred := func(c mpp.Challenge, p apmpp.SessionPayload) mpp.Credential {
		t.Helper()
		h := http.Header{}
		if err := mpp.SetChallenge(h, c); err != nil {
			t.Fatal(err)
		}
		params, err := apmpp.ParseChallengeHeader(h.Get("WWW-Authenticate"))
		if err != nil || !apmpp.VerifyChallengeID(key, params, params.ID) {
			t.Fatalf("aperture reads our session challenge: %+v %v", params, err)
		}
		var req apmpp.SessionRequest
		if err := apmpp.DecodeRequest(params.Request, &req); err != nil || req.DepositAmount != "400" || req.PaymentHash != c.Request && req.PaymentHash == "" {
			t.Fatalf("aperture decodes %+v %v", req, err)
		}
		payload, _ := json.Marshal(p)
		raw, _ := json.Marshal(apmpp.Credential{Challenge: apmpp.ChallengeEcho{ID: params.ID, Realm: params.Realm, Method: params.Method,
			Intent: params.Intent, Request: params.Request, Expires: params.Expires}, Payload: payload})
		cred, err := mpp.ParseCredential("Payment " + apmpp.Base64URLEncode(raw))
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}
	id := pre.Hash()
	for _, tc := range []struct {
		c mpp.Challenge
		p apmpp.SessionPayload
	}{
		{open, apmpp.SessionPayload{Action: apmpp.SessionActionOpen, Preimage: pre.String(), ReturnInvoice: returnInvoice(t)}},
		{open, apmpp.SessionPayload{Action: apmpp.SessionActionBearer, Preimage: pre.String(), SessionID: id.String()}},
		{top, apmpp.SessionPayload{Action: apmpp.SessionActionTopUp, TopUpPreimage: tpre.String(), SessionID: id.String()}},
		{open, apmpp.SessionPayload{Action: apmpp.SessionActionClose, Preimage: pre.String(), SessionID: id.String()}},
	} {
		v, err := mpp.VerifySession(key, apCred(tc.c, tc.p))
		if err != nil || v.ID != id || string(v.Action) != string(tc.p.Action) {
			t.Fatalf("%s: %+v %v", tc.p.Action, v, err)
		}
	}
}

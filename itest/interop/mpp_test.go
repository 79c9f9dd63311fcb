package interop

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/lightninglabs/aperture/auth"
	apmpp "github.com/lightninglabs/aperture/mpp"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402/jcs"
	"github.com/l402d/l402d/l402/mpp"
)

// allPaid is an InvoiceChecker for which every invoice is paid: the
// preimage check is what these tests exercise.
type allPaid struct{}

func (allPaid) VerifyInvoiceStatus(lntypes.Hash, lnrpc.Invoice_InvoiceState, time.Duration) error {
	return nil
}

func mppKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestMPPOursToAperture: a challenge and credential made by l402/mpp are
// parsed by Aperture's mpp package, its HMAC binding verifies under the
// same key, and Aperture's MPP authenticator accepts the credential.
func TestMPPOursToAperture(t *testing.T) {
	key := mppKey(t)
	pre := lntypes.Preimage{1, 2, 3}
	hash := pre.Hash()
	req := mpp.ChargeRequest{Amount: "21", Currency: mpp.CurrencySat, MethodDetails: mpp.ChargeMethodDetails{
		Invoice: "lnbcrt210n1fake", PaymentHash: hex.EncodeToString(hash[:]), Network: "regtest",
	}}
	ours, err := mpp.NewChargeChallenge(key, "l402d.test", req, time.Now().Add(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ours.Description = `a "quoted" description`
	h := http.Header{}
	if err := mpp.SetChallenge(h, ours); err != nil {
		t.Fatal(err)
	}

	// Aperture parses our header value and gets our fields back.
	p, err := apmpp.ParseChallengeHeader(h.Get("WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != ours.ID || p.Realm != ours.Realm || p.Method != ours.Method || p.Intent != ours.Intent ||
		p.Request != ours.Request || p.Expires != ours.Expires {
		t.Fatalf("aperture read %+v from %s", p, h.Get("WWW-Authenticate"))
	}
	// Same id under the same key; Aperture verifies ours.
	if got := apmpp.ComputeChallengeID(key, p); got != ours.ID {
		t.Fatalf("aperture id %s, ours %s", got, ours.ID)
	}
	if !apmpp.VerifyChallengeID(key, p, ours.ID) {
		t.Fatal("aperture does not verify our challenge id")
	}
	var apReq apmpp.ChargeRequest
	if err := apmpp.DecodeRequest(p.Request, &apReq); err != nil {
		t.Fatal(err)
	}
	if apReq.Amount != "21" || apReq.Currency != "sat" || apReq.MethodDetails.Invoice != req.MethodDetails.Invoice ||
		apReq.MethodDetails.PaymentHash != req.MethodDetails.PaymentHash || apReq.MethodDetails.Network != "regtest" {
		t.Fatalf("aperture decoded %+v", apReq)
	}

	// Our credential: Aperture parses it and its authenticator accepts it.
	credValue, err := mpp.NewChargeCredential(ours, pre)
	if err != nil {
		t.Fatal(err)
	}
	rh := http.Header{}
	rh.Set("Authorization", credValue)
	cred, err := apmpp.ParseCredential(&rh)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Challenge.ID != ours.ID || !apmpp.VerifyChallengeID(key, cred.Challenge.ToChallengeParams(), cred.Challenge.ID) {
		t.Fatalf("aperture echo %+v", cred.Challenge)
	}
	var payload apmpp.ChargePayload
	if err := json.Unmarshal(cred.Payload, &payload); err != nil || payload.Preimage != pre.String() {
		t.Fatalf("payload %+v %v", payload, err)
	}
	a := auth.NewMPPAuthenticator(nil, allPaid{}, "l402d.test", key, "regtest", nil)
	if !a.Accept(&rh, "svc") {
		t.Fatal("aperture's authenticator refuses our credential")
	}
	// A wrong preimage is refused by Aperture too.
	bad, _ := mpp.NewChargeCredential(ours, lntypes.Preimage{9})
	rh.Set("Authorization", bad)
	if a.Accept(&rh, "svc") {
		t.Fatal("aperture accepts a wrong preimage")
	}

	// Our receipt parses with Aperture's.
	out := http.Header{}
	if err := mpp.SetReceipt(out, mpp.NewChargeReceipt(hash, ours.ID, time.Now())); err != nil {
		t.Fatal(err)
	}
	r, err := apmpp.ParseReceiptHeader(out)
	if err != nil || r.Status != "success" || r.Reference != hash.String() || r.ChallengeID != ours.ID {
		t.Fatalf("aperture receipt %+v %v", r, err)
	}
}

// TestMPPApertureToOurs: Aperture's MPP authenticator issues a challenge;
// l402/mpp parses it, verifies it under the same key, pays it with the
// preimage, and Aperture accepts the credential l402/mpp built. Aperture's
// own credential verifies with ours, and its receipt parses with ours.
func TestMPPApertureToOurs(t *testing.T) {
	key := mppKey(t)
	ch := &challenger{preimages: map[lntypes.Hash]lntypes.Preimage{}}
	a := auth.NewMPPAuthenticator(ch, allPaid{}, "aperture.test", key, "regtest", nil)
	h, err := a.FreshChallengeHeader("svc", 21)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mpp.ParseChallengesHeader(h)
	if err != nil || len(cs) != 1 {
		t.Fatalf("%v %v", cs, err)
	}
	c := cs[0]
	if !mpp.VerifyChallengeID(key, c) {
		t.Fatalf("our verifier refuses aperture's id: %+v", c)
	}
	req, err := c.ChargeRequest()
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := lntypes.MakeHashFromStr(req.MethodDetails.PaymentHash)
	pre, ok := ch.preimages[hash]
	if !ok || req.Amount != "21" || req.MethodDetails.Network != "regtest" {
		t.Fatalf("request %+v", req)
	}
	// Aperture's request bytes are already our JCS bytes.
	raw, _ := apmpp.Base64URLDecode(c.Request)
	canon, err := jcs.Canonicalize(raw)
	if err != nil || string(canon) != string(raw) {
		t.Fatalf("aperture's request is not JCS by ours:\n%s\n%s", raw, canon)
	}
	reenc, _ := mpp.EncodeRequest(req)
	if reenc != c.Request {
		t.Fatalf("re-encoded request differs: %s vs %s", reenc, c.Request)
	}

	// We pay: our credential is accepted by Aperture.
	credValue, err := mpp.NewChargeCredential(c, pre)
	if err != nil {
		t.Fatal(err)
	}
	rh := http.Header{}
	rh.Set("Authorization", credValue)
	if !a.Accept(&rh, "svc") {
		t.Fatal("aperture refuses our credential for its challenge")
	}
	// Aperture's receipt parses with ours.
	rcpt, err := mpp.ParseReceipt(a.ReceiptHeader(&rh, "svc").Get(mpp.HeaderReceipt))
	if err != nil || rcpt.Reference != hash.String() || rcpt.ChallengeID != c.ID {
		t.Fatalf("receipt %+v %v", rcpt, err)
	}

	// A credential encoded Aperture's way verifies with ours.
	p, _ := apmpp.ParseChallengeHeader(h.Get("WWW-Authenticate"))
	body, _ := json.Marshal(apmpp.Credential{
		Challenge: apmpp.ChallengeEcho{ID: p.ID, Realm: p.Realm, Method: p.Method, Intent: p.Intent,
			Request: p.Request, Expires: p.Expires},
		Payload: json.RawMessage(`{"preimage":"` + pre.String() + `"}`),
	})
	cred, err := mpp.ParseCredential("Payment " + apmpp.Base64URLEncode(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := mpp.VerifyCharge(key, cred, time.Now())
	if err != nil || got.PaymentHash != hash {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := mpp.VerifyCharge(mppKey(t), cred, time.Now()); err == nil {
		t.Fatal("verified under another key")
	}
}

// TestMPPSameJCS: both canonicalizers give the same bytes for the objects
// this protocol carries (they differ only where Aperture's falls back to
// encoding/json: HTML characters and U+2028/9 escaped, keys beyond the
// BMP ordered by UTF-8 rather than UTF-16).
func TestMPPSameJCS(t *testing.T) {
	inputs := []string{
		`{"methodDetails":{"paymentHash":"ab","network":"regtest","invoice":"lnbcrt1"},"currency":"sat","amount":"21"}`,
		`{"amount":"1000","currency":"sat","description":"café ☕ costs 1.5 €","externalId":"order-7","recipient":"02ab","methodDetails":{"invoice":"lnbc1"}}`,
		`{"b":[1,2.5,-0.001,1e21,1e-7,true,null,{"z":1,"a":2}],"a":"\u0001\t\"\\"}`,
		`{"depositInvoice":"lnbc1","paymentHash":"ab","idleTimeout":"300","amount":"2","currency":"sat","unitType":"token"}`,
	}
	for _, in := range inputs {
		want, err := apmpp.CanonicalizeJSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		got, err := jcs.Canonicalize([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("input %s\nours     %s\naperture %s", in, got, want)
		}
	}
}

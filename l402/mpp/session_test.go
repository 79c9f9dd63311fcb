package mpp

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// testSession is a session challenge for a fresh deposit, with its preimage.
func testSession(t testing.TB) (Challenge, lntypes.Preimage) {
	t.Helper()
	var pre lntypes.Preimage
	_, _ = rand.Read(pre[:])
	c, err := NewSessionChallenge(testKey, "l402d", SessionRequest{
		Amount: "10", Currency: CurrencySat, DepositInvoice: "lnbcrt10u1deposit", PaymentHash: pre.Hash().String(), DepositAmount: "1000",
	}, time.Unix(1_900_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c, pre
}

func sessionCred(t *testing.T, c Challenge, p SessionPayload) Credential {
	t.Helper()
	v, err := NewSessionCredential(c, p)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := ParseCredential(v)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func TestVerifySession(t *testing.T) {
	open, pre := testSession(t)
	id := pre.Hash()
	top, topPre := testSession(t)
	other, _ := testSession(t)
	forged := open
	forged.Request = other.Request

	for _, tc := range []struct {
		name string
		c    Challenge
		p    SessionPayload
		key  []byte
		want error
	}{
		{"open", open, SessionPayload{Action: ActionOpen, Preimage: pre.String(), ReturnInvoice: "lnbcrt1return"}, testKey, nil},
		{"bearer on any of our challenges", other, SessionPayload{Action: ActionBearer, Preimage: pre.String(), SessionID: id.String()}, testKey, nil},
		{"top-up", top, SessionPayload{Action: ActionTopUp, TopUpPreimage: topPre.String(), SessionID: id.String()}, testKey, nil},
		{"close", open, SessionPayload{Action: ActionClose, Preimage: pre.String(), SessionID: id.String()}, testKey, nil},
		{"open without a return invoice", open, SessionPayload{Action: ActionOpen, Preimage: pre.String()}, testKey, l402.ErrMalformed},
		{"open with another deposit's preimage", other, SessionPayload{Action: ActionOpen, Preimage: pre.String(), ReturnInvoice: "r"}, testKey, l402.ErrWrongPreimage},
		{"bearer without the session's preimage", open, SessionPayload{Action: ActionBearer, Preimage: topPre.String(), SessionID: id.String()}, testKey, l402.ErrWrongPreimage},
		{"top-up with the session's own preimage on another deposit", top, SessionPayload{Action: ActionTopUp, TopUpPreimage: pre.String(), SessionID: id.String()}, testKey, l402.ErrWrongPreimage},
		{"forged request", forged, SessionPayload{Action: ActionOpen, Preimage: pre.String(), ReturnInvoice: "r"}, testKey, ErrChallengeID},
		{"another server's challenge", open, SessionPayload{Action: ActionOpen, Preimage: pre.String(), ReturnInvoice: "r"}, []byte("another key of 32 bytes........."), ErrChallengeID},
		{"unknown action", open, SessionPayload{Action: "withdraw", Preimage: pre.String()}, testKey, l402.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := VerifySession(tc.key, sessionCred(t, tc.c, tc.p))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if v.ID != id {
					t.Fatalf("session id %s, want %s", v.ID, id)
				}
				if tc.p.Action == ActionTopUp && v.TopUp != topPre.Hash() {
					t.Fatalf("top-up hash %s", v.TopUp)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// A charge credential is no session credential.
	ch, chPre := testCharge(t, 1, time.Unix(1_900_000_000, 0))
	v, _ := NewChargeCredential(ch, chPre)
	cred, _ := ParseCredential(v)
	if _, err := VerifySession(testKey, cred); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("charge as session: %v", err)
	}
}

func FuzzVerifySession(f *testing.F) {
	c, pre := testSession(f)
	for _, p := range []string{
		`{"action":"open","preimage":"` + pre.String() + `","returnInvoice":"lnbcrt1r"}`,
		`{"action":"bearer","preimage":"` + pre.String() + `","sessionId":"` + pre.Hash().String() + `"}`,
		`{"action":"topUp","topUpPreimage":"00","sessionId":"zz"}`,
		`{"action":"close"}`, `{"action":1}`, `{}`, `null`,
	} {
		f.Add(c.Request, p)
	}
	f.Add("e30", `{"action":"open"}`)
	f.Fuzz(func(t *testing.T, request, payload string) {
		ch := c
		ch.Request = request
		if id, err := NewChallengeID(testKey, ch); err == nil {
			ch.ID = id
		}
		raw := `{"challenge":{"id":"` + ch.ID + `","realm":"l402d","method":"lightning","intent":"session","request":"` + base64.RawURLEncoding.EncodeToString([]byte(request)) + `"},"payload":` + payload + `}`
		cred, err := ParseCredential("Payment " + base64.RawURLEncoding.EncodeToString([]byte(raw)))
		if err != nil {
			return
		}
		cred.Challenge = ch
		v, err := VerifySession(testKey, cred)
		if err != nil {
			if !errors.Is(err, l402.ErrMalformed) && !errors.Is(err, l402.ErrWrongPreimage) && !errors.Is(err, ErrChallengeID) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if v.Action != ActionTopUp && !v.Preimage.Matches(v.ID) {
			t.Fatalf("verified %+v without the session's preimage", v)
		}
	})
}

// BenchmarkSessionBearer is the gate's per-request work on a session's
// bearer credential before the debit: parse the header value, check the
// echoed challenge's id and the session's preimage.
func BenchmarkSessionBearer(b *testing.B) {
	c, pre := testSession(b)
	v, err := NewSessionCredential(c, SessionPayload{Action: ActionBearer, Preimage: pre.String(), SessionID: pre.Hash().String()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cred, err := ParseCredential(v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := VerifySession(testKey, cred); err != nil {
			b.Fatal(err)
		}
	}
}

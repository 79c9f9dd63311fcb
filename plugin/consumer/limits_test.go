package consumer

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/storage"
)

// TestSellerCannotStrandPayment: whatever caveats a seller mints, a
// payment LND reports succeeded is recorded succeeded and its budget
// reservation settled. (A resource caveat over the token cache's 2 KiB
// scope limit, a path over it with no resource or service caveat, or an
// expiry beyond what the store represents, made CompletePayment fail
// after LND had paid, for ever: the payment stayed in flight holding its
// budget.)
func TestSellerCannotStrandPayment(t *testing.T) {
	long := strings.Repeat("a", 3<<10)
	tests := []struct {
		name string
		path string
		mint func(*l402.MintParams)
	}{
		{"3 KiB resource caveat", "/x", func(p *l402.MintParams) { p.Resource = "/" + long }},
		{"3 KiB resource URL caveat", "/x", func(p *l402.MintParams) { p.Resource = "https://seller.example/" + long + "*" }},
		{"3 KiB path, no resource or service", "/" + long, func(p *l402.MintParams) { p.Resource = "" }},
		{"expiry in year 3000", "/x", func(p *l402.MintParams) { p.ValidUntil = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"3 KiB service name", "/x", func(p *l402.MintParams) { p.Resource, p.Service = "", strings.Repeat("s", 3<<10) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newFakeLN()
			c, st := newTestConsumer(t, ln)
			s := newSeller(t, ln, 20)
			s.mintParams = tt.mint
			resp, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + tt.path})
			var ue *UpstreamError
			if err != nil && !errors.As(err, &ue) {
				t.Fatalf("access: %v", err)
			}
			if resp == nil || resp.Payment == nil {
				t.Fatalf("access paid nothing: %+v", resp)
			}
			if resp.Body != nil {
				resp.Body.Close()
			}
			if resp.Payment.State != string(storage.PaymentSucceeded) {
				t.Fatalf("payment state %s, want succeeded", resp.Payment.State)
			}
			pending, err := st.PendingPayments(t.Context())
			if err != nil || len(pending) != 0 {
				t.Fatalf("pending payments %v %v, want none", pending, err)
			}
			u, err := st.BudgetUsage(t.Context(), time.Now())
			if err != nil || u.Total.ReservedMsat != 0 || u.Total.SpentMsat != 20_000+1_000 {
				t.Fatalf("budget usage %+v %v: want 21000 msat spent, none reserved", u.Total, err)
			}
		})
	}
}

// FuzzLimits holds the table of limits (storage/limits.go) to its
// promise: for every target ParseTarget accepts and any caveats a seller
// can put on its token, paying the challenge either is refused before
// anything is paid, or ends with the payment recorded succeeded, its
// budget settled and its token cached.
func FuzzLimits(f *testing.F) {
	long := strings.Repeat("a", 3<<10)
	f.Add("https://seller.example/x", "/"+long, "", int64(0))
	f.Add("https://seller.example/"+long, "", "", int64(0))
	f.Add("https://seller.example/x", "https://seller.example/"+long+"*", "", int64(0))
	f.Add("https://seller.example/x", "", strings.Repeat("s", 3<<10), int64(0))
	f.Add("https://seller.example/x", "", "", int64(32503680000)) // year 3000
	f.Add("https://seller.example/x", "/a\x00b", "svc", int64(1<<62))
	f.Add("http://[fe80::1%25eth0]:8080/"+strings.Repeat("é", 2000), "/x*", "svc", int64(0))
	f.Add("https://"+strings.Repeat("a.", 126)+"com/x", "x", "", int64(0))

	ln := newFakeLN()
	c, st := newTestConsumer(f, ln)
	if err := st.PutBudgetLimits(f.Context(), storage.BudgetLimits{}); err != nil {
		f.Fatal(err)
	}
	keys := &memKeys{m: map[l402.TokenID][l402.RootKeySize]byte{}}
	f.Fuzz(func(t *testing.T, rawURL, resource, service string, validUntil int64) {
		u, err := ParseTarget(rawURL)
		if err != nil {
			return
		}
		pre, h := newPreimage()
		ln.register(pre)
		mac, _, err := l402.Mint(t.Context(), keys, l402.MintParams{PaymentHash: h})
		if err != nil {
			t.Fatal(err)
		}
		// Caveats as a seller may write them: any bytes.
		for _, cv := range []string{"resource=" + resource, "services=" + service + ":0", "valid_until=" + strconv.FormatInt(validUntil, 10)} {
			if err := mac.AddFirstPartyCaveat([]byte(cv)); err != nil {
				t.Fatal(err)
			}
		}
		m, err := l402.EncodeMacaroon(mac)
		if err != nil {
			t.Fatal(err)
		}
		inv := invoiceFor(t, regtest, h, 1_000, time.Hour)
		before := ln.totalPays()
		res, err := c.PayChallenge(t.Context(), PayChallengeRequest{Macaroon: m, Invoice: inv, URL: u.String()})
		if err != nil {
			if RefusalOf(err) == nil || ln.totalPays() != before {
				t.Fatalf("%q: not a refusal before paying: %v (%d payments)", rawURL, err, ln.totalPays()-before)
			}
			return
		}
		if res.Payment.State != string(storage.PaymentSucceeded) {
			t.Fatalf("%q: payment %s", rawURL, res.Payment.State)
		}
		p, err := st.Payment(t.Context(), h)
		if err != nil || p.State != storage.PaymentSucceeded {
			t.Fatalf("%q: journal %+v %v", rawURL, p, err)
		}
		toks, err := st.TokensForOrigin(t.Context(), Origin(u))
		if err != nil || !slices.ContainsFunc(toks, func(tk storage.Token) bool { return tk.PaymentHash == h }) {
			t.Fatalf("%q: token not cached (%d tokens, %v)", rawURL, len(toks), err)
		}
		pending, err := st.PendingPayments(t.Context())
		if err != nil || len(pending) != 0 {
			t.Fatalf("%q: %d payments pending, %v", rawURL, len(pending), err)
		}
	})
}

package consumer

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/l402/x402"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// The payment schemes a 402 may offer, as Config.SchemePreference names
// them.
const (
	SchemeL402 = storage.SchemeL402 // WWW-Authenticate: L402; a reusable token
	SchemeMPP  = storage.SchemeMPP  // WWW-Authenticate: Payment; single-use
	SchemeX402 = storage.SchemeX402 // PAYMENT-REQUIRED (x402 v2, lightning exact); single-use
)

// DefaultSchemePreference prefers the reusable L402 token, then MPP, then
// x402.
var defaultSchemePreference = []string{SchemeL402, SchemeMPP, SchemeX402}

// DefaultSchemePreference returns the default order of schemes.
func DefaultSchemePreference() []string { return append([]string(nil), defaultSchemePreference...) }

// ParseSchemePreference checks an order of schemes (l402, mpp, x402, any
// case, each at most once). A scheme left out is never paid with.
func ParseSchemePreference(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, s := range list {
		s = strings.ToLower(strings.TrimSpace(s))
		switch s {
		case SchemeL402, SchemeMPP, SchemeX402:
		default:
			return nil, &field.Error{Field: "schemePreference", Problem: fmt.Sprintf("names %q, which is not a payment scheme", s), Fix: "list some of l402, mpp and x402, most preferred first"}
		}
		for _, o := range out {
			if o == s {
				return nil, &field.Error{Field: "schemePreference", Problem: fmt.Sprintf("names %q twice", s), Fix: "list each scheme once"}
			}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, &field.Error{Field: "schemePreference", Problem: "is empty", Fix: "list some of l402, mpp and x402, most preferred first"}
	}
	return out, nil
}

// Offer is one way a 402 lets l402d pay: the scheme, its invoice and what
// to present once the invoice is paid.
type Offer struct {
	Scheme  string
	Invoice string
	// ClaimMsat is the price the offer states besides its invoice (an MPP
	// charge request's amount, an x402 requirement's), 0 for L402, whose
	// token and body state theirs.
	ClaimMsat int64
	// ClaimField names where ClaimMsat was stated, for errors.
	ClaimField string
	// L402 is set for SchemeL402.
	L402 l402.Challenge
	// MPP and MPPHash (the payment hash the charge request names, if it
	// does) are set for SchemeMPP.
	MPP     mpp.Challenge
	MPPHash string
	// X402 and X402Resource are set for SchemeX402.
	X402         x402.PaymentRequirements
	X402Resource *x402.ResourceInfo
}

// ParseOffers reads every offer of a 402 l402d can pay: L402 challenges
// from WWW-Authenticate (else from a JSON body with macaroon and invoice
// fields), MPP lightning charges from WWW-Authenticate and x402 v2
// lightning requirements from PAYMENT-REQUIRED. A malformed offer is
// skipped; the others stay usable. advertised is the price the body
// states, 0 if none.
func ParseOffers(h http.Header, body []byte) (offers []Offer, advertised int64) {
	fromBody, advertised := ParseChallengeBody(body)
	if cs, err := l402.ParseChallenges(h.Values(l402.HeaderWWWAuthenticate)); err == nil {
		offers = append(offers, Offer{Scheme: SchemeL402, Invoice: cs[0].Invoice, L402: cs[0]})
	} else if fromBody.Macaroon != "" && fromBody.Invoice != "" {
		offers = append(offers, Offer{Scheme: SchemeL402, Invoice: fromBody.Invoice, L402: fromBody})
	}
	cs, _ := mpp.ParseChallengesHeader(h)
	for _, c := range cs {
		req, err := c.ChargeRequest()
		if err != nil {
			continue
		}
		sats, _ := strconv.ParseUint(req.Amount, 10, 64) // Validate checked it
		offers = append(offers, Offer{Scheme: SchemeMPP, Invoice: req.MethodDetails.Invoice, ClaimMsat: satsToMsat(sats),
			ClaimField: "request.amount", MPP: c, MPPHash: req.MethodDetails.PaymentHash})
	}
	if v := h.Get(x402.HeaderPaymentRequired); v != "" {
		if pr, err := x402.DecodePaymentRequired(v); err == nil {
			for _, r := range pr.LightningOffers() {
				e, err := r.LightningExtra()
				msat, aerr := strconv.ParseInt(r.Amount, 10, 64)
				if err != nil || aerr != nil || msat <= 0 {
					continue
				}
				offers = append(offers, Offer{Scheme: SchemeX402, Invoice: e.Invoice, ClaimMsat: msat, ClaimField: "accepts.amount",
					X402: r, X402Resource: pr.Resource})
			}
		}
	}
	return offers, advertised
}

// satsToMsat converts sats to msat, saturating.
func satsToMsat(sats uint64) int64 {
	if sats > math.MaxInt64/1000 {
		return math.MaxInt64
	}
	return int64(sats) * 1000
}

// chooseOffer picks the offer of the most preferred scheme in pref, the
// server's first of that scheme; ok is false when none is in pref.
func chooseOffer(offers []Offer, pref []string) (Offer, bool) {
	for _, s := range pref {
		for _, o := range offers {
			if o.Scheme == s {
				return o, true
			}
		}
	}
	return Offer{}, false
}

// schemesOf lists the schemes offers has, for notes.
func schemesOf(offers []Offer) string {
	var seen []string
	for _, o := range offers {
		if !slices.Contains(seen, o.Scheme) {
			seen = append(seen, o.Scheme)
		}
	}
	return strings.Join(seen, ", ")
}

// onceMaterial is what the journal keeps of a single-use offer
// (storage.Payment.Offer): all the credential is made of besides the
// preimage.
type onceMaterial struct {
	MPP      *mpp.Challenge            `json:"mpp,omitempty"`
	Accepted *x402.PaymentRequirements `json:"accepted,omitempty"`
	Resource *x402.ResourceInfo        `json:"resource,omitempty"`
}

// material encodes what a single-use offer's credential is made of; ""
// for L402.
func (o Offer) material() (string, error) {
	var m onceMaterial
	switch o.Scheme {
	case SchemeMPP:
		m.MPP = &o.MPP
	case SchemeX402:
		m.Accepted, m.Resource = &o.X402, o.X402Resource
	default:
		return "", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if len(b) > storage.MaxOfferLen {
		return "", &PolicyError{Code: "offer_too_large", Field: "offer", Problem: fmt.Sprintf("is %d bytes, more than %d", len(b), storage.MaxOfferLen),
			Fix: "do not pay this offer: l402d could not keep what answers it"}
	}
	return string(b), nil
}

// onceCredential makes the ready header value of a paid single-use offer
// from its journal material.
func onceCredential(scheme, material string, pre lntypes.Preimage) (string, error) {
	var m onceMaterial
	if err := json.Unmarshal([]byte(material), &m); err != nil {
		return "", fmt.Errorf("consumer: reading a %s offer: %w", scheme, err)
	}
	switch {
	case scheme == SchemeMPP && m.MPP != nil:
		return mpp.NewChargeCredential(*m.MPP, pre)
	case scheme == SchemeX402 && m.Accepted != nil:
		return x402.EncodeHeader(x402.NewLightningPayment(*m.Accepted, m.Resource, pre))
	}
	return "", fmt.Errorf("consumer: a %s offer without its challenge", scheme)
}

// onceToken is the token cache entry of a paid single-use offer: the
// ready credential, kept until the service answers it.
func onceToken(scheme, material, origin, scope string, amountMsat int64, pre lntypes.Preimage) (*storage.Token, error) {
	cred, err := onceCredential(scheme, material, pre)
	if err != nil {
		return nil, err
	}
	if len(cred) > storage.MaxCredentialLen {
		return nil, fmt.Errorf("consumer: a %s credential of %d bytes is more than %d", scheme, len(cred), storage.MaxCredentialLen)
	}
	return &storage.Token{Origin: origin, Scope: scope, Scheme: scheme, Credential: cred, Preimage: pre,
		PaymentHash: pre.Hash(), AmountSats: amountMsat / 1000}, nil
}

// onceScope is the token cache scope of a paid single-use credential for
// path: never a scope a reusable token is tried under (those start with
// "/" or "service:").
func onceScope(path string) string { return "once:" + path }

// credentialHeader is the request header and value that present tok.
func credentialHeader(tok *storage.Token) (name, value string) {
	switch tok.Scheme {
	case SchemeMPP:
		return mpp.HeaderAuthorization, tok.Credential
	case SchemeX402:
		return x402.HeaderPaymentSignature, tok.Credential
	}
	return l402.HeaderAuthorization, l402.AuthorizationValue(tok.Macaroon, tok.Preimage)
}

// receiptOf is the receipt a response carries for a credential of scheme,
// cut to what the journal keeps.
func receiptOf(scheme string, h http.Header) string {
	var r string
	switch scheme {
	case SchemeMPP:
		r = h.Get(mpp.HeaderReceipt)
	case SchemeX402:
		r = h.Get(x402.HeaderPaymentResponse)
	}
	if len(r) > storage.MaxReceiptLen {
		r = r[:storage.MaxReceiptLen]
	}
	return r
}

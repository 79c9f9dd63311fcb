// Package mpp implements the "Payment" HTTP authentication scheme (MPP)
// for method "lightning", intent "charge", as Aperture v0.5.0 speaks it
// (github.com/lightninglabs/aperture/mpp, after draft-httpauth-payment-00
// and draft-lightning-charge-00). It is pure: no I/O, no storage, no LND.
//
// A server offers one invoice as
//
//	WWW-Authenticate: Payment id="<b64url HMAC>", realm="…", method="lightning",
//	    intent="charge", request="<b64url(JCS(request))>", expires="<RFC 3339>"
//
// where request is the JCS (RFC 8785) form of a ChargeRequest and id is
// HMAC-SHA256 over the challenge's fields (see NewChallengeID), so the
// server can check a returned challenge without storing it. The client pays
// the invoice and answers with
//
//	Authorization: Payment <b64url(JSON {challenge: <the echo>, payload: {preimage}})>
//
// and a successful response carries Payment-Receipt: <b64url(JSON receipt)>.
// A charge is single-use: VerifyCharge proves the credential is well formed,
// bound to our key, unexpired and paid; consuming its payment hash once is
// the caller's job (the storage layer).
//
// Parsers are liberal (any case of scheme and parameter names, several
// challenges per header value, padded or unpadded, URL or standard base64,
// unknown parameters and JSON members ignored); formatters emit exactly
// what Aperture emits. Errors name the field (*FieldError).
package mpp

// Protocol constants, as Aperture spells them.
const (
	// Scheme is the HTTP authentication scheme name.
	Scheme = "Payment"
	// MethodLightning is the payment method this package verifies.
	MethodLightning = "lightning"
	// IntentCharge is the one-time payment intent.
	IntentCharge = "charge"
	// IntentSession is the prepaid session intent (VerifySession).
	IntentSession = "session"
	// CurrencySat is the only currency of a lightning charge.
	CurrencySat = "sat"
	// ReceiptSuccess is the only receipt status.
	ReceiptSuccess = "success"

	// HeaderWWWAuthenticate carries challenges.
	HeaderWWWAuthenticate = "WWW-Authenticate"
	// HeaderAuthorization carries the credential.
	HeaderAuthorization = "Authorization"
	// HeaderReceipt carries the receipt on a paid response.
	HeaderReceipt = "Payment-Receipt"

	// maxEncoded bounds a credential or receipt before decoding (Aperture
	// refuses credentials over 64 KiB decoded).
	maxEncoded = 64*1024*4/3 + 4
)

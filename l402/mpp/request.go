package mpp

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/l402d/l402d/l402/jcs"
)

// EncodeRequest returns the request parameter for v: base64url (unpadded)
// of v's JCS (RFC 8785) form, so equal requests give equal parameters
// whatever encoder produced them.
func EncodeRequest(v any) (string, error) {
	raw, err := jcs.Marshal(v)
	if err != nil {
		return "", fieldErr("request", err.Error())
	}
	return b64.EncodeToString(raw), nil
}

// DecodeChargeRequest decodes and validates a lightning charge request
// parameter. Unknown members are ignored.
func DecodeChargeRequest(param string) (ChargeRequest, error) {
	raw, err := decodeB64(param)
	if err != nil {
		return ChargeRequest{}, fieldErr("request", "not base64url")
	}
	var r ChargeRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return ChargeRequest{}, fieldErr("request", "not a JSON charge request: "+err.Error())
	}
	return r, r.Validate()
}

// ChargeRequest decodes c's request, refusing a challenge that is not
// lightning/charge.
func (c Challenge) ChargeRequest() (ChargeRequest, error) {
	if c.Method != MethodLightning || c.Intent != IntentCharge {
		return ChargeRequest{}, ErrUnsupported
	}
	return DecodeChargeRequest(c.Request)
}

// Validate checks the fields a payer and a verifier rely on: amount a
// decimal count of satoshis, currency "sat", an invoice, and a payment hash
// (when present) of 32 bytes hex.
func (r ChargeRequest) Validate() error {
	if !isDecimal(r.Amount) {
		return fieldErr("amount", "not a decimal number of satoshis")
	}
	if _, err := strconv.ParseUint(r.Amount, 10, 64); err != nil {
		return fieldErr("amount", "out of range")
	}
	if r.Currency != CurrencySat {
		return fieldErr("currency", `not "sat"`)
	}
	if r.MethodDetails.Invoice == "" {
		return fieldErr("methodDetails.invoice", "missing")
	}
	if h := r.MethodDetails.PaymentHash; h != "" {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return fieldErr("methodDetails.paymentHash", "not 32 bytes of hex")
		}
	}
	return nil
}

func isDecimal(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NewChargeChallenge builds the lightning charge challenge a server sends
// for req: the request encoded, expires (if not zero) as RFC 3339 UTC to
// the second the way Aperture writes it, and the id bound with key.
func NewChargeChallenge(key []byte, realm string, req ChargeRequest, expires time.Time) (Challenge, error) {
	if err := req.Validate(); err != nil {
		return Challenge{}, err
	}
	enc, err := EncodeRequest(req)
	if err != nil {
		return Challenge{}, err
	}
	c := Challenge{Realm: realm, Method: MethodLightning, Intent: IntentCharge, Request: enc}
	if !expires.IsZero() {
		c.Expires = expires.UTC().Format(time.RFC3339)
	}
	if c.ID, err = NewChallengeID(key, c); err != nil {
		return Challenge{}, err
	}
	return c, c.check("")
}

package mpp

import (
	"fmt"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// Charge is a verified lightning charge credential.
type Charge struct {
	// Challenge is the echoed (and now authenticated) challenge.
	Challenge Challenge
	// Request is its decoded charge request.
	Request ChargeRequest
	// PaymentHash is the hash the request names and the preimage opens.
	PaymentHash lntypes.Hash
	// Preimage is the proof of payment.
	Preimage lntypes.Preimage
}

// VerifyCharge checks a lightning charge credential without state, in the
// order Aperture does: method and intent, the challenge id under key
// (constant time), expiry against now, the payload's preimage, the request's
// payment hash, sha256(preimage) == hash. It does not decide whether the
// hash is one this server issued and not yet consumed: the caller looks
// the hash up and consumes it once.
//
// Errors: *FieldError (l402.ErrMalformed) for shape, ErrUnsupported,
// ErrChallengeID, l402.ErrExpired, l402.ErrWrongPreimage.
func VerifyCharge(key []byte, cred Credential, now time.Time) (Charge, error) {
	c := cred.Challenge
	if err := c.check("challenge."); err != nil {
		return Charge{}, err
	}
	if c.Method != MethodLightning || c.Intent != IntentCharge {
		return Charge{}, fmt.Errorf("%w: method %q intent %q", ErrUnsupported, c.Method, c.Intent)
	}
	if !VerifyChallengeID(key, c) {
		return Charge{}, ErrChallengeID
	}
	if at, ok, err := c.ExpiresAt(); err != nil {
		return Charge{}, fieldErr("challenge.expires", "not an RFC 3339 time")
	} else if ok && now.After(at) {
		return Charge{}, fmt.Errorf("%w: challenge expired at %s", l402.ErrExpired, c.Expires)
	}
	p, err := cred.ChargePayload()
	if err != nil {
		return Charge{}, err
	}
	pre, err := lntypes.MakePreimageFromStr(p.Preimage)
	if err != nil {
		return Charge{}, fieldErr("payload.preimage", "not 32 bytes of hex")
	}
	req, err := DecodeChargeRequest(c.Request)
	if err != nil {
		return Charge{}, err
	}
	if req.MethodDetails.PaymentHash == "" {
		return Charge{}, fieldErr("methodDetails.paymentHash", "missing")
	}
	hash, err := lntypes.MakeHashFromStr(req.MethodDetails.PaymentHash)
	if err != nil {
		return Charge{}, fieldErr("methodDetails.paymentHash", "not 32 bytes of hex")
	}
	if !pre.Matches(hash) {
		return Charge{}, l402.ErrWrongPreimage
	}
	return Charge{Challenge: c, Request: req, PaymentHash: hash, Preimage: pre}, nil
}

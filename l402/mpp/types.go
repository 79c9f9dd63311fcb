package mpp

import "encoding/json"

// Challenge is one Payment challenge: the auth-params of a WWW-Authenticate
// value, and, with the same JSON names, the echo inside a credential.
type Challenge struct {
	// ID binds the other fields to the server's key (NewChallengeID).
	ID string `json:"id"`
	// Realm is the protection space (Aperture: its listen address by default).
	Realm string `json:"realm"`
	// Method is the payment method, "lightning" here.
	Method string `json:"method"`
	// Intent is "charge" (or "session", which this package only parses).
	Intent string `json:"intent"`
	// Request is base64url (unpadded) of the JCS form of the method's
	// request object (ChargeRequest for lightning/charge).
	Request string `json:"request"`
	// Expires is an optional RFC 3339 instant after which the challenge
	// is refused.
	Expires string `json:"expires,omitempty"`
	// Description is an optional human-readable text; it is not bound by
	// the id.
	Description string `json:"description,omitempty"`
	// Opaque is optional server correlation data (base64url of JCS JSON).
	Opaque string `json:"opaque,omitempty"`
	// Digest is an optional RFC 9530 digest of the request body.
	Digest string `json:"digest,omitempty"`
}

// ChargeRequest is the request object of method "lightning", intent
// "charge" (draft-lightning-charge-00 §7, Aperture's mpp.ChargeRequest).
type ChargeRequest struct {
	// Amount is the price in satoshis as a decimal string.
	Amount string `json:"amount"`
	// Currency is always "sat".
	Currency string `json:"currency"`
	// Description is an optional memo.
	Description string `json:"description,omitempty"`
	// Recipient is an optional payee in method-native form.
	Recipient string `json:"recipient,omitempty"`
	// ExternalID is an optional merchant reference.
	ExternalID string `json:"externalId,omitempty"`
	// MethodDetails holds the lightning fields.
	MethodDetails ChargeMethodDetails `json:"methodDetails"`
}

// ChargeMethodDetails are the lightning fields of a charge request.
type ChargeMethodDetails struct {
	// Invoice is the BOLT 11 payment request, authoritative for payment.
	Invoice string `json:"invoice"`
	// PaymentHash is the invoice's payment hash, lowercase hex. The draft
	// makes it optional; Aperture always sends it and its verifier
	// requires it, and so does VerifyCharge.
	PaymentHash string `json:"paymentHash,omitempty"`
	// Network is "mainnet", "regtest" or "signet" (Aperture's values);
	// absent means mainnet.
	Network string `json:"network,omitempty"`
}

// ChargePayload is the credential payload of a lightning charge.
type ChargePayload struct {
	// Preimage is the 32-byte payment preimage as 64 hex characters.
	Preimage string `json:"preimage"`
}

// Credential is the decoded Authorization: Payment token.
type Credential struct {
	// Challenge is the challenge echoed unchanged.
	Challenge Challenge `json:"challenge"`
	// Source optionally identifies the payer (a DID, per the draft).
	Source string `json:"source,omitempty"`
	// Payload is the method- and intent-specific proof, a JSON object
	// (ChargePayload for lightning/charge).
	Payload json.RawMessage `json:"payload"`
}

// Receipt is the decoded Payment-Receipt header.
type Receipt struct {
	// Status is always "success".
	Status string `json:"status"`
	// Method is the payment method, "lightning".
	Method string `json:"method"`
	// Timestamp is the RFC 3339 settlement time.
	Timestamp string `json:"timestamp"`
	// Reference is method specific: the payment hash hex for lightning.
	Reference string `json:"reference"`
	// ChallengeID is the id of the challenge that was paid.
	ChallengeID string `json:"challengeId,omitempty"`
	// RefundSats and RefundStatus ("succeeded", "failed", "pending",
	// "skipped") are a session close's (Aperture's SessionReceipt).
	RefundSats   int64  `json:"refundSats,omitempty"`
	RefundStatus string `json:"refundStatus,omitempty"`
}

package x402

import "encoding/json"

// Version is the protocol version this package speaks.
const Version = 2

// PaymentRequired is what a 402 carries in PAYMENT-REQUIRED (§5.1).
type PaymentRequired struct {
	X402Version int                   `json:"x402Version"`
	Error       string                `json:"error,omitempty"`
	Resource    *ResourceInfo         `json:"resource"`
	Accepts     []PaymentRequirements `json:"accepts"`
	// Extensions maps an extension id to its {info, schema} object.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// ResourceInfo describes the protected resource.
type ResourceInfo struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// PaymentRequirements is one way to pay (§5.1.2); for Lightning see
// NewLightningRequirements.
type PaymentRequirements struct {
	Scheme  string `json:"scheme"`
	Network string `json:"network"`
	// Amount is a decimal string in the asset's atomic unit (msat for BTC
	// over Lightning).
	Amount            string `json:"amount"`
	Asset             string `json:"asset"`
	PayTo             string `json:"payTo"`
	MaxTimeoutSeconds int64  `json:"maxTimeoutSeconds"`
	// Extra holds scheme-specific members, kept raw so that unknown ones
	// survive a round trip and can be compared (extra_mismatch).
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// PaymentPayload is what a client sends in PAYMENT-SIGNATURE (§5.2).
type PaymentPayload struct {
	X402Version int                 `json:"x402Version"`
	Resource    *ResourceInfo       `json:"resource,omitempty"`
	Accepted    PaymentRequirements `json:"accepted"`
	// Payload is the scheme-specific proof (LightningPayload here).
	Payload    json.RawMessage            `json:"payload"`
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// SettlementResponse is the result of /settle and the PAYMENT-RESPONSE
// header (§5.3). Transaction is required by the core text ("" on failure)
// though the transport's failure example omits it; decoding tolerates both.
type SettlementResponse struct {
	Success     bool                       `json:"success"`
	ErrorReason string                     `json:"errorReason,omitempty"`
	Payer       string                     `json:"payer,omitempty"`
	Transaction string                     `json:"transaction"`
	Network     string                     `json:"network"`
	Amount      string                     `json:"amount,omitempty"`
	Extensions  map[string]json.RawMessage `json:"extensions,omitempty"`
}

// FacilitatorRequest is the body of POST /verify and POST /settle (§7.1,
// §7.2).
type FacilitatorRequest struct {
	X402Version         int                 `json:"x402Version"`
	PaymentPayload      PaymentPayload      `json:"paymentPayload"`
	PaymentRequirements PaymentRequirements `json:"paymentRequirements"`
}

// VerifyResponse is the answer of POST /verify (§5.4).
type VerifyResponse struct {
	IsValid       bool   `json:"isValid"`
	InvalidReason string `json:"invalidReason,omitempty"`
	Payer         string `json:"payer,omitempty"`
}

// SupportedResponse is the answer of GET /supported (§7.3). All three
// members are required: marshal empty slices and maps, not nil.
type SupportedResponse struct {
	Kinds      []SupportedKind     `json:"kinds"`
	Extensions []string            `json:"extensions"`
	Signers    map[string][]string `json:"signers"`
}

// SupportedKind is one scheme and network a facilitator settles.
type SupportedKind struct {
	X402Version int                        `json:"x402Version"`
	Scheme      string                     `json:"scheme"`
	Network     string                     `json:"network"`
	Extra       map[string]json.RawMessage `json:"extra,omitempty"`
}

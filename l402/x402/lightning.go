package x402

import (
	"encoding/json"
	"errors"
	"strconv"
)

// Constants of the Lightning exact draft.
const (
	SchemeExact        = "exact"
	AssetBTC           = "BTC"
	PaymentFlowUpfront = "upfront"
	TransferBOLT11     = "bolt11"

	ExtraAssetTransferMethod = "assetTransferMethod"
	ExtraPaymentFlow         = "paymentFlow"
	ExtraInvoice             = "invoice"
)

// LightningExtra is the extra object of a Lightning requirement.
type LightningExtra struct {
	// AssetTransferMethod is "bolt11" or absent (meaning "bolt11").
	AssetTransferMethod string `json:"assetTransferMethod,omitempty"`
	// PaymentFlow is always "upfront": the payment settles before the
	// preimage exists.
	PaymentFlow string `json:"paymentFlow"`
	// Invoice is a fresh BOLT 11 invoice for exactly Amount msat.
	Invoice string `json:"invoice"`
}

// LightningPayload is the payload of a Lightning PaymentPayload.
type LightningPayload struct {
	// Preimage is 64 lowercase hex characters.
	Preimage string `json:"preimage"`
}

// NewLightningRequirements offers one invoice: amount in msat, payTo the
// receiving node's compressed public key hex, maxTimeoutSeconds equal to
// the invoice's expiry (the draft requires them equal).
func NewLightningRequirements(network, payTo, invoice string, amountMsat uint64, expirySeconds int64) PaymentRequirements {
	method, _ := json.Marshal(TransferBOLT11)
	flow, _ := json.Marshal(PaymentFlowUpfront)
	inv, _ := json.Marshal(invoice)
	return PaymentRequirements{
		Scheme: SchemeExact, Network: network, Amount: strconv.FormatUint(amountMsat, 10),
		Asset: AssetBTC, PayTo: payTo, MaxTimeoutSeconds: expirySeconds,
		Extra: map[string]json.RawMessage{ExtraAssetTransferMethod: method, ExtraPaymentFlow: flow, ExtraInvoice: inv},
	}
}

// NewLightningPayment answers accepted with the preimage that paid its
// invoice.
func NewLightningPayment(accepted PaymentRequirements, resource *ResourceInfo, preimage [32]byte) PaymentPayload {
	p, _ := json.Marshal(LightningPayload{Preimage: hexString(preimage[:])})
	return PaymentPayload{X402Version: Version, Resource: resource, Accepted: accepted, Payload: p}
}

// LightningExtra decodes r.Extra; prefix is r's JSON path for errors.
func (r PaymentRequirements) LightningExtra() (LightningExtra, error) {
	return lightningExtra(r, "")
}

func lightningExtra(r PaymentRequirements, prefix string) (LightningExtra, error) {
	var e LightningExtra
	for name, dst := range map[string]*string{
		ExtraAssetTransferMethod: &e.AssetTransferMethod, ExtraPaymentFlow: &e.PaymentFlow, ExtraInvoice: &e.Invoice,
	} {
		raw, ok := r.Extra[name]
		if !ok {
			continue
		}
		if json.Unmarshal(raw, dst) != nil {
			return LightningExtra{}, fail(ReasonInvalidRequirements, prefix+"extra."+name, "not a string")
		}
	}
	return e, nil
}

// ValidateLightningRequirements checks what a client checks before paying
// and a facilitator checks of both sides (draft, "Client Payment
// Construction" 1-2 and "Facilitator Validation" 2-4), short of decoding
// the invoice: scheme, a supported network, asset, a positive msat amount,
// a positive timeout, payTo a compressed key as 66 lowercase hex,
// bolt11/upfront, an invoice. prefix is r's JSON path ("accepted.").
func ValidateLightningRequirements(r PaymentRequirements, prefix string) error {
	switch {
	case r.Scheme != SchemeExact:
		return fail(ReasonUnsupportedScheme, prefix+"scheme", `not "exact"`)
	case !supported(r.Network):
		return fail(ReasonUnsupportedNetwork, prefix+"network", "not a known bip122 network")
	case r.Asset != AssetBTC:
		return fail(ReasonAsset, prefix+"asset", `not "BTC"`)
	case !isDecimal(r.Amount) || r.Amount == "0":
		return fail(ReasonAmount, prefix+"amount", "not a positive integer of msat")
	case r.MaxTimeoutSeconds <= 0:
		return fail(ReasonMaxTimeout, prefix+"maxTimeoutSeconds", "not positive")
	case !isPubKeyHex(r.PayTo):
		return fail(ReasonPayToMalformed, prefix+"payTo", "not a compressed public key in lowercase hex")
	}
	if _, err := strconv.ParseUint(r.Amount, 10, 64); err != nil {
		return fail(ReasonAmount, prefix+"amount", "out of range")
	}
	e, err := lightningExtra(r, prefix)
	if err != nil {
		return err
	}
	switch {
	case e.AssetTransferMethod != "" && e.AssetTransferMethod != TransferBOLT11:
		return fail(ReasonAssetTransferMethod, prefix+"extra.assetTransferMethod", `not "bolt11"`)
	case e.PaymentFlow != PaymentFlowUpfront:
		return fail(ReasonPaymentFlow, prefix+"extra.paymentFlow", `not "upfront"`)
	case e.Invoice == "":
		return fail(ReasonInvoiceMissing, prefix+"extra.invoice", "missing")
	}
	return nil
}

func supported(network string) bool {
	_, ok := NetworkName(network)
	return ok
}

// isPubKeyHex checks the form of a compressed secp256k1 key: 02 or 03 and
// 32 more bytes, lowercase hex. Whether the point is on the curve is left
// to the invoice check (the invoice's signing key must equal it).
func isPubKeyHex(s string) bool {
	if len(s) != 66 || s[0] != '0' || (s[1] != '2' && s[1] != '3') {
		return false
	}
	return isLowerHex(s)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0xf]
	}
	return string(out)
}

// LightningOffers returns the requirements of p a Lightning client can pay
// (those ValidateLightningRequirements accepts), in the server's order.
func (p PaymentRequired) LightningOffers() []PaymentRequirements {
	var out []PaymentRequirements
	for _, r := range p.Accepts {
		if ValidateLightningRequirements(r, "") == nil {
			out = append(out, r)
		}
	}
	return out
}

// NewLightningSettlement is the success answer of /settle and the
// PAYMENT-RESPONSE value: the payment hash as transaction, payer omitted
// (the draft: Lightning reveals no stable payer).
func NewLightningSettlement(network string, paymentHash [32]byte) SettlementResponse {
	return SettlementResponse{Success: true, Transaction: hexString(paymentHash[:]), Network: network}
}

// NewSettlementFailure is a failed /settle answer carrying err's reason
// (unexpected_settle_error when err is not an *Error).
func NewSettlementFailure(network string, err error) SettlementResponse {
	reason := "unexpected_settle_error"
	var e *Error
	if errors.As(err, &e) {
		reason = e.Reason
	}
	return SettlementResponse{Success: false, ErrorReason: reason, Network: network}
}

package x402

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/l402d/l402d/l402/jcs"
)

// DefaultSkew is the draft's default clock-skew allowance.
const DefaultSkew = 60 * time.Second

// Invoice is what the Lightning checks need from a strictly decoded,
// signature-verified BOLT 11 invoice. The caller fills it (with zpay32 in
// the plugin), which keeps this package free of chain parameters.
type Invoice struct {
	// Currency is the BOLT 11 prefix after "ln": "bc", "tb", "tbs", "bcrt".
	Currency string
	// AmountMsat is the invoice amount; 0 for an amountless invoice.
	AmountMsat uint64
	// Payee is the signing node's compressed public key.
	Payee [33]byte
	// PaymentHash is what the preimage must hash to.
	PaymentHash [32]byte
	// Created is the invoice timestamp; Expiry its expiry duration.
	Created time.Time
	Expiry  time.Duration
	// Descriptions counts the inline "d" fields; HasDescriptionHash says
	// whether an "h" field is present. The draft requires exactly one d
	// and no h.
	Descriptions       int
	HasDescriptionHash bool
}

// InvoiceDecoder strictly decodes and verifies a BOLT 11 invoice for the
// given bip122 network; an error is reported as invoice_decode_failed.
type InvoiceDecoder func(invoice, network string) (Invoice, error)

// CheckLightningInvoice runs the checks a server makes before returning a
// challenge (draft, "PaymentRequirements" 1-7) on its own requirement:
// the requirement is valid and the invoice matches it and is current.
func CheckLightningInvoice(r PaymentRequirements, decode InvoiceDecoder, now time.Time, skew time.Duration) error {
	if err := ValidateLightningRequirements(r, ""); err != nil {
		return err
	}
	e, _ := r.LightningExtra()
	inv, err := decode(e.Invoice, r.Network)
	if err != nil {
		return fail(ReasonInvoiceDecodeFailed, "extra.invoice", err.Error())
	}
	if err := checkInvoice(r, inv, "extra.invoice", now, skew); err != nil {
		return err
	}
	if now.After(inv.Created.Add(inv.Expiry)) {
		return fail(ReasonInvoiceExpired, "extra.invoice", "expired")
	}
	return nil
}

// CheckLightningSettle is the facilitator's /settle validation (draft,
// "Facilitator Validation" 1-7 and the paid-but-expired policy), in the
// draft's order, for the requirement the server issued (req) and the
// client's payload. It returns the payment hash that the caller must now
// insert atomically into its durable replay store, answering
// duplicate_settlement when the hash is already there.
func CheckLightningSettle(req PaymentRequirements, p PaymentPayload, decode InvoiceDecoder, now time.Time, skew time.Duration) ([32]byte, error) {
	var none [32]byte
	if p.X402Version != Version {
		return none, fail(ReasonInvalidVersion, "paymentPayload.x402Version", "not 2")
	}
	a := p.Accepted
	// 1. The echoed core fields equal the requirement's.
	switch {
	case a.Scheme != req.Scheme:
		return none, fail(ReasonUnsupportedScheme, "accepted.scheme", "differs from the requirement")
	case a.Network != req.Network:
		return none, fail(ReasonNetworkMismatch, "accepted.network", "differs from the requirement")
	case a.Amount != req.Amount:
		return none, fail(ReasonAmountMismatch, "accepted.amount", "differs from the requirement")
	case a.Asset != req.Asset:
		return none, fail(ReasonAsset, "accepted.asset", "differs from the requirement")
	case a.PayTo != req.PayTo:
		return none, fail(ReasonPayToMismatch, "accepted.payTo", "differs from the requirement")
	case a.MaxTimeoutSeconds != req.MaxTimeoutSeconds:
		return none, fail(ReasonMaxTimeoutMismatch, "accepted.maxTimeoutSeconds", "differs from the requirement")
	}
	// 2-4. Both sides are valid Lightning requirements with invoices.
	if err := ValidateLightningRequirements(req, "paymentRequirements."); err != nil {
		return none, err
	}
	if err := ValidateLightningRequirements(a, "accepted."); err != nil {
		return none, err
	}
	// 3. Every server-declared extra member but the invoice is echoed
	// unchanged (compared canonically); the client may add members.
	for name, want := range req.Extra {
		if name == ExtraInvoice {
			continue
		}
		got, ok := a.Extra[name]
		if !ok && name == ExtraAssetTransferMethod {
			continue // absent means bolt11, already checked
		}
		if !ok || !sameJSON(want, got) {
			return none, fail(ReasonExtraMismatch, "accepted.extra."+name, "differs from the requirement")
		}
	}
	// 5. The accepted invoice (not necessarily the current challenge's)
	// is decoded and must match the requirement's terms.
	e, _ := a.LightningExtra()
	inv, err := decode(e.Invoice, req.Network)
	if err != nil {
		return none, fail(ReasonInvoiceDecodeFailed, "accepted.extra.invoice", err.Error())
	}
	if err := checkInvoice(req, inv, "accepted.extra.invoice", now, skew); err != nil {
		return none, err
	}
	// 6. The preimage opens the invoice's payment hash.
	var lp struct {
		Preimage *string `json:"preimage"`
	}
	if json.Unmarshal(p.Payload, &lp) != nil || lp.Preimage == nil {
		return none, fail(ReasonPreimageMissing, "payload.preimage", "missing")
	}
	if !isLowerHex(*lp.Preimage) || len(*lp.Preimage)%2 != 0 {
		return none, fail(ReasonPreimageMalformed, "payload.preimage", "not lowercase hex")
	}
	pre, _ := hex.DecodeString(*lp.Preimage)
	if len(pre) != 32 {
		return none, fail(ReasonPreimageLength, "payload.preimage", "not 32 bytes")
	}
	if sha256.Sum256(pre) != inv.PaymentHash {
		return none, fail(ReasonPreimageHashMismatch, "payload.preimage", "does not hash to the invoice's payment hash")
	}
	// 7. Paid-but-expired: valid until the invoice's end plus skew.
	if now.After(inv.Created.Add(inv.Expiry).Add(skew)) {
		return none, fail(ReasonInvoiceExpired, "accepted.extra.invoice", "expired beyond the grace period")
	}
	return inv.PaymentHash, nil
}

// checkInvoice matches a decoded invoice to requirement r (draft checks on
// description, payee, currency, amount, expiry, creation time).
func checkInvoice(r PaymentRequirements, inv Invoice, field string, now time.Time, skew time.Duration) error {
	cur, _ := InvoiceCurrency(r.Network)
	amount, _ := strconv.ParseUint(r.Amount, 10, 64)
	switch {
	case inv.Descriptions != 1 || inv.HasDescriptionHash:
		return fail(ReasonInvoiceDescription, field, "needs exactly one description and no description hash")
	case hexString(inv.Payee[:]) != r.PayTo:
		return fail(ReasonInvoicePayeeMismatch, field, "not signed by payTo")
	case inv.Currency != cur:
		return fail(ReasonInvoiceCurrencyMismatch, field, "currency "+inv.Currency+" is not "+cur)
	case inv.AmountMsat != amount:
		return fail(ReasonInvoiceAmountMismatch, field, "amount differs from the requirement")
	case inv.Expiry != time.Duration(r.MaxTimeoutSeconds)*time.Second:
		return fail(ReasonInvoiceExpiryMismatch, field, "expiry is not maxTimeoutSeconds")
	case inv.Created.After(now.Add(skew)):
		return fail(ReasonInvoiceCreatedInFuture, field, "created in the future")
	}
	return nil
}

// sameJSON compares two JSON values by their canonical forms.
func sameJSON(a, b json.RawMessage) bool {
	ca, err1 := jcs.Canonicalize(a)
	cb, err2 := jcs.Canonicalize(b)
	return err1 == nil && err2 == nil && string(ca) == string(cb)
}

package x402

import (
	"fmt"

	"github.com/l402d/l402d/l402"
)

// Error is every validation failure of this package: the stable reason
// string a facilitator puts in errorReason / invalidReason, the field it
// concerns (a JSON path such as "accepted.extra.invoice"), and what is
// wrong. It unwraps to l402.ErrWrongPreimage for a preimage that does not
// open the hash, l402.ErrExpired for an expired invoice, and
// l402.ErrMalformed otherwise, so one status mapping serves every scheme.
type Error struct {
	Reason  string
	Field   string
	Problem string
}

func (e *Error) Error() string {
	return fmt.Sprintf("x402: %s: %s (%s)", e.Field, e.Problem, e.Reason)
}

func (e *Error) Unwrap() error {
	switch e.Reason {
	case ReasonPreimageHashMismatch:
		return l402.ErrWrongPreimage
	case ReasonInvoiceExpired:
		return l402.ErrExpired
	}
	return l402.ErrMalformed
}

func fail(reason, field, problem string) error {
	return &Error{Reason: reason, Field: field, Problem: problem}
}

// Reasons of the core specification (§9) used here.
const (
	ReasonInvalidPayload      = "invalid_payload"
	ReasonInvalidRequirements = "invalid_payment_requirements"
	ReasonInvalidVersion      = "invalid_x402_version"
	ReasonUnsupportedScheme   = "unsupported_scheme"
)

// Reasons of the Lightning exact draft ("Error Vocabulary").
const (
	ReasonNetworkMismatch           = "network_mismatch"
	ReasonUnsupportedNetwork        = "unsupported_network"
	ReasonAsset                     = "invalid_exact_bip122_asset"
	ReasonAmount                    = "invalid_exact_bip122_amount"
	ReasonAmountMismatch            = "invalid_exact_bip122_amount_mismatch"
	ReasonPayToMismatch             = "invalid_exact_bip122_pay_to_mismatch"
	ReasonPayToMalformed            = "invalid_exact_bip122_pay_to_malformed"
	ReasonMaxTimeoutMismatch        = "invalid_exact_bip122_max_timeout_mismatch"
	ReasonExtraMismatch             = "invalid_exact_bip122_extra_mismatch"
	ReasonAssetTransferMethod       = "invalid_exact_bip122_asset_transfer_method"
	ReasonPaymentFlow               = "invalid_exact_bip122_payment_flow"
	ReasonInvoiceMissing            = "invalid_exact_bip122_invoice_missing"
	ReasonInvoiceDecodeFailed       = "invalid_exact_bip122_invoice_decode_failed"
	ReasonInvoiceDescription        = "invalid_exact_bip122_invoice_description"
	ReasonInvoicePayeeMismatch      = "invalid_exact_bip122_invoice_payee_mismatch"
	ReasonInvoiceCurrencyMismatch   = "invalid_exact_bip122_invoice_currency_mismatch"
	ReasonInvoiceAmountMismatch     = "invalid_exact_bip122_invoice_amount_mismatch"
	ReasonMaxTimeout                = "invalid_exact_bip122_max_timeout"
	ReasonInvoiceExpiryMismatch     = "invalid_exact_bip122_invoice_expiry_mismatch"
	ReasonInvoiceCreatedInFuture    = "invalid_exact_bip122_invoice_created_in_future"
	ReasonDuplicateSettlement       = "duplicate_settlement"
	ReasonPreimageMissing           = "invalid_exact_bip122_preimage_missing"
	ReasonPreimageMalformed         = "invalid_exact_bip122_preimage_malformed"
	ReasonPreimageLength            = "invalid_exact_bip122_preimage_length"
	ReasonPreimageHashMismatch      = "invalid_exact_bip122_preimage_hash_mismatch"
	ReasonInvoiceExpired            = "invalid_exact_bip122_invoice_expired"
	ReasonInvoiceIssuanceDenied     = "exact_bip122_invoice_issuance_denied"
	ReasonPaymentInFlight           = "exact_bip122_payment_in_flight"
	ReasonPaymentNotPaid            = "exact_bip122_payment_not_paid"
	ReasonPayerPreimageHashMismatch = "invalid_exact_bip122_payer_preimage_hash_mismatch"
)

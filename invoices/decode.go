package invoices

import (
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/zpay32"
)

// MaxInvoiceLength bounds a payment request before decoding; BOLT 11
// invoices with many route hints stay well below it.
const MaxInvoiceLength = 7089

// ChainParams returns the parameters of a network by the name LND uses
// ("mainnet", "testnet", "testnet4", "signet", "regtest", "simnet").
func ChainParams(network string) (*chaincfg.Params, error) {
	switch network {
	case "mainnet", "bitcoin":
		return &chaincfg.MainNetParams, nil
	case "testnet", "testnet3":
		return &chaincfg.TestNet3Params, nil
	case "testnet4":
		return &chaincfg.TestNet4Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "simnet":
		return &chaincfg.SimNetParams, nil
	}
	return nil, fmt.Errorf("unknown network %q (want mainnet, testnet, testnet4, signet, regtest or simnet)", network)
}

// DecodeInvoice decodes a BOLT 11 payment request for network. It never
// contacts a node. Errors wrap ErrInvalidInvoice or ErrWrongNetwork.
func DecodeInvoice(invoice, network string) (DecodedInvoice, error) {
	params, err := ChainParams(network)
	if err != nil {
		return DecodedInvoice{}, err
	}
	invoice = strings.TrimSpace(invoice)
	invoice = strings.TrimPrefix(strings.TrimPrefix(invoice, "lightning:"), "LIGHTNING:")
	if invoice == "" {
		return DecodedInvoice{}, fmt.Errorf("%w: empty payment request", ErrInvalidInvoice)
	}
	if len(invoice) > MaxInvoiceLength {
		return DecodedInvoice{}, fmt.Errorf("%w: payment request longer than %d characters", ErrInvalidInvoice, MaxInvoiceLength)
	}
	if !strings.HasPrefix(strings.ToLower(invoice), "ln"+params.Bech32HRPSegwit) || wrongHRP(invoice, params) {
		return DecodedInvoice{}, fmt.Errorf("%w: want an ln%s… invoice for %s", ErrWrongNetwork, params.Bech32HRPSegwit, network)
	}
	inv, err := zpay32.Decode(invoice, params)
	if err != nil {
		return DecodedInvoice{}, fmt.Errorf("%w: %v", ErrInvalidInvoice, err)
	}
	if inv.PaymentHash == nil {
		return DecodedInvoice{}, fmt.Errorf("%w: no payment hash", ErrInvalidInvoice)
	}
	d := DecodedInvoice{
		PaymentHash: lntypes.Hash(*inv.PaymentHash),
		CreatedAt:   inv.Timestamp,
		ExpiresAt:   inv.Timestamp.Add(inv.Expiry()),
		Network:     network,
	}
	if inv.MilliSat != nil {
		d.AmountMsat = int64(*inv.MilliSat)
	}
	if inv.Description != nil {
		d.Description = *inv.Description
	}
	d.DescriptionHash = inv.DescriptionHash != nil
	if inv.Destination != nil {
		d.Destination = fmt.Sprintf("%x", inv.Destination.SerializeCompressed())
	}
	return d, nil
}

// wrongHRP catches the one prefix collision: a regtest invoice ("lnbcrt")
// also starts with mainnet's "lnbc".
func wrongHRP(invoice string, params *chaincfg.Params) bool {
	return params.Bech32HRPSegwit == "bc" && strings.HasPrefix(strings.ToLower(invoice), "lnbcrt")
}

// expiresAt is when an invoice created now with expiry lapses.
func expiresAt(created time.Time, expiry time.Duration) time.Time {
	if expiry <= 0 {
		expiry = time.Hour // BOLT 11's default
	}
	return created.Add(expiry)
}

func btcAmount(sats int64) btcutil.Amount { return btcutil.Amount(sats) }

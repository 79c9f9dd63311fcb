package x402

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/l402d/l402d/l402"
)

// zpayDecode is the InvoiceDecoder the plugin will pass: zpay32 with the
// network's parameters.
func zpayDecode(invoice, network string) (Invoice, error) {
	params := map[string]*chaincfg.Params{
		NetworkMainnet: &chaincfg.MainNetParams, NetworkTestnet: &chaincfg.TestNet3Params,
		NetworkSignet: &chaincfg.SigNetParams, NetworkRegtest: &chaincfg.RegressionNetParams,
	}[network]
	if params == nil {
		return Invoice{}, errors.New("no params")
	}
	inv, err := zpay32.Decode(invoice, params)
	if err != nil {
		return Invoice{}, err
	}
	out := Invoice{Created: inv.Timestamp, Expiry: inv.Expiry(), HasDescriptionHash: inv.DescriptionHash != nil}
	for _, c := range []string{"bcrt", "tbs", "bc", "tb"} {
		if strings.HasPrefix(strings.ToLower(invoice), "ln"+c) {
			out.Currency = c
			break
		}
	}
	if inv.MilliSat != nil {
		out.AmountMsat = uint64(*inv.MilliSat)
	}
	if inv.Description != nil {
		out.Descriptions = 1
	}
	copy(out.Payee[:], inv.Destination.SerializeCompressed())
	if inv.PaymentHash != nil {
		out.PaymentHash = *inv.PaymentHash
	}
	return out, nil
}

// vector returns the draft's requirement and payload; the validation time
// is 1700000000.
func vector(t *testing.T) (PaymentRequirements, PaymentPayload, time.Time) {
	var req PaymentRequirements
	var p PaymentPayload
	if err := json.Unmarshal([]byte(readFixture(t, "bip122-requirements.json")), &req); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(readFixture(t, "bip122-payload.json")), &p); err != nil {
		t.Fatal(err)
	}
	return req, p, time.Unix(1700000000, 0)
}

func TestBip122VectorSettles(t *testing.T) {
	req, p, now := vector(t)
	if err := CheckLightningInvoice(req, zpayDecode, now, DefaultSkew); err != nil {
		t.Fatal(err)
	}
	hash, err := CheckLightningSettle(req, p, zpayDecode, now, DefaultSkew)
	if err != nil {
		t.Fatal(err)
	}
	var s SettlementResponse
	_ = json.Unmarshal([]byte(readFixture(t, "bip122-settlement.json")), &s)
	if hexString(hash[:]) != s.Transaction {
		t.Fatalf("hash %x, the draft's settlement says %s", hash, s.Transaction)
	}
}

func TestCheckLightningSettleRefuses(t *testing.T) {
	req, good, now := vector(t)
	set := func(p *PaymentPayload, name, raw string) {
		extra := map[string]json.RawMessage{}
		for k, v := range p.Accepted.Extra {
			extra[k] = v
		}
		if raw == "" {
			delete(extra, name)
		} else {
			extra[name] = json.RawMessage(raw)
		}
		p.Accepted.Extra = extra
	}
	tests := []struct {
		name   string
		mut    func(*PaymentPayload)
		at     time.Time
		reason string
		is     error
	}{
		{"version", func(p *PaymentPayload) { p.X402Version = 1 }, now, ReasonInvalidVersion, l402.ErrMalformed},
		{"scheme", func(p *PaymentPayload) { p.Accepted.Scheme = "upto" }, now, ReasonUnsupportedScheme, l402.ErrMalformed},
		{"network", func(p *PaymentPayload) { p.Accepted.Network = NetworkTestnet }, now, ReasonNetworkMismatch, nil},
		{"amount", func(p *PaymentPayload) { p.Accepted.Amount = "1000" }, now, ReasonAmountMismatch, nil},
		{"asset", func(p *PaymentPayload) { p.Accepted.Asset = "USDC" }, now, ReasonAsset, nil},
		{"payTo", func(p *PaymentPayload) { p.Accepted.PayTo = strings.Repeat("0", 66) }, now, ReasonPayToMismatch, nil},
		{"timeout", func(p *PaymentPayload) { p.Accepted.MaxTimeoutSeconds = 600 }, now, ReasonMaxTimeoutMismatch, nil},
		{"flow", func(p *PaymentPayload) { set(p, ExtraPaymentFlow, `"deferred"`) }, now, ReasonPaymentFlow, nil},
		{"no flow", func(p *PaymentPayload) { set(p, ExtraPaymentFlow, "") }, now, ReasonPaymentFlow, nil},
		{"method", func(p *PaymentPayload) { set(p, ExtraAssetTransferMethod, `"onchain"`) }, now, ReasonAssetTransferMethod, nil},
		{"no method is bolt11", func(p *PaymentPayload) { set(p, ExtraAssetTransferMethod, "") }, now, "", nil},
		{"client extra member", func(p *PaymentPayload) { set(p, "note", `"hi"`) }, now, "", nil},
		{"no invoice", func(p *PaymentPayload) { set(p, ExtraInvoice, "") }, now, ReasonInvoiceMissing, nil},
		{"bad invoice", func(p *PaymentPayload) { set(p, ExtraInvoice, `"lnbc1garbage"`) }, now, ReasonInvoiceDecodeFailed, nil},
		{"no preimage", func(p *PaymentPayload) { p.Payload = json.RawMessage(`{}`) }, now, ReasonPreimageMissing, nil},
		{"upper preimage", func(p *PaymentPayload) {
			p.Payload = json.RawMessage(`{"preimage":"` + strings.Repeat("AB", 32) + `"}`)
		}, now, ReasonPreimageMalformed, nil},
		{"short preimage", func(p *PaymentPayload) { p.Payload = json.RawMessage(`{"preimage":"abcd"}`) }, now, ReasonPreimageLength, nil},
		{"wrong preimage", func(p *PaymentPayload) {
			p.Payload = json.RawMessage(`{"preimage":"` + strings.Repeat("00", 32) + `"}`)
		}, now, ReasonPreimageHashMismatch, l402.ErrWrongPreimage},
		{"created in future", func(*PaymentPayload) {}, now.Add(-61 * time.Second), ReasonInvoiceCreatedInFuture, nil},
		{"within grace", func(*PaymentPayload) {}, now.Add(360 * time.Second), "", nil},
		{"expired", func(*PaymentPayload) {}, now.Add(361 * time.Second), ReasonInvoiceExpired, l402.ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			tc.mut(&p)
			_, err := CheckLightningSettle(req, p, zpayDecode, tc.at, DefaultSkew)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != tc.reason || e.Field == "" {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v is not %v", err, tc.is)
			}
		})
	}
	// A server-declared extra member must be echoed unchanged.
	r2 := req
	r2.Extra = map[string]json.RawMessage{"tier": json.RawMessage(`{"a":1,"b":2}`)}
	for k, v := range req.Extra {
		r2.Extra[k] = v
	}
	p := good
	p.Accepted = r2
	p.Accepted.Extra = map[string]json.RawMessage{"tier": json.RawMessage(`{ "b":2, "a":1 }`)}
	for k, v := range good.Accepted.Extra {
		p.Accepted.Extra[k] = v
	}
	if _, err := CheckLightningSettle(r2, p, zpayDecode, now, DefaultSkew); err != nil {
		t.Fatalf("canonically equal extra refused: %v", err)
	}
	p.Accepted.Extra["tier"] = json.RawMessage(`{"a":2}`)
	var e *Error
	if _, err := CheckLightningSettle(r2, p, zpayDecode, now, DefaultSkew); !errors.As(err, &e) || e.Reason != ReasonExtraMismatch {
		t.Fatalf("got %v", err)
	}
}

func TestCheckLightningInvoiceRefuses(t *testing.T) {
	req, _, now := vector(t)
	tests := []struct {
		name   string
		mut    func(*PaymentRequirements)
		reason string
	}{
		{"amount", func(r *PaymentRequirements) { r.Amount = "25001" }, ReasonInvoiceAmountMismatch},
		{"timeout", func(r *PaymentRequirements) { r.MaxTimeoutSeconds = 301 }, ReasonInvoiceExpiryMismatch},
		{"payee", func(r *PaymentRequirements) { r.PayTo = "02" + strings.Repeat("ab", 32) }, ReasonInvoicePayeeMismatch},
		{"payTo form", func(r *PaymentRequirements) { r.PayTo = strings.ToUpper(r.PayTo) }, ReasonPayToMalformed},
		{"network", func(r *PaymentRequirements) { r.Network = "bip122:unknown" }, ReasonUnsupportedNetwork},
		{"amount zero", func(r *PaymentRequirements) { r.Amount = "0" }, ReasonAmount},
		{"amount point", func(r *PaymentRequirements) { r.Amount = "25.0" }, ReasonAmount},
	}
	for _, tc := range tests {
		r := req
		tc.mut(&r)
		var e *Error
		if err := CheckLightningInvoice(r, zpayDecode, now, DefaultSkew); !errors.As(err, &e) || e.Reason != tc.reason {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.reason)
		}
	}
	if err := CheckLightningInvoice(req, zpayDecode, now.Add(301*time.Second), DefaultSkew); !errors.Is(err, l402.ErrExpired) {
		t.Errorf("expired invoice offered: %v", err)
	}
	// Currency: the same invoice claimed for testnet fails to decode.
	r := req
	r.Network = NetworkTestnet
	var e *Error
	if err := CheckLightningInvoice(r, zpayDecode, now, DefaultSkew); !errors.As(err, &e) || e.Reason != ReasonInvoiceDecodeFailed {
		t.Errorf("got %v", err)
	}
	// A decoder that accepts it anyway is caught by the currency check.
	lax := func(inv, _ string) (Invoice, error) { return zpayDecode(inv, NetworkMainnet) }
	if err := CheckLightningInvoice(r, lax, now, DefaultSkew); !errors.As(err, &e) || e.Reason != ReasonInvoiceCurrencyMismatch {
		t.Errorf("got %v", err)
	}
}

func TestSettlementHelpers(t *testing.T) {
	req, p, now := vector(t)
	hash, err := CheckLightningSettle(req, p, zpayDecode, now, DefaultSkew)
	if err != nil {
		t.Fatal(err)
	}
	sameAsJSON(t, NewLightningSettlement(req.Network, hash), readFixture(t, "bip122-settlement.json"))
	p.Payload = json.RawMessage(`{}`)
	_, err = CheckLightningSettle(req, p, zpayDecode, now, DefaultSkew)
	if f := NewSettlementFailure(req.Network, err); f.Success || f.ErrorReason != ReasonPreimageMissing || f.Validate() != nil {
		t.Fatalf("%+v", f)
	}
	if f := NewSettlementFailure(req.Network, errors.New("db down")); f.ErrorReason != "unexpected_settle_error" {
		t.Fatalf("%+v", f)
	}
	pr := PaymentRequired{X402Version: 2, Resource: &ResourceInfo{URL: "https://x"}, Accepts: []PaymentRequirements{
		{Scheme: "exact", Network: "eip155:8453", Amount: "1", Asset: "0x", PayTo: "0x", MaxTimeoutSeconds: 60}, req,
	}}
	if offers := pr.LightningOffers(); len(offers) != 1 || offers[0].Network != NetworkMainnet {
		t.Fatalf("%+v", offers)
	}
}

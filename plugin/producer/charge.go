package producer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/l402/x402"
	"github.com/l402d/l402d/storage"
)

// Scheme names a way of paying for a request. One challenge (one invoice)
// is offered in every scheme a service accepts, and one payment buys what
// it was issued for in exactly one of them: the L402 token is reusable
// within its caveats; an MPP charge and an x402 payment are single-use,
// and spending one revokes the token (storage.Store.Consume).
type Scheme string

// Schemes.
const (
	SchemeL402 Scheme = "l402"
	SchemeMPP  Scheme = "mpp"
	SchemeX402 Scheme = "x402"
)

// AllSchemes is every scheme, in the order a 402 offers them.
var AllSchemes = []Scheme{SchemeL402, SchemeMPP, SchemeX402}

// ParseScheme reads a scheme name (lower case, as in a services file).
func ParseScheme(s string) (Scheme, bool) {
	for _, k := range AllSchemes {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

// MPPRealm is the realm of the Payment challenges l402d issues. It is
// bound into each challenge's id, so it must not change between issuing a
// challenge and checking its credential.
const MPPRealm = "l402d"

// Store meta names.
const (
	metaMPPKey  = "mpp_hmac_key"
	metaNetwork = "node_network"
)

// loadMPPKey reads the key that binds Payment challenges, creating it on
// first use. It lives in the store (0600, encrypted with the store when
// that is on) so that challenges survive restarts.
func (p *Producer) loadMPPKey(ctx context.Context) error {
	b, err := p.cfg.Store.Meta(ctx, metaMPPKey)
	switch {
	case err == nil && len(b) == 32:
		p.mppKey = b
		return nil
	case err == nil:
		return fmt.Errorf("producer: the stored MPP key has %d bytes, want 32: %w", len(b), storage.ErrCorrupt)
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("producer: loading the MPP key: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return err
	}
	if err := p.cfg.Store.PutMeta(ctx, metaMPPKey, k); err != nil {
		return fmt.Errorf("producer: storing the MPP key: %w", err)
	}
	p.mppKey = k
	return nil
}

// Network is the LND name of the node's chain ("mainnet", "regtest", …),
// "" until first learned.
func (p *Producer) Network() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.network
}

// MPPChallenge is the Payment charge challenge for ch's invoice: its id
// is bound with the node's MPP key, and it expires with ch's token, so a
// payment made in time is honoured as long as the L402 token of the same
// invoice would be.
func (p *Producer) MPPChallenge(ch Challenge) (mpp.Challenge, error) {
	if len(p.mppKey) == 0 {
		return mpp.Challenge{}, errors.New("producer: MPP is not ready (Start was not called)")
	}
	req := mpp.ChargeRequest{
		Amount:      strconv.FormatInt(ch.PriceSats, 10),
		Currency:    mpp.CurrencySat,
		Description: ch.Description,
		MethodDetails: mpp.ChargeMethodDetails{
			Invoice:     ch.Invoice,
			PaymentHash: ch.PaymentHash.String(),
			Network:     p.Network(),
		},
	}
	if len(req.Description) > MaxDescriptionLen {
		req.Description = ""
	}
	return mpp.NewChargeChallenge(p.mppKey, MPPRealm, req, ch.ValidUntil)
}

// X402Requirements is the x402 Lightning "exact" offer of ch's invoice.
// It fails on a chain x402 has no network id for (simnet).
func (p *Producer) X402Requirements(ch Challenge) (x402.PaymentRequirements, error) {
	inv, err := invoices.DecodeInvoice(ch.Invoice, p.Network())
	if err != nil {
		return x402.PaymentRequirements{}, err
	}
	return p.x402Requirements(ch.Invoice, inv)
}

// x402Requirements offers invoice, already decoded as inv.
func (p *Producer) x402Requirements(invoice string, inv invoices.DecodedInvoice) (x402.PaymentRequirements, error) {
	network := p.Network()
	id, ok := x402.NetworkID(network)
	if !ok {
		return x402.PaymentRequirements{}, fmt.Errorf("producer: x402 has no network id for chain %q", network)
	}
	expiry := int64(inv.ExpiresAt.Sub(inv.CreatedAt) / time.Second)
	return x402.NewLightningRequirements(id, p.Node(), invoice, uint64(inv.AmountMsat), expiry), nil
}

// Charge is what a request carrying a single-use credential claims: the
// payment that opens it and what the request needs it to have bought.
type Charge struct {
	Scheme      Scheme
	PaymentHash lntypes.Hash
	Preimage    lntypes.Preimage
	// Service and Resource must equal the challenge's; either is not
	// checked when empty (the x402 facilitator endpoints know neither:
	// the resource server that calls them checks what was bought).
	Service  string
	Resource string
	// MinPriceSats, when positive, is the least the challenge must have
	// asked: the request's price, for a service priced per request.
	MinPriceSats int64
}

// Consume spends a paid single-use credential once. It checks, without
// calling LND, that the preimage opens the hash, that this node issued
// the hash for c's service and resource, and that the token of the same
// payment has not expired; then it records the spend durably, which also
// revokes that token. Errors wrap l402's verdicts (l402.ErrUnknownToken
// for a hash this node did not issue, ErrWrongService, ErrWrongResource,
// ErrExpired, ErrWrongPreimage) or storage.ErrConsumed; any other error
// is a failure to check.
func (p *Producer) Consume(ctx context.Context, c Charge) (*storage.Challenge, error) {
	rec, err := p.chargeRecord(ctx, c)
	if err == nil {
		rec, err = p.cfg.Store.Consume(ctx, c.PaymentHash, string(c.Scheme))
	}
	if m := p.cfg.Metrics; m != nil {
		m.Verifications.WithLabelValues(ReasonCode(err)).Inc()
	}
	return rec, err
}

// Unconsume gives back a charge Consume spent whose request was never
// served (the gate's upstream did not answer), so that the same
// credential buys it again; see storage.Store.Unconsume.
func (p *Producer) Unconsume(ctx context.Context, c Charge) error {
	undone, err := p.cfg.Store.Unconsume(ctx, c.PaymentHash, string(c.Scheme))
	if err != nil {
		return fmt.Errorf("producer: giving back payment %s: %w", c.PaymentHash, err)
	}
	if undone {
		p.log.Info("gave back a single-use payment: what it paid for was not served", "payment_hash", c.PaymentHash, "scheme", c.Scheme)
	}
	return nil
}

// CheckCharge makes Consume's checks, and that the payment was not spent,
// without spending it.
func (p *Producer) CheckCharge(ctx context.Context, c Charge) (*storage.Challenge, error) {
	rec, err := p.chargeRecord(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := p.cfg.Store.Consumed(ctx, c.PaymentHash); err != nil {
		return nil, err
	}
	return rec, nil
}

func (p *Producer) chargeRecord(ctx context.Context, c Charge) (*storage.Challenge, error) {
	if !c.Preimage.Matches(c.PaymentHash) {
		return nil, l402.ErrWrongPreimage
	}
	rec, err := p.cfg.Store.Challenge(ctx, c.PaymentHash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: payment hash %s was not issued by this node", l402.ErrUnknownToken, c.PaymentHash)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case c.Service != "" && rec.Service != c.Service:
		return nil, fmt.Errorf("%w: paid for service %q, not %q", l402.ErrWrongService, rec.Service, c.Service)
	case c.Resource != "" && rec.Resource != c.Resource:
		return nil, fmt.Errorf("%w: paid for %q; this path is priced by %q", l402.ErrWrongResource, rec.Resource, c.Resource)
	case rec.PriceSats < c.MinPriceSats:
		return nil, fmt.Errorf("%w: paid %d sats; this request costs %d", l402.ErrWrongAmount, rec.PriceSats, c.MinPriceSats)
	}
	if until := tokenValidUntil(rec.Macaroon); !until.IsZero() && p.cfg.Now().After(until) {
		return nil, fmt.Errorf("%w: the payment was good until %s", l402.ErrExpired, until.UTC().Format(time.RFC3339))
	}
	return rec, nil
}

// tokenValidUntil is the expiry of a stored token (zero: none, or the
// token does not decode).
func tokenValidUntil(macB64 string) time.Time {
	mac, err := l402.DecodeMacaroon(macB64)
	if err != nil {
		return time.Time{}
	}
	info, err := l402.Inspect(mac)
	if err != nil {
		return time.Time{}
	}
	return info.ValidUntil
}

// MPPKey is the key that binds this node's Payment challenges, for
// mpp.VerifyCharge.
func (p *Producer) MPPKey() []byte { return p.mppKey }

// CheckMPP verifies a Payment charge credential (form, id under the node's
// key, expiry, preimage) and returns the charge it claims.
func (p *Producer) CheckMPP(cred mpp.Credential, service, resource string) (Charge, error) {
	v, err := mpp.VerifyCharge(p.mppKey, cred, p.cfg.Now())
	if err != nil {
		return Charge{}, err
	}
	return Charge{Scheme: SchemeMPP, PaymentHash: v.PaymentHash, Preimage: v.Preimage, Service: service, Resource: resource}, nil
}

// CheckX402 verifies an x402 payment payload against the requirement this
// node issued for the invoice it accepted (x402.CheckLightningSettle), and
// against given, the requirement a resource server passed to the
// facilitator endpoints, when not nil; it returns the charge it claims and
// this node's requirement. A payment made in
// time is honoured as long as the L402 token of the same invoice would be
// (the draft leaves paid-but-expired to the facilitator; its 60 s grace
// would refuse a paid buyer that crashed between paying and presenting).
func (p *Producer) CheckX402(ctx context.Context, pl x402.PaymentPayload, given *x402.PaymentRequirements, service, resource string) (Charge, x402.PaymentRequirements, error) {
	e, err := pl.Accepted.LightningExtra()
	if err != nil {
		return Charge{}, x402.PaymentRequirements{}, err
	}
	network := p.Network()
	inv, err := invoices.DecodeInvoice(e.Invoice, network)
	if err != nil {
		return Charge{}, x402.PaymentRequirements{}, &x402.Error{Reason: x402.ReasonInvoiceDecodeFailed, Field: "accepted.extra.invoice", Problem: err.Error()}
	}
	rec, err := p.cfg.Store.Challenge(ctx, inv.PaymentHash)
	if errors.Is(err, storage.ErrNotFound) {
		return Charge{}, x402.PaymentRequirements{}, fmt.Errorf("%w: the invoice was not issued by this node", l402.ErrUnknownToken)
	}
	if err != nil {
		return Charge{}, x402.PaymentRequirements{}, err
	}
	if rec.Invoice != e.Invoice {
		// Another encoding of the same payment hash: not the invoice
		// this node issued.
		return Charge{}, x402.PaymentRequirements{}, &x402.Error{Reason: x402.ReasonInvoiceDecodeFailed, Field: "accepted.extra.invoice", Problem: "not the invoice this node issued"}
	}
	req, err := p.x402Requirements(rec.Invoice, inv)
	if err != nil {
		return Charge{}, x402.PaymentRequirements{}, err
	}
	grace := x402.DefaultSkew
	if until := tokenValidUntil(rec.Macaroon); until.IsZero() {
		grace = 100 * 365 * 24 * time.Hour
	} else if g := until.Sub(inv.ExpiresAt); g > grace {
		grace = g
	}
	// The accepted invoice is decoded (and its signature checked) once.
	decoded, derr := x402Invoice(inv, network)
	decode := func(s, nw string) (x402.Invoice, error) {
		if s == e.Invoice && derr == nil && nw == mustNetworkID(network) {
			return decoded, nil
		}
		return x402Decoder(s, nw)
	}
	hash, err := x402.CheckLightningSettle(req, pl, decode, p.cfg.Now(), grace)
	if err == nil && given != nil {
		_, err = x402.CheckLightningSettle(*given, pl, decode, p.cfg.Now(), grace)
	}
	if err != nil {
		return Charge{}, req, err
	}
	var lp x402.LightningPayload
	_ = json.Unmarshal(pl.Payload, &lp) // CheckLightningSettle read it already
	pre, err := lntypes.MakePreimageFromStr(lp.Preimage)
	if err != nil {
		return Charge{}, req, &x402.Error{Reason: x402.ReasonPreimageMalformed, Field: "payload.preimage", Problem: "not 32 bytes of hex"}
	}
	return Charge{Scheme: SchemeX402, PaymentHash: hash, Preimage: pre, Service: service, Resource: resource}, req, nil
}

// x402Decoder decodes an invoice for x402's checks, offline.
func x402Decoder(invoice, network string) (x402.Invoice, error) {
	name, ok := x402.NetworkName(network)
	if !ok {
		return x402.Invoice{}, fmt.Errorf("unknown network %q", network)
	}
	d, err := invoices.DecodeInvoice(invoice, name)
	if err != nil {
		return x402.Invoice{}, err
	}
	return x402Invoice(d, network)
}

// mustNetworkID is the bip122 id of an LND chain name, "" for none.
func mustNetworkID(name string) string {
	id, _ := x402.NetworkID(name)
	return id
}

// x402Invoice is what x402's checks read of a decoded invoice; network is
// its bip122 id or LND name.
func x402Invoice(d invoices.DecodedInvoice, network string) (x402.Invoice, error) {
	if name, ok := x402.NetworkName(network); ok {
		network = name
	}
	id, ok := x402.NetworkID(network)
	if !ok {
		return x402.Invoice{}, fmt.Errorf("unknown network %q", network)
	}
	out := x402.Invoice{
		AmountMsat:         uint64(max(d.AmountMsat, 0)),
		PaymentHash:        d.PaymentHash,
		Created:            d.CreatedAt,
		Expiry:             d.ExpiresAt.Sub(d.CreatedAt),
		HasDescriptionHash: d.DescriptionHash,
	}
	out.Currency, _ = x402.InvoiceCurrency(id) // DecodeInvoice refused other chains
	if !d.DescriptionHash {
		out.Descriptions = 1 // zpay32 keeps one d field; BOLT 11 needs d or h
	}
	if b, err := hex.DecodeString(d.Destination); err == nil && len(b) == 33 {
		copy(out.Payee[:], b)
	}
	return out, nil
}

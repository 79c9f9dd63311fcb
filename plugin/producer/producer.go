// Package producer is the earning side of l402d: it issues L402
// challenges (an invoice from the node's own LND plus a macaroon bound to
// resource, price and node) and verifies the tokens payers present.
//
// Issuing needs LND; verifying never does. The package touches the store
// and the Lightning backend, and nothing of HTTP: the REST API, the gate
// and the MCP server all call it.
package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lightningnetwork/lnd/lntypes"
	"golang.org/x/sync/singleflight"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/storage"
)

// Defaults for zero Config fields.
const (
	DefaultMaxPriceSats      = 1_000_000
	DefaultInvoiceExpiry     = 10 * time.Minute
	DefaultTokenValidity     = 24 * time.Hour
	DefaultIdempotencyWindow = 60 * time.Second
	MaxResourceLen           = 1024
	// MaxDescriptionLen is BOLT 11's limit on a description field.
	MaxDescriptionLen = 639
	// MaxIdempotencyKeyLen is the seed API's limit on X-Idempotency-Key.
	MaxIdempotencyKeyLen = 256
)

// metaNodeKey is where the node's public key is remembered, so tokens can
// be minted and checked against it while LND is unreachable.
const metaNodeKey = "node_pubkey"

// Config configures a Producer.
type Config struct {
	Store   *storage.Store
	Backend invoices.Backend
	Metrics *metrics.Metrics // optional
	Logger  *slog.Logger

	// MaxPriceSats caps the price of one challenge.
	MaxPriceSats int64
	// InvoiceExpiry is how long a challenge's invoice can be paid.
	InvoiceExpiry time.Duration
	// TokenValidity is how long a token stays valid after it is issued;
	// negative means it never expires.
	TokenValidity time.Duration
	// IdempotencyWindow is how long the same client asking for the same
	// resource at the same price gets the same challenge back.
	IdempotencyWindow time.Duration
	// SkipCaveats are caveat conditions accepted without checking.
	SkipCaveats []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Producer issues and verifies L402 tokens.
type Producer struct {
	cfg      Config
	log      *slog.Logger
	verifier *l402.Verifier
	flight   singleflight.Group

	// mppKey binds Payment challenges (loaded by Start).
	mppKey []byte

	refunds refunds

	mu      sync.RWMutex
	node    string // hex pubkey, "" until first learned
	network string // LND's chain name, "" until first learned
}

// New returns a producer. Call Start to learn the node's public key.
func New(cfg Config) (*Producer, error) {
	if cfg.Store == nil || cfg.Backend == nil {
		return nil, errors.New("producer: store and backend are required")
	}
	if cfg.MaxPriceSats <= 0 {
		cfg.MaxPriceSats = DefaultMaxPriceSats
	}
	if cfg.InvoiceExpiry <= 0 {
		cfg.InvoiceExpiry = DefaultInvoiceExpiry
	}
	if cfg.TokenValidity == 0 {
		cfg.TokenValidity = DefaultTokenValidity
	}
	if cfg.IdempotencyWindow <= 0 {
		cfg.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Producer{cfg: cfg, log: cfg.Logger}
	p.verifier = &l402.Verifier{Keys: cfg.Store, Revocations: cfg.Store, Now: cfg.Now, SkipCaveats: cfg.SkipCaveats}
	return p, nil
}

// Start loads the node's public key from the store and refreshes it from
// LND when LND answers. It does not fail when LND is down: verification
// works from the stored key.
func (p *Producer) Start(ctx context.Context) error {
	if b, err := p.cfg.Store.Meta(ctx, metaNodeKey); err == nil {
		p.setNode(string(b))
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("producer: loading node key: %w", err)
	}
	if b, err := p.cfg.Store.Meta(ctx, metaNetwork); err == nil {
		p.setNetwork(string(b))
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("producer: loading the node's chain: %w", err)
	}
	if err := p.loadMPPKey(ctx); err != nil {
		return err
	}
	if _, err := p.refreshNode(ctx); err != nil {
		p.log.Warn("lnd not reachable at start; will retry on first use", "err", err)
	}
	return nil
}

// Node returns the node's public key, hex, or "" if never learned.
func (p *Producer) Node() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.node
}

func (p *Producer) setNode(n string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.node = n
}

func (p *Producer) setNetwork(n string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.network = n
}

// refreshNode asks LND for its key and remembers it. A node key that
// changes under a data dir means l402d was pointed at another node: its
// old tokens stay verifiable only against the old key, so refuse.
func (p *Producer) refreshNode(ctx context.Context) (string, error) {
	info, err := p.cfg.Backend.NodeInfo(ctx)
	if err != nil {
		return "", err
	}
	if info.Network != "" && info.Network != p.Network() {
		if err := p.cfg.Store.PutMeta(ctx, metaNetwork, []byte(info.Network)); err != nil {
			return "", fmt.Errorf("producer: storing the node's chain: %w", err)
		}
		p.setNetwork(info.Network)
	}
	old := p.Node()
	if old == info.Pubkey {
		return old, nil
	}
	if old != "" {
		return "", fmt.Errorf("%w: this data dir belongs to node %s but LND is %s", ErrNodeChanged, old, info.Pubkey)
	}
	if err := p.cfg.Store.PutMeta(ctx, metaNodeKey, []byte(info.Pubkey)); err != nil {
		return "", fmt.Errorf("producer: storing node key: %w", err)
	}
	p.setNode(info.Pubkey)
	p.log.Info("producer bound to node", "pubkey", info.Pubkey)
	return info.Pubkey, nil
}

// ErrNodeChanged: the data dir was used with another LND node.
var ErrNodeChanged = errors.New("lightning node changed")

// Offer is what a challenge sells. Create validates and deduplicates
// offers coming from API clients; the gate issues its own directly.
type Offer struct {
	Resource     string
	PriceSats    int64
	Description  string
	Service      string
	Capabilities []string
	// TokenValidity overrides the producer's default when non-zero;
	// negative means never.
	TokenValidity time.Duration
	// ClientID records who asked, for audits.
	ClientID string
	// Source labels the metric: "api", "gate", "mcp".
	Source string
	// Prepaid sells the token as prepaid credit worth PriceSats (see
	// l402.CondPrepaid); PrepaidOf, if set, makes its payment a top-up of
	// that balance (implies Prepaid).
	Prepaid   bool
	PrepaidOf lntypes.Hash
}

// Challenge is an issued challenge, in the seed API's terms.
type Challenge struct {
	Invoice     string
	Macaroon    string // base64
	PaymentHash lntypes.Hash
	ExpiresAt   time.Time
	Resource    string
	PriceSats   int64
	Description string
	// ValidUntil is when the challenge's token expires (zero: never); a
	// single-use payment of it is honoured until then too.
	ValidUntil time.Time
	// Replayed is true when an idempotent earlier challenge was returned.
	Replayed bool
}

// Issue creates an invoice on the node and a token bound to it, and
// stores both before returning, so an acknowledged challenge always
// verifies once paid.
func (p *Producer) Issue(ctx context.Context, o Offer) (Challenge, error) {
	return p.issueCounted(ctx, o, nil)
}

// issueCounted issues and records metrics; idem, if set, is written with
// the challenge.
func (p *Producer) issueCounted(ctx context.Context, o Offer, idem *storage.Idempotency) (Challenge, error) {
	start := p.cfg.Now()
	ch, err := p.issue(ctx, o, idem)
	if m := p.cfg.Metrics; m != nil {
		if err != nil {
			m.CreateErrors.WithLabelValues(errorReason(err)).Inc()
			if errors.Is(err, invoices.ErrUnavailable) {
				m.LNDUp.Set(0)
			}
		} else {
			m.LNDUp.Set(1)
			m.ChallengesCreated.WithLabelValues(sourceLabel(o.Source), "false").Inc()
			metrics.Since(m.CreateLatency, start)
		}
	}
	return ch, err
}

func (p *Producer) issue(ctx context.Context, o Offer, idem *storage.Idempotency) (Challenge, error) {
	node := p.Node()
	if node == "" {
		var err error
		if node, err = p.refreshNode(ctx); err != nil {
			return Challenge{}, err
		}
	}
	memo := o.Description
	if memo == "" {
		memo = o.Resource
		if len(memo) > MaxDescriptionLen {
			memo = memo[:MaxDescriptionLen]
		}
	}
	inv, err := p.cfg.Backend.AddInvoice(ctx, invoices.AddInvoiceRequest{AmountSats: o.PriceSats, Memo: memo, Expiry: p.cfg.InvoiceExpiry})
	if err != nil {
		return Challenge{}, err
	}
	validity := p.cfg.TokenValidity
	if o.TokenValidity != 0 {
		validity = o.TokenValidity
	}
	now := p.cfg.Now()
	params := l402.MintParams{
		PaymentHash:  inv.PaymentHash,
		Service:      o.Service,
		Capabilities: o.Capabilities,
		Resource:     o.Resource,
		AmountSats:   o.PriceSats,
		Node:         node,
		Prepaid:      o.Prepaid || o.PrepaidOf != (lntypes.Hash{}),
	}
	if validity > 0 {
		// Whole seconds, as the caveat carries it.
		params.ValidUntil = now.Add(validity).Truncate(time.Second)
	}
	if params.TokenID, err = l402.NewTokenID(); err != nil {
		return Challenge{}, err
	}
	key, err := l402.NewRootKey()
	if err != nil {
		return Challenge{}, err
	}
	mac, id, err := l402.MintWithKey(key, params)
	if err != nil {
		return Challenge{}, fmt.Errorf("producer: minting token: %w", err)
	}
	macB64, err := l402.EncodeMacaroon(mac)
	if err != nil {
		return Challenge{}, err
	}
	rec := &storage.Challenge{
		PaymentHash: inv.PaymentHash,
		TokenID:     id.TokenID,
		Resource:    o.Resource,
		Description: o.Description,
		Service:     o.Service,
		PriceSats:   o.PriceSats,
		Invoice:     inv.PaymentRequest,
		Macaroon:    macB64,
		ClientID:    o.ClientID,
		CreatedAt:   now,
		ExpiresAt:   inv.ExpiresAt,
		PrepaidOf:   o.PrepaidOf,
	}
	// The root key, the challenge and the idempotency entry are one
	// durable commit: after it the challenge can be handed out.
	if err := p.cfg.Store.IssueChallenge(ctx, rec, key, idem); err != nil {
		return Challenge{}, fmt.Errorf("producer: storing challenge: %w", err)
	}
	return challengeOf(rec, params.ValidUntil), nil
}

// challengeFrom is the Challenge of a stored challenge, its token's
// expiry read from the token.
func challengeFrom(c *storage.Challenge) Challenge {
	return challengeOf(c, tokenValidUntil(c.Macaroon))
}

// challengeOf is the Challenge of c whose token expires at validUntil
// (zero: never).
func challengeOf(c *storage.Challenge, validUntil time.Time) Challenge {
	return Challenge{
		Invoice:     c.Invoice,
		Macaroon:    c.Macaroon,
		PaymentHash: c.PaymentHash,
		ExpiresAt:   c.ExpiresAt,
		Resource:    c.Resource,
		PriceSats:   c.PriceSats,
		Description: c.Description,
		ValidUntil:  validUntil,
	}
}

// CreateRequest is a challenge request from an API client (REST or MCP).
type CreateRequest struct {
	Resource    string
	PriceSats   int64
	Description string
	// IdempotencyKey is the client's X-Idempotency-Key, if any.
	IdempotencyKey string
	// ClientIP identifies the client when there is no idempotency key.
	ClientIP string
	// Caller identifies the authenticated caller (e.g. an API key id),
	// so two callers never share an idempotency scope.
	Caller string
	Source string
}

// Create validates req and issues a challenge, or returns the one issued
// for the same client, resource and price within the idempotency window.
// Validation errors are *field.Error.
func (p *Producer) Create(ctx context.Context, req CreateRequest) (Challenge, error) {
	if err := p.validate(&req); err != nil {
		if m := p.cfg.Metrics; m != nil {
			m.CreateErrors.WithLabelValues("invalid").Inc()
		}
		return Challenge{}, err
	}
	key := idempotencyKey(req)
	// singleflight: concurrent identical requests wait for one invoice
	// instead of racing to create several.
	v, err, _ := p.flight.Do(key, func() (any, error) {
		if ch, ok, err := p.replay(ctx, key); err != nil || ok {
			return ch, err
		}
		return p.issueCounted(ctx, Offer{
			Resource: req.Resource, PriceSats: req.PriceSats, Description: req.Description,
			ClientID: clientID(req), Source: req.Source,
		}, &storage.Idempotency{Key: key, TTL: p.cfg.IdempotencyWindow})
	})
	if err != nil {
		return Challenge{}, err
	}
	return v.(Challenge), nil
}

// replay returns the challenge recorded under key, if it can still be paid.
func (p *Producer) replay(ctx context.Context, key string) (Challenge, bool, error) {
	hash, ok, err := p.cfg.Store.Idempotency(ctx, key)
	if err != nil || !ok {
		return Challenge{}, false, err
	}
	rec, err := p.cfg.Store.Challenge(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return Challenge{}, false, nil
	}
	if err != nil {
		return Challenge{}, false, err
	}
	if rec.State != storage.StatePending {
		return Challenge{}, false, nil // paid or expired: issue a fresh one
	}
	ch := challengeFrom(rec)
	ch.Replayed = true
	if m := p.cfg.Metrics; m != nil {
		m.ChallengesCreated.WithLabelValues("api", "true").Inc()
	}
	return ch, true, nil
}

// idempotencyKey scopes a request: caller, client (key or IP), resource
// and price, hashed so the store key is fixed-size whatever the input.
func idempotencyKey(r CreateRequest) string {
	h := sha256.New()
	for _, part := range []string{r.Caller, clientID(r), r.Resource, fmt.Sprint(r.PriceSats)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "create/" + hex.EncodeToString(h.Sum(nil))
}

func clientID(r CreateRequest) string {
	if r.IdempotencyKey != "" {
		return "key:" + r.IdempotencyKey
	}
	return "ip:" + r.ClientIP
}

func (p *Producer) validate(r *CreateRequest) error {
	r.Resource = strings.TrimSpace(r.Resource)
	switch {
	case r.Resource == "":
		return &field.Error{Field: "resource", Problem: "is required", Fix: "give a URL, service name, or description of what you are charging for"}
	case len(r.Resource) > MaxResourceLen:
		return &field.Error{Field: "resource", Problem: fmt.Sprintf("is %d bytes long", len(r.Resource)), Fix: fmt.Sprintf("use at most %d bytes", MaxResourceLen)}
	case !utf8.ValidString(r.Resource) || strings.ContainsFunc(r.Resource, isControl):
		return &field.Error{Field: "resource", Problem: "contains invalid UTF-8 or control characters", Fix: "send printable text"}
	case r.PriceSats <= 0:
		return &field.Error{Field: "priceSats", Problem: fmt.Sprintf("is %d", r.PriceSats), Fix: "price must be greater than 0 sats"}
	case r.PriceSats > p.cfg.MaxPriceSats:
		return &field.Error{Field: "priceSats", Problem: fmt.Sprintf("is %d", r.PriceSats), Fix: fmt.Sprintf("price must be at most %d sats (the node's configured maximum)", p.cfg.MaxPriceSats)}
	case len(r.Description) > MaxDescriptionLen:
		return &field.Error{Field: "description", Problem: fmt.Sprintf("is %d bytes long", len(r.Description)), Fix: fmt.Sprintf("use at most %d bytes (BOLT 11's limit)", MaxDescriptionLen)}
	case !utf8.ValidString(r.Description):
		return &field.Error{Field: "description", Problem: "is not valid UTF-8", Fix: "send UTF-8 text"}
	case len(r.IdempotencyKey) > MaxIdempotencyKeyLen:
		return &field.Error{Field: "X-Idempotency-Key", Problem: fmt.Sprintf("is %d characters long", len(r.IdempotencyKey)), Fix: fmt.Sprintf("use at most %d characters", MaxIdempotencyKeyLen)}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func sourceLabel(s string) string {
	if s == "" {
		return "api"
	}
	return s
}

// errorReason labels a create error for metrics.
func errorReason(err error) string {
	var fe *field.Error
	switch {
	case errors.As(err, &fe):
		return "invalid"
	case errors.Is(err, invoices.ErrUnavailable):
		return "lnd_unavailable"
	case errors.Is(err, ErrNodeChanged):
		return "node_changed"
	}
	return "internal"
}

package l402

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"gopkg.in/macaroon.v2"
)

// Location is the macaroon location this package mints with. Clients
// ignore it; it only helps a human reading a decoded token.
const Location = "l402"

// MintParams says what a new token is for. Only PaymentHash is required;
// every other set field becomes a caveat that binds the token.
type MintParams struct {
	// PaymentHash is the hash of the invoice that pays for the token.
	PaymentHash lntypes.Hash
	// TokenID is the id to mint under; zero means a fresh random one.
	TokenID TokenID

	// Service, when set, restricts the token to that service
	// ("services=<name>:<tier>").
	Service string
	Tier    uint8
	// Capabilities granted on Service ("<service>_capabilities=a,b").
	Capabilities []string

	// Resource binds the token to one resource (a trailing "*" binds it
	// to a prefix).
	Resource string
	// AmountSats records the price of the token.
	AmountSats int64
	// Node is the issuing node's public key, hex.
	Node string
	// Prepaid marks the token as prepaid credit (see CondPrepaid).
	Prepaid bool
	// ValidUntil, when set, is when the token stops being valid. With a
	// Service it is written as "<service>_valid_until", else as
	// "valid_until".
	ValidUntil time.Time
}

// Caveats returns the caveats a token minted with p carries, in order.
func (p MintParams) Caveats() ([]Caveat, error) {
	var cavs []Caveat
	if p.Service != "" {
		c, err := ServicesCaveat(Service{Name: p.Service, Tier: p.Tier})
		if err != nil {
			return nil, err
		}
		cavs = append(cavs, c)
		if len(p.Capabilities) > 0 {
			for _, c := range p.Capabilities {
				if c == "" || strings.ContainsAny(c, ", \t\r\n") {
					return nil, fmt.Errorf("%w: capability %q may not be empty or contain , or spaces",
						ErrMalformed, truncate(c))
				}
			}
			cavs = append(cavs, Caveat{p.Service + CondCapabilitiesSuffix, strings.Join(p.Capabilities, ",")})
		}
	} else if len(p.Capabilities) > 0 {
		return nil, fmt.Errorf("%w: capabilities need a service", ErrMalformed)
	}
	if !p.ValidUntil.IsZero() {
		cond := CondValidUntil
		if p.Service != "" {
			cond = p.Service + CondValidUntilSuffix
		}
		cavs = append(cavs, Caveat{cond, strconv.FormatInt(p.ValidUntil.Unix(), 10)})
	}
	if p.Resource != "" {
		cavs = append(cavs, Caveat{CondResource, p.Resource})
	}
	if p.AmountSats < 0 {
		return nil, fmt.Errorf("%w: negative amount %d", ErrMalformed, p.AmountSats)
	}
	if p.AmountSats > 0 {
		cavs = append(cavs, Caveat{CondAmount, strconv.FormatInt(p.AmountSats, 10)})
	}
	if p.Node != "" {
		cavs = append(cavs, Caveat{CondNode, p.Node})
	}
	if p.Prepaid {
		cavs = append(cavs, Caveat{CondPrepaid, "1"})
	}
	return cavs, nil
}

// Mint creates a token for p. It stores a fresh root key under the token
// id first (keys.NewRootKey is durable), so a token that leaves this
// function can always be verified later.
func Mint(ctx context.Context, keys RootKeyStore, p MintParams) (*macaroon.Macaroon, Identifier, error) {
	if _, err := p.Caveats(); err != nil {
		return nil, Identifier{}, err // before a key is stored for nothing
	}
	if p.TokenID == (TokenID{}) {
		var err error
		if p.TokenID, err = NewTokenID(); err != nil {
			return nil, Identifier{}, err
		}
	}
	key, err := keys.NewRootKey(ctx, p.TokenID)
	if err != nil {
		return nil, Identifier{}, fmt.Errorf("l402: storing root key: %w", err)
	}
	return MintWithKey(key, p)
}

// MintWithKey creates a token for p under a root key the caller generated
// and will store itself, durably, before handing the token out; it is for
// callers that write the key together with other records in one commit.
// p.TokenID must be set.
func MintWithKey(key [RootKeySize]byte, p MintParams) (*macaroon.Macaroon, Identifier, error) {
	if p.TokenID == (TokenID{}) {
		return nil, Identifier{}, fmt.Errorf("%w: MintWithKey needs a token id", ErrMalformed)
	}
	cavs, err := p.Caveats()
	if err != nil {
		return nil, Identifier{}, err
	}
	id := Identifier{Version: IdentifierVersion, PaymentHash: p.PaymentHash, TokenID: p.TokenID}
	rawID, err := id.MarshalBinary()
	if err != nil {
		return nil, Identifier{}, err
	}
	mac, err := NewMacaroon(key, rawID, cavs)
	if err != nil {
		return nil, Identifier{}, err
	}
	return mac, id, nil
}

// NewRootKey returns a fresh random root key.
func NewRootKey() ([RootKeySize]byte, error) {
	var k [RootKeySize]byte
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("l402: reading randomness: %w", err)
	}
	return k, nil
}

// NewMacaroon builds a V2 macaroon from a root key, a raw identifier and
// caveats. Mint is the usual entry point; this one exists for tests and
// for re-creating a token from its parts.
func NewMacaroon(rootKey [RootKeySize]byte, rawID []byte, cavs []Caveat) (*macaroon.Macaroon, error) {
	mac, err := macaroon.New(rootKey[:], rawID, Location, macaroon.V2)
	if err != nil {
		return nil, fmt.Errorf("l402: creating macaroon: %w", err)
	}
	for _, c := range cavs {
		if err := mac.AddFirstPartyCaveat([]byte(c.String())); err != nil {
			return nil, fmt.Errorf("l402: adding caveat %s: %w", c.Condition, err)
		}
	}
	return mac, nil
}

// AddCaveats appends caveats to a copy of mac, as any holder may do to
// narrow a token before passing it on.
func AddCaveats(mac *macaroon.Macaroon, cavs ...Caveat) (*macaroon.Macaroon, error) {
	out := mac.Clone()
	for _, c := range cavs {
		if err := out.AddFirstPartyCaveat([]byte(c.String())); err != nil {
			return nil, fmt.Errorf("l402: adding caveat %s: %w", c.Condition, err)
		}
	}
	return out, nil
}

package l402

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/macaroon.v2"
)

// Verifier checks L402 credentials against stored root keys. It never
// talks to a Lightning node: a valid preimage is the proof of payment.
type Verifier struct {
	// Keys holds the root keys; required.
	Keys RootKeyStore
	// Revocations, when set, is consulted last.
	Revocations RevocationChecker
	// Now is the clock for expiry caveats; nil means time.Now.
	Now func() time.Time
	// SkipCaveats lists conditions accepted without being checked. Any
	// other condition this package does not know makes a token invalid:
	// it is a restriction someone added that cannot be honoured.
	SkipCaveats []string
}

// Expect describes the request a credential must be good for. Empty fields
// mean "this request is not about that", and a token restricted in that
// respect is refused, since its restriction cannot be checked.
type Expect struct {
	// Service the request is for; the token's services caveat must list it.
	Service string
	// Capability the request needs on Service, if the token limits them.
	Capability string
	// Resource the request is for; the token's resource caveats must
	// cover it.
	Resource string
	// AnyResource accepts a resource-bound token without binding the
	// request to a resource; Verified.Resource then says what the token
	// is for. It is for callers that ask "is this token good?" rather
	// than "is it good for this resource?", as the producer API does.
	AnyResource bool
	// LiteralResource compares resource caveats as literals: a trailing
	// "*" is then part of the name, not a prefix. Tokens minted for
	// resources an API client named are checked this way, so no client
	// can buy a wildcard; only the gate's configured services mint
	// prefixes.
	LiteralResource bool
	// AmountSats, when positive, is the least the token must record as paid.
	AmountSats int64
	// Node is this node's public key; a token naming another is refused.
	Node string
	// Expired accepts a token past its expiry, for the one thing an
	// expired token may still do: have its prepaid balance refunded.
	Expired bool
}

// Verified is what a valid credential proves.
type Verified struct {
	Identifier
	// Services are those of the token's first services caveat.
	Services []Service
	// Resource is the resource the token was issued for, "" if none.
	Resource string
	// AmountSats is the price the issuer recorded, 0 if none.
	AmountSats int64
	// Node is the issuing node recorded in the token, "" if none.
	Node string
	// ValidUntil is the earliest expiry that applies, zero if none.
	ValidUntil time.Time
	// Prepaid is true for a token sold as prepaid credit (CondPrepaid):
	// it buys requests only while its balance at the issuer lasts.
	Prepaid bool
}

// Credential is what a client presents: a token and the preimage that
// proves its invoice was paid.
type Credential struct {
	Macaroon *macaroon.Macaroon
	Preimage [32]byte
}

// Verify checks cred for the request described by want. The order is
// fixed, cheapest first: identifier, preimage against payment hash, root
// key, signature, caveats, revocation. Errors wrap the package's sentinel
// errors (ErrWrongPreimage, ErrExpired, …) for callers to branch on.
func (v *Verifier) Verify(ctx context.Context, cred Credential, want Expect) (Verified, error) {
	if cred.Macaroon == nil {
		return Verified{}, fmt.Errorf("%w: no macaroon", ErrMalformed)
	}
	id, err := DecodeIdentifier(cred.Macaroon.Id())
	if err != nil {
		return Verified{}, err
	}
	hash := sha256.Sum256(cred.Preimage[:])
	if subtle.ConstantTimeCompare(hash[:], id.PaymentHash[:]) != 1 {
		return Verified{}, fmt.Errorf("%w: sha256(preimage) != %x", ErrWrongPreimage, id.PaymentHash[:])
	}
	key, err := v.Keys.RootKey(ctx, id.TokenID)
	if err != nil {
		if errors.Is(err, ErrUnknownToken) {
			return Verified{}, fmt.Errorf("%w: no root key for token %s", ErrUnknownToken, id.TokenID)
		}
		return Verified{}, fmt.Errorf("l402: root key lookup: %w", err)
	}
	conds, err := cred.Macaroon.VerifySignature(key[:], nil)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	out := Verified{Identifier: id}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if err := v.checkCaveats(conds, want, now(), cred.Preimage, &out); err != nil {
		return Verified{}, err
	}
	if v.Revocations != nil {
		revoked, err := v.Revocations.IsRevoked(ctx, id.TokenID)
		if err != nil {
			return Verified{}, fmt.Errorf("l402: revocation lookup: %w", err)
		}
		if revoked {
			return Verified{}, fmt.Errorf("%w: token %s", ErrRevoked, id.TokenID)
		}
	}
	return out, nil
}

// caveatState accumulates what the caveats seen so far allow.
type caveatState struct {
	services     []Service
	caps         []string
	until        time.Time // from valid_until
	svcUntil     time.Time // from <service>_valid_until
	resource     string
	haveServices bool
	haveCaps     bool
	haveRes      bool
	haveAmount   bool
	haveNode     bool
}

// checkCaveats applies every caveat in order. A caveat repeated later may
// only narrow an earlier one; each must also hold for the request.
func (v *Verifier) checkCaveats(conds []string, want Expect, now time.Time, preimage [32]byte, out *Verified) error {
	var st caveatState
	for _, raw := range conds {
		c, err := ParseCaveat(raw)
		if err != nil {
			return err
		}
		if err := v.checkCaveat(c, want, preimage, &st, out); err != nil {
			return err
		}
	}

	if st.haveServices {
		if want.Service == "" {
			return fmt.Errorf("%w: token is restricted to services %q", ErrWrongService, serviceNames(st.services))
		}
		if !slices.ContainsFunc(st.services, func(s Service) bool { return s.Name == want.Service }) {
			return fmt.Errorf("%w: token is for %q, not %q", ErrWrongService, serviceNames(st.services), want.Service)
		}
	} else if want.Service != "" {
		return fmt.Errorf("%w: token names no service, want %q", ErrWrongService, want.Service)
	}
	if st.haveCaps && want.Capability != "" && !slices.Contains(st.caps, want.Capability) {
		return fmt.Errorf("%w: %q not in %q", ErrCapability, want.Capability, strings.Join(st.caps, ","))
	}
	if st.haveRes {
		if want.Resource == "" && !want.AnyResource {
			return fmt.Errorf("%w: token is bound to resource %q", ErrWrongResource, truncate(out.Resource))
		}
	} else if want.Resource != "" {
		return fmt.Errorf("%w: token is not bound to a resource, want %q", ErrWrongResource, truncate(want.Resource))
	}
	if want.AmountSats > 0 && out.AmountSats < want.AmountSats {
		return fmt.Errorf("%w: token records %d sats, want at least %d", ErrWrongAmount, out.AmountSats, want.AmountSats)
	}
	if st.haveNode && want.Node == "" {
		return fmt.Errorf("%w: token names node %s, which cannot be checked here", ErrWrongNode, truncate(out.Node))
	}
	if until := earliest(st.until, st.svcUntil); !until.IsZero() {
		out.ValidUntil = until
		if now.After(until) && !want.Expired {
			return fmt.Errorf("%w: valid until %s", ErrExpired, until.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// checkCaveat applies one caveat to the state and the request.
func (v *Verifier) checkCaveat(c Caveat, want Expect, preimage [32]byte, st *caveatState, out *Verified) error {
	switch c.Condition {
	case CondServices:
		svcs, err := ParseServices(c.Value)
		if err != nil {
			return err
		}
		if st.haveServices {
			for _, s := range svcs {
				if !slices.ContainsFunc(st.services, func(p Service) bool { return p.Name == s.Name && s.Tier <= p.Tier }) {
					return fmt.Errorf("%w: services %q adds %q", ErrCaveatWidened, truncate(c.Value), s.Name)
				}
			}
		} else {
			out.Services = svcs
		}
		st.services, st.haveServices = svcs, true
		return nil

	case CondValidUntil:
		return narrowUntil(c, &st.until)

	case CondResource:
		if st.haveRes && !resourceNarrows(st.resource, c.Value, want.LiteralResource) {
			return fmt.Errorf("%w: resource %q is wider than %q", ErrCaveatWidened, truncate(c.Value), truncate(st.resource))
		}
		if !st.haveRes {
			out.Resource = c.Value
		}
		st.resource, st.haveRes = c.Value, true
		if want.Resource != "" && !resourceMatches(c.Value, want.Resource, want.LiteralResource) {
			return fmt.Errorf("%w: token is for %q, not %q", ErrWrongResource, truncate(c.Value), truncate(want.Resource))
		}
		return nil

	case CondAmount:
		n, err := strconv.ParseInt(c.Value, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: amount caveat %q is not a number of sats", ErrMalformed, truncate(c.Value))
		}
		if st.haveAmount && n != out.AmountSats {
			return fmt.Errorf("%w: amount %d changes %d", ErrCaveatWidened, n, out.AmountSats)
		}
		out.AmountSats, st.haveAmount = n, true
		return nil

	case CondNode:
		if st.haveNode && c.Value != out.Node {
			return fmt.Errorf("%w: node caveat changes the issuer", ErrCaveatWidened)
		}
		out.Node, st.haveNode = c.Value, true
		if want.Node != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(want.Node)) != 1 {
			return fmt.Errorf("%w: issued by %s", ErrWrongNode, truncate(c.Value))
		}
		return nil

	case CondPrepaid:
		// Anyone holding a token may add this caveat, which only turns
		// the token into credit worth what was paid for it.
		if c.Value != "1" {
			return fmt.Errorf("%w: prepaid caveat %q is not 1", ErrMalformed, truncate(c.Value))
		}
		out.Prepaid = true
		return nil

	case CondPreimage:
		var p [32]byte
		if hex.DecodedLen(len(c.Value)) != len(p) {
			return fmt.Errorf("%w: preimage caveat is not 64 hex characters", ErrMalformed)
		}
		if _, err := hex.Decode(p[:], []byte(c.Value)); err != nil {
			return fmt.Errorf("%w: preimage caveat is not hex", ErrMalformed)
		}
		if subtle.ConstantTimeCompare(p[:], preimage[:]) != 1 {
			return fmt.Errorf("%w: preimage caveat differs from the presented preimage", ErrWrongPreimage)
		}
		return nil
	}

	if svc, ok := strings.CutSuffix(c.Condition, CondCapabilitiesSuffix); ok {
		if svc != want.Service {
			return nil // a restriction on another service
		}
		caps := strings.Split(c.Value, ",")
		if st.haveCaps {
			for _, cp := range caps {
				if !slices.Contains(st.caps, cp) {
					return fmt.Errorf("%w: capability %q added", ErrCaveatWidened, truncate(cp))
				}
			}
		}
		st.caps, st.haveCaps = caps, true
		return nil
	}
	if svc, ok := strings.CutSuffix(c.Condition, CondValidUntilSuffix); ok {
		if svc != want.Service {
			return nil
		}
		return narrowUntil(c, &st.svcUntil)
	}
	if slices.Contains(v.SkipCaveats, c.Condition) {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnknownCaveat, truncate(c.Condition))
}

// narrowUntil applies an expiry caveat; a later one of the same condition
// may not extend it.
func narrowUntil(c Caveat, until *time.Time) error {
	t, err := parseUnix(c)
	if err != nil {
		return err
	}
	if !until.IsZero() && t.After(*until) {
		return fmt.Errorf("%w: %s extends the expiry", ErrCaveatWidened, c.Condition)
	}
	*until = t
	return nil
}

// earliest returns the earlier of two optional times.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func serviceNames(s []Service) string {
	names := make([]string, len(s))
	for i := range s {
		names[i] = s[i].Name
	}
	return strings.Join(names, ",")
}

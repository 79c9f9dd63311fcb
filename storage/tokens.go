package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// Token is an L402 token the consumer bought, cached for reuse on the
// origin it was bought from, for the requests its scope covers.
type Token struct {
	// Origin is scheme://host[:port]; Scope is a path, a path prefix
	// ending in "*", or "service:<name>". The store treats both as
	// opaque (the consumer gives them meaning) but keeps one token per
	// (Origin, Scope).
	Origin string
	Scope  string

	PaymentHash lntypes.Hash
	Preimage    lntypes.Preimage
	// Macaroon is the token, base64 as the issuer sent it.
	Macaroon string
	// Service is the first service the token names, "" if none.
	Service    string
	AmountSats int64
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: no expiry caveat
	// Scheme is SchemeL402 ("" in entries older than schemes) for a
	// reusable token, or a single-use scheme: then the entry is a paid
	// credential not yet presented, Credential its ready header value and
	// Macaroon empty. It is kept until the service answers it.
	Scheme     string
	Credential string
}

// SingleUse reports whether t is a paid single-use credential.
func (t *Token) SingleUse() bool { return SingleUse(t.Scheme) }

// Expired reports whether the token's expiry has passed at now.
func (t *Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// PutToken durably stores t under (t.Origin, t.Scope), replacing what was
// there. A zero CreatedAt is set to now.
func (s *Store) PutToken(ctx context.Context, t *Token) error {
	if err := validateToken(t); err != nil {
		return err
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	k, v := tokenKey(t.Origin, t.Scope), encodeToken(t)
	return s.update(ctx, true, func(txn kvTxn) error { return txn.Set(k, v) })
}

// TokensForOrigin returns the tokens cached for origin, by scope.
func (s *Store) TokensForOrigin(ctx context.Context, origin string) ([]Token, error) {
	if origin == "" || strings.ContainsRune(origin, 0) {
		return nil, nil
	}
	return s.scanTokens(ctx, tokenKey(origin, ""))
}

// ListTokens returns every cached token, by origin and scope.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	return s.scanTokens(ctx, []byte(prefixToken))
}

// DeleteToken removes the token at (origin, scope) if it is still the one
// bought with payment hash h (a newer token there is left alone), and
// reports whether it removed one.
func (s *Store) DeleteToken(ctx context.Context, origin, scope string, h lntypes.Hash) (bool, error) {
	k := tokenKey(origin, scope)
	var deleted bool
	err := s.update(ctx, true, func(txn kvTxn) error {
		deleted = false
		item, err := txn.Get(k)
		if errors.Is(err, errKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		var same bool
		if err := item.Value(func(v []byte) error {
			same = len(v) > 1+lntypes.HashSize && bytes.Equal(v[1:1+lntypes.HashSize], h[:])
			return nil
		}); err != nil {
			return err
		}
		if !same {
			return nil
		}
		deleted = true
		return txn.Delete(k)
	})
	return deleted, err
}

// DeleteTokensByHash removes every cached token bought with payment hash
// h and returns how many it removed.
func (s *Store) DeleteTokensByHash(ctx context.Context, h lntypes.Hash) (int, error) {
	all, err := s.ListTokens(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range all {
		if t.PaymentHash != h {
			continue
		}
		ok, err := s.DeleteToken(ctx, t.Origin, t.Scope, h)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (s *Store) scanTokens(ctx context.Context, prefix []byte) ([]Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Token
	err := s.db.View(ctx, func(txn kvTxn) error {
		return scan(ctx, txn, prefix, decodeToken, func(t *Token) error {
			out = append(out, *t)
			return nil
		})
	})
	return out, err
}

func validateToken(t *Token) error {
	switch {
	case t.Origin == "" || len(t.Origin) > MaxOriginLen || strings.ContainsRune(t.Origin, 0):
		return fmt.Errorf("storage: %w: token origin must be 1 to %d bytes without NUL", ErrInvalid, MaxOriginLen)
	case t.Scope == "" || len(t.Scope) > MaxScopeLen || strings.ContainsRune(t.Scope, 0):
		return fmt.Errorf("storage: %w: token scope must be 1 to %d bytes without NUL", ErrInvalid, MaxScopeLen)
	case t.Scheme != "" && t.Scheme != SchemeL402 && !t.SingleUse():
		return fmt.Errorf("storage: %w: unknown token scheme %q", ErrInvalid, t.Scheme)
	case t.SingleUse() && (t.Credential == "" || len(t.Credential) > MaxCredentialLen || t.Macaroon != ""):
		return fmt.Errorf("storage: %w: a single-use credential must be 1 to %d bytes, without a macaroon", ErrInvalid, MaxCredentialLen)
	case !t.SingleUse() && t.Credential != "":
		return fmt.Errorf("storage: %w: an L402 token carries no separate credential", ErrInvalid)
	case !t.SingleUse() && (t.Macaroon == "" || len(t.Macaroon) > MaxMacaroonLen):
		return fmt.Errorf("storage: %w: token macaroon must be 1 to %d bytes", ErrInvalid, MaxMacaroonLen)
	case lntypes.Hash(sha256.Sum256(t.Preimage[:])) != t.PaymentHash:
		return fmt.Errorf("storage: %w: token preimage does not hash to its payment hash", ErrInvalid)
	case len(t.Service) > MaxServiceLen:
		return fmt.Errorf("storage: %w: token service longer than %d bytes", ErrInvalid, MaxServiceLen)
	case t.AmountSats < 0:
		return fmt.Errorf("storage: %w: negative token amount", ErrInvalid)
	case !representable(t.CreatedAt) || !representable(t.ExpiresAt):
		return fmt.Errorf("storage: %w: token times out of range", ErrInvalid)
	}
	return nil
}

// tokenFormat is the first byte of an encoded token. Format 1 entries
// lack the scheme fields: they are L402 tokens.
const tokenFormat = 2

// encodeToken lays a token out as
//
//	format 1 ‖ payment hash 32 ‖ preimage 32
//	‖ varint amount sats, created, expires (Unix ns)
//	‖ strings (uvarint length ‖ bytes): macaroon, service
//	‖ scheme code ‖ string credential (format 2 on)
//
// Origin and scope are the key's.
func encodeToken(t *Token) []byte {
	b := make([]byte, 0, 1+64+30+len(t.Macaroon)+len(t.Service)+len(t.Credential)+7)
	b = append(b, tokenFormat)
	b = append(b, t.PaymentHash[:]...)
	b = append(b, t.Preimage[:]...)
	b = binary.AppendVarint(b, t.AmountSats)
	b = binary.AppendVarint(b, unixNanos(t.CreatedAt))
	b = binary.AppendVarint(b, unixNanos(t.ExpiresAt))
	b = appendString(b, t.Macaroon)
	b = appendString(b, t.Service)
	b = append(b, codeOf(paymentSchemes[:], t.Scheme))
	return appendString(b, t.Credential)
}

// decodeToken decodes a token entry, origin and scope from its key k.
func decodeToken(k, v []byte) (*Token, error) {
	rest, ok := bytes.CutPrefix(k, []byte(prefixToken))
	origin, scope, found := bytes.Cut(rest, []byte{0})
	if !ok || !found || len(origin) == 0 || len(scope) == 0 {
		return nil, corrupt(k, "token key has no origin and scope")
	}
	r := reader{b: v}
	f := r.byte()
	if r.err == nil && (f < 1 || f > tokenFormat) {
		return nil, corrupt(k, "unknown token format %d", f)
	}
	t := &Token{Origin: string(origin), Scope: string(scope)}
	r.bytes(t.PaymentHash[:])
	r.bytes(t.Preimage[:])
	t.AmountSats = r.varint()
	t.CreatedAt = fromUnixNanos(r.varint())
	t.ExpiresAt = fromUnixNanos(r.varint())
	t.Macaroon = r.string()
	t.Service = r.string()
	scheme := byte(1) // format 1: L402
	if f >= 2 {
		scheme = r.byte()
		t.Credential = r.string()
	}
	if err := r.done(); err != nil {
		return nil, corrupt(k, "token: %v", err)
	}
	if scheme != 0 {
		var ok bool
		if t.Scheme, ok = fromCode(paymentSchemes[:], scheme); !ok {
			return nil, corrupt(k, "unknown token scheme code %d", scheme)
		}
	}
	if err := validateToken(t); err != nil {
		return nil, corrupt(k, "%v", err)
	}
	return t, nil
}

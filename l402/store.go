package l402

import "context"

// RootKeyStore keeps one secret root key per token.
//
// NewRootKey must make the key durable before it returns: a challenge is
// handed to a payer only after its key can no longer be lost. RootKey is on
// the verify path: it must not write, must not block on the network, and
// should answer from memory when it can. It returns an error wrapping
// ErrUnknownToken when no key is stored under id.
type RootKeyStore interface {
	NewRootKey(ctx context.Context, id TokenID) ([RootKeySize]byte, error)
	RootKey(ctx context.Context, id TokenID) ([RootKeySize]byte, error)
}

// RevocationChecker reports whether a token was revoked. Like RootKey it is
// on the verify path and must answer without writing.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, id TokenID) (bool, error)
}

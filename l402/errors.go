package l402

import "errors"

// Errors returned by verification and parsing, wrapped with detail. Callers
// branch on them with errors.Is to choose a status code and a message.
var (
	// ErrMalformed: the token or header could not be decoded.
	ErrMalformed = errors.New("malformed L402 token")
	// ErrNoCredential: the request carried no L402 credential at all.
	ErrNoCredential = errors.New("no L402 credential")
	// ErrWrongPreimage: sha256(preimage) is not the token's payment hash.
	ErrWrongPreimage = errors.New("preimage does not match payment hash")
	// ErrUnknownToken: no root key is stored for the token id.
	ErrUnknownToken = errors.New("unknown token")
	// ErrBadSignature: the macaroon signature does not verify.
	ErrBadSignature = errors.New("macaroon signature is invalid")
	// ErrExpired: a validity caveat has passed.
	ErrExpired = errors.New("token expired")
	// ErrWrongService: the token was not issued for the requested service.
	ErrWrongService = errors.New("token not valid for this service")
	// ErrWrongResource: the token is bound to another resource.
	ErrWrongResource = errors.New("token not valid for this resource")
	// ErrWrongAmount: the token's amount caveat does not match.
	ErrWrongAmount = errors.New("token amount does not match")
	// ErrWrongNode: the token was issued by another node.
	ErrWrongNode = errors.New("token issued by another node")
	// ErrCapability: the token lacks a capability the request needs.
	ErrCapability = errors.New("token lacks the required capability")
	// ErrCaveatWidened: a repeated caveat tried to widen an earlier one.
	ErrCaveatWidened = errors.New("caveat widens an earlier restriction")
	// ErrUnknownCaveat: a caveat this verifier cannot check.
	ErrUnknownCaveat = errors.New("unknown caveat")
	// ErrRevoked: the token was revoked by its issuer.
	ErrRevoked = errors.New("token revoked")
)

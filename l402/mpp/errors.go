package mpp

import (
	"errors"
	"fmt"

	"github.com/l402d/l402d/l402"
)

// FieldError says which field of a challenge, credential, request or
// receipt is wrong and how. It unwraps to l402.ErrMalformed, so a gate maps
// it to 400/401 the same way as a malformed L402 token.
type FieldError struct {
	// Field is the parameter or JSON path, e.g. "realm",
	// "challenge.request", "payload.preimage", "methodDetails.paymentHash".
	Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *FieldError) Error() string { return fmt.Sprintf("mpp: %s: %s", e.Field, e.Problem) }

// Unwrap makes errors.Is(err, l402.ErrMalformed) true.
func (e *FieldError) Unwrap() error { return l402.ErrMalformed }

func fieldErr(field, problem string) error { return &FieldError{Field: field, Problem: problem} }

// Verification failures beyond shape, for errors.Is. Expiry and preimage
// reuse the l402 sentinels so one status mapping serves every scheme.
var (
	// ErrChallengeID: the echoed challenge does not carry the id our key
	// gives it (forged, altered, or issued under another key).
	ErrChallengeID = errors.New("mpp: challenge id does not verify")
	// ErrUnsupported: a method or intent this package does not verify.
	ErrUnsupported = errors.New("mpp: unsupported method or intent")
)

package l402

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/lightningnetwork/lnd/lntypes"
)

const (
	// IdentifierVersion is the identifier version this package mints.
	IdentifierVersion = 0

	// IdentifierSize is the length of an encoded version 0 identifier.
	IdentifierSize = 2 + lntypes.HashSize + TokenIDSize

	// TokenIDSize is the length of a token id.
	TokenIDSize = 32

	// RootKeySize is the length of a macaroon root key.
	RootKeySize = 32
)

// TokenID names one token; its root key is stored under it.
type TokenID [TokenIDSize]byte

// String returns the token id in hex.
func (t TokenID) String() string { return hex.EncodeToString(t[:]) }

// ParseTokenID parses a hex token id.
func ParseTokenID(s string) (TokenID, error) {
	var id TokenID
	if hex.DecodedLen(len(s)) != TokenIDSize {
		return id, fmt.Errorf("%w: token id must be %d hex characters, got %d",
			ErrMalformed, 2*TokenIDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: token id is not hex: %v", ErrMalformed, err)
	}
	return id, nil
}

// NewTokenID returns a random token id.
func NewTokenID() (TokenID, error) {
	var id TokenID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("l402: reading randomness: %w", err)
	}
	return id, nil
}

// Identifier is the fixed part of a token, carried as the macaroon's id.
type Identifier struct {
	Version     uint16
	PaymentHash lntypes.Hash
	TokenID     TokenID
}

// MarshalBinary encodes the identifier in the version 0 layout.
func (id Identifier) MarshalBinary() ([]byte, error) {
	if id.Version != IdentifierVersion {
		return nil, fmt.Errorf("%w: identifier version %d", ErrMalformed, id.Version)
	}
	return id.AppendBinary(make([]byte, 0, IdentifierSize))
}

// AppendBinary appends the version 0 encoding of id to b.
func (id Identifier) AppendBinary(b []byte) ([]byte, error) {
	if id.Version != IdentifierVersion {
		return nil, fmt.Errorf("%w: identifier version %d", ErrMalformed, id.Version)
	}
	b = binary.BigEndian.AppendUint16(b, id.Version)
	b = append(b, id.PaymentHash[:]...)
	return append(b, id.TokenID[:]...), nil
}

// DecodeIdentifier decodes a macaroon identifier. It accepts the binary
// version 0 layout and, for old clients (lsat-js), the same bytes as
// hex-encoded ASCII.
func DecodeIdentifier(b []byte) (Identifier, error) {
	var id Identifier
	if len(b) == 2*IdentifierSize {
		var raw [IdentifierSize]byte
		if _, err := hex.Decode(raw[:], b); err != nil {
			return id, fmt.Errorf("%w: identifier of %d bytes is not hex: %v",
				ErrMalformed, len(b), err)
		}
		return DecodeIdentifier(raw[:])
	}
	if len(b) < 2 {
		return id, fmt.Errorf("%w: identifier is %d bytes, want %d",
			ErrMalformed, len(b), IdentifierSize)
	}
	id.Version = binary.BigEndian.Uint16(b)
	if id.Version != IdentifierVersion {
		return id, fmt.Errorf("%w: identifier version %d is unknown",
			ErrMalformed, id.Version)
	}
	if len(b) != IdentifierSize {
		return id, fmt.Errorf("%w: identifier is %d bytes, want %d",
			ErrMalformed, len(b), IdentifierSize)
	}
	copy(id.PaymentHash[:], b[2:2+lntypes.HashSize])
	copy(id.TokenID[:], b[2+lntypes.HashSize:])
	return id, nil
}

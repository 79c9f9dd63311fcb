package l402

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"gopkg.in/macaroon.v2"
)

// MaxMacaroonSize bounds a decoded macaroon. Real L402 tokens are a few
// hundred bytes; the bound keeps a hostile header from costing much.
const MaxMacaroonSize = 8 << 10

// EncodeMacaroon returns the standard base64 of mac's binary encoding,
// the form L402 headers carry.
func EncodeMacaroon(mac *macaroon.Macaroon) (string, error) {
	b, err := mac.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("l402: encoding macaroon: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeMacaroon decodes a base64 macaroon. It accepts the standard and
// the URL alphabet, with or without padding, since clients send all four.
func DecodeMacaroon(s string) (*macaroon.Macaroon, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, err
	}
	return unmarshalMacaroon(b)
}

// DecodeMacaroonHex decodes a hex macaroon, the form of the Macaroon and
// Grpc-Metadata-Macaroon headers.
func DecodeMacaroonHex(s string) (*macaroon.Macaroon, error) {
	s = strings.TrimSpace(s)
	if len(s) > 2*MaxMacaroonSize {
		return nil, fmt.Errorf("%w: macaroon longer than %d bytes", ErrMalformed, MaxMacaroonSize)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: macaroon is not hex: %v", ErrMalformed, err)
	}
	return unmarshalMacaroon(b)
}

func unmarshalMacaroon(b []byte) (*macaroon.Macaroon, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty macaroon", ErrMalformed)
	}
	var mac macaroon.Macaroon
	if err := mac.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: macaroon does not decode: %v", ErrMalformed, err)
	}
	return &mac, nil
}

// decodeBase64 decodes std or URL base64, padded or not, into a new slice.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, "=")
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: empty macaroon", ErrMalformed)
	}
	if len(s) > base64.RawStdEncoding.EncodedLen(MaxMacaroonSize) {
		return nil, fmt.Errorf("%w: macaroon longer than %d bytes", ErrMalformed, MaxMacaroonSize)
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(b, []byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: macaroon is not base64: %v", ErrMalformed, err)
	}
	return b[:n], nil
}

// ParsePreimage decodes a 64-character hex preimage, either case.
func ParsePreimage(s string) ([32]byte, error) {
	var p [32]byte
	s = strings.TrimSpace(s)
	if len(s) != 2*len(p) {
		return p, fmt.Errorf("%w: preimage must be 64 hex characters, got %d", ErrMalformed, len(s))
	}
	if _, err := hex.Decode(p[:], []byte(s)); err != nil {
		return p, fmt.Errorf("%w: preimage is not hex: %v", ErrMalformed, err)
	}
	return p, nil
}

// ParseToken builds a credential from its two parts as the producer API
// receives them: a base64 macaroon and a hex preimage.
func ParseToken(macaroonB64, preimageHex string) (Credential, error) {
	mac, err := DecodeMacaroon(macaroonB64)
	if err != nil {
		return Credential{}, err
	}
	p, err := ParsePreimage(preimageHex)
	if err != nil {
		return Credential{}, err
	}
	return Credential{Macaroon: mac, Preimage: p}, nil
}

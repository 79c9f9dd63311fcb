package l402

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gopkg.in/macaroon.v2"
)

// Request headers that carry credentials.
const (
	HeaderAuthorization = "Authorization"
	// HeaderMacaroon and HeaderGrpcMacaroon carry a hex macaroon whose
	// preimage is in a "preimage=" caveat, as gRPC clients send it.
	HeaderMacaroon     = "Macaroon"
	HeaderGrpcMacaroon = "Grpc-Metadata-Macaroon"
)

// MaxHeaderSize bounds a credential header value.
const MaxHeaderSize = 16 << 10

// AuthorizationValue renders the Authorization value for a token and its
// preimage: "L402 <base64 macaroon>:<hex preimage>".
func AuthorizationValue(macaroonB64 string, preimage [32]byte) string {
	var b strings.Builder
	b.Grow(len(SchemeL402) + 1 + len(macaroonB64) + 1 + 64)
	b.WriteString(SchemeL402)
	b.WriteByte(' ')
	b.WriteString(macaroonB64)
	b.WriteByte(':')
	var hx [64]byte
	hex.Encode(hx[:], preimage[:])
	b.Write(hx[:])
	return b.String()
}

// FormatCredential renders cred as an Authorization value.
func FormatCredential(cred Credential) (string, error) {
	m, err := EncodeMacaroon(cred.Macaroon)
	if err != nil {
		return "", err
	}
	return AuthorizationValue(m, cred.Preimage), nil
}

// ParseAuthorization parses one Authorization value. It accepts the L402
// and LSAT schemes in any case, standard or URL base64 with or without
// padding, and a preimage in either hex case. When several macaroons are
// listed (comma separated, as the spec allows for discharges), the first
// is the token.
func ParseAuthorization(v string) (Credential, error) {
	if len(v) > MaxHeaderSize {
		return Credential{}, fmt.Errorf("%w: Authorization longer than %d bytes", ErrMalformed, MaxHeaderSize)
	}
	v = strings.TrimSpace(v)
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || (!strings.EqualFold(scheme, SchemeL402) && !strings.EqualFold(scheme, SchemeLSAT)) {
		return Credential{}, fmt.Errorf("%w: Authorization scheme is not L402 or LSAT", ErrNoCredential)
	}
	rest = strings.TrimSpace(rest)
	colon := strings.LastIndexByte(rest, ':')
	if colon < 0 {
		return Credential{}, fmt.Errorf("%w: want \"L402 <macaroon>:<preimage>\", found no ':'", ErrMalformed)
	}
	macs, pre := rest[:colon], rest[colon+1:]
	if first, _, found := strings.Cut(macs, ","); found {
		macs = first
	}
	p, err := ParsePreimage(pre)
	if err != nil {
		return Credential{}, err
	}
	mac, err := DecodeMacaroon(macs)
	if err != nil {
		return Credential{}, err
	}
	return Credential{Macaroon: mac, Preimage: p}, nil
}

// CredentialFromHeader finds the credential in a request's headers. It
// tries every Authorization value in order (the first that parses wins),
// then the Macaroon and Grpc-Metadata-Macaroon headers, whose hex macaroon
// must carry its preimage in a "preimage=" caveat. It returns an error
// wrapping ErrNoCredential when no header carries one at all.
func CredentialFromHeader(h http.Header) (Credential, error) {
	var firstErr error
	for _, v := range h.Values(HeaderAuthorization) {
		c, err := ParseAuthorization(v)
		if err == nil {
			return c, nil
		}
		if firstErr == nil || errors.Is(firstErr, ErrNoCredential) {
			firstErr = err
		}
	}
	for _, name := range []string{HeaderGrpcMacaroon, HeaderMacaroon} {
		v := h.Get(name)
		if v == "" {
			continue
		}
		c, err := macaroonHeaderCredential(v)
		if err == nil {
			return c, nil
		}
		if firstErr == nil || errors.Is(firstErr, ErrNoCredential) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = ErrNoCredential
	}
	return Credential{}, firstErr
}

// macaroonHeaderCredential reads a hex macaroon with a preimage caveat.
func macaroonHeaderCredential(v string) (Credential, error) {
	if len(v) > MaxHeaderSize {
		return Credential{}, fmt.Errorf("%w: macaroon header longer than %d bytes", ErrMalformed, MaxHeaderSize)
	}
	mac, err := DecodeMacaroonHex(v)
	if err != nil {
		return Credential{}, err
	}
	pre, ok := caveatValue(mac, CondPreimage)
	if !ok {
		return Credential{}, fmt.Errorf("%w: macaroon header has no preimage caveat", ErrMalformed)
	}
	p, err := ParsePreimage(pre)
	if err != nil {
		return Credential{}, err
	}
	return Credential{Macaroon: mac, Preimage: p}, nil
}

// caveatValue returns the value of the last first-party caveat named cond.
func caveatValue(mac *macaroon.Macaroon, cond string) (string, bool) {
	var val string
	var found bool
	for _, c := range mac.Caveats() {
		if c.VerificationId != nil {
			continue
		}
		if k, v, ok := strings.Cut(string(c.Id), "="); ok && k == cond {
			val, found = v, true
		}
	}
	return val, found
}

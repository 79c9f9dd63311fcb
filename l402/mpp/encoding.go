package mpp

import (
	"encoding/base64"
	"strings"
)

// b64 is the encoding every MPP field is written in: base64url without
// padding (RFC 4648 §5), as Aperture writes it.
var b64 = base64.RawURLEncoding

// decodeB64 is liberal in what it reads: padded or not, URL or standard
// alphabet (a client that used the wrong one still gets through).
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "+/") {
		return base64.RawStdEncoding.DecodeString(s)
	}
	return b64.DecodeString(s)
}

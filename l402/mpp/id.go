package mpp

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
)

// macInput is what the challenge id MACs, exactly as Aperture does
// (draft-httpauth-payment-00 §5.1.2.1.1): seven positional slots joined by
// "|": realm, method, intent, request, expires, digest, opaque, an absent
// optional slot being the empty string. The strings are taken as sent
// (request and opaque stay base64url text); description is not bound.
func macInput(c Challenge) string {
	return strings.Join([]string{c.Realm, c.Method, c.Intent, c.Request, c.Expires, c.Digest, c.Opaque}, "|")
}

// NewChallengeID returns the id that binds c's fields to key:
// base64url (unpadded) of HMAC-SHA256(key, macInput(c)). c.ID is ignored.
//
// Because the slots are joined by "|", a "|" inside a field would let a
// client move text between adjacent slots without changing the MAC, so a
// field containing "|" is refused.
func NewChallengeID(key []byte, c Challenge) (string, error) {
	for _, f := range []struct{ name, v string }{
		{"realm", c.Realm}, {"method", c.Method}, {"intent", c.Intent}, {"request", c.Request},
		{"expires", c.Expires}, {"digest", c.Digest}, {"opaque", c.Opaque},
	} {
		if strings.Contains(f.v, "|") {
			return "", fieldErr(f.name, `contains "|", the id's slot separator`)
		}
	}
	return computeID(key, c), nil
}

func computeID(key []byte, c Challenge) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macInput(c)))
	return b64.EncodeToString(m.Sum(nil))
}

// VerifyChallengeID reports whether c.ID is the id key gives c's fields,
// comparing in constant time. A field containing "|" never verifies (see
// NewChallengeID), which Aperture does not check.
func VerifyChallengeID(key []byte, c Challenge) bool {
	want, err := NewChallengeID(key, c)
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(want), []byte(c.ID))
}

package l402

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/l402d/l402d/l402/internal/authparam"
)

// Authentication schemes. Scheme names are case-insensitive on the wire.
const (
	SchemeL402 = "L402"
	SchemeLSAT = "LSAT" // the protocol's former name, still sent by old clients
)

// HeaderWWWAuthenticate carries challenges.
const HeaderWWWAuthenticate = "WWW-Authenticate"

// Challenge is one L402 challenge: a token and the invoice that pays for it.
type Challenge struct {
	// Scheme is "L402" or "LSAT" as received; SetChallenge ignores it.
	Scheme string
	// Macaroon is the token, base64 as sent.
	Macaroon string
	// Invoice is the BOLT 11 payment request.
	Invoice string
	// Version is the optional version parameter ("0").
	Version string
}

// HeaderValue renders the challenge in the superset form every parser
// accepts: macaroon and invoice first (what Aperture and most clients
// read), then the newer spec's version and token parameters.
func (c Challenge) HeaderValue(scheme string) string {
	var b strings.Builder
	b.Grow(len(scheme) + 2*len(c.Macaroon) + len(c.Invoice) + 64)
	b.WriteString(scheme)
	b.WriteString(` macaroon="`)
	b.WriteString(c.Macaroon)
	b.WriteString(`", invoice="`)
	b.WriteString(c.Invoice)
	b.WriteString(`", version="0", token="`)
	b.WriteString(c.Macaroon)
	b.WriteString(`"`)
	return b.String()
}

// SetChallenge sets the WWW-Authenticate header for c. With legacyLSAT an
// LSAT twin is sent first, as Aperture does, for clients that only read
// the first challenge and only know the old scheme.
func SetChallenge(h http.Header, c Challenge, legacyLSAT bool) {
	h.Del(HeaderWWWAuthenticate)
	if legacyLSAT {
		h.Add(HeaderWWWAuthenticate, c.HeaderValue(SchemeLSAT))
	}
	h.Add(HeaderWWWAuthenticate, c.HeaderValue(SchemeL402))
}

// ParseChallenges reads every L402 or LSAT challenge from a response's
// WWW-Authenticate values. It is tolerant: several header values,
// several challenges joined by commas in one value, any case of the
// scheme, "macaroon=" or "token=", quoted or bare parameters. Challenges
// of other schemes are skipped; L402 ones are returned before LSAT ones.
func ParseChallenges(values []string) ([]Challenge, error) {
	var l402s, lsats []Challenge
	for _, v := range values {
		for _, raw := range authparam.Split(v) {
			c, ok := challengeFrom(raw)
			if !ok {
				continue
			}
			if strings.EqualFold(c.Scheme, SchemeL402) {
				l402s = append(l402s, c)
			} else {
				lsats = append(lsats, c)
			}
		}
	}
	out := append(l402s, lsats...)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no L402 challenge with a macaroon and an invoice", ErrMalformed)
	}
	return out, nil
}

// ParseChallenge returns the first L402 (else LSAT) challenge in h.
func ParseChallenge(h http.Header) (Challenge, error) {
	cs, err := ParseChallenges(h.Values(HeaderWWWAuthenticate))
	if err != nil {
		return Challenge{}, err
	}
	return cs[0], nil
}

// challengeFrom interprets an L402 (or LSAT) challenge's parameters.
func challengeFrom(r authparam.Challenge) (Challenge, bool) {
	if !strings.EqualFold(r.Scheme, SchemeL402) && !strings.EqualFold(r.Scheme, SchemeLSAT) {
		return Challenge{}, false
	}
	c := Challenge{
		Scheme:   r.Scheme,
		Macaroon: r.Param("macaroon"),
		Invoice:  r.Param("invoice"),
		Version:  r.Param("version"),
	}
	if c.Macaroon == "" {
		c.Macaroon = r.Param("token")
	}
	return c, c.Macaroon != "" && c.Invoice != ""
}

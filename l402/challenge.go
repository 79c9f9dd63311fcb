package l402

import (
	"fmt"
	"net/http"
	"strings"
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
		for _, raw := range splitChallenges(v) {
			c, ok := raw.toChallenge()
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

// rawChallenge is a scheme and its auth-params, before interpretation.
type rawChallenge struct {
	scheme string
	params [][2]string
}

func (r rawChallenge) param(name string) string {
	for _, p := range r.params {
		if strings.EqualFold(p[0], name) {
			return p[1]
		}
	}
	return ""
}

func (r rawChallenge) toChallenge() (Challenge, bool) {
	if !strings.EqualFold(r.scheme, SchemeL402) && !strings.EqualFold(r.scheme, SchemeLSAT) {
		return Challenge{}, false
	}
	c := Challenge{
		Scheme:   r.scheme,
		Macaroon: r.param("macaroon"),
		Invoice:  r.param("invoice"),
		Version:  r.param("version"),
	}
	if c.Macaroon == "" {
		c.Macaroon = r.param("token")
	}
	return c, c.Macaroon != "" && c.Invoice != ""
}

// splitChallenges tokenizes one header value into challenges following
// RFC 9110's grammar loosely: a bare token starts a challenge, and
// name=value pairs (value quoted or not) are its parameters.
func splitChallenges(s string) []rawChallenge {
	var out []rawChallenge
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != '=' {
			i++
		}
		tok := s[start:i]
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '=' && tok != "" {
			i = j + 1
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			var val string
			val, i = readParamValue(s, i)
			if len(out) > 0 {
				last := &out[len(out)-1]
				last.params = append(last.params, [2]string{tok, val})
			}
			continue
		}
		if tok == "" {
			// A stray "=": skip it so the loop always advances.
			i++
			continue
		}
		out = append(out, rawChallenge{scheme: tok})
	}
	return out
}

// readParamValue reads a quoted-string or a bare token starting at i.
func readParamValue(s string, i int) (string, int) {
	if i < len(s) && s[i] == '"' {
		i++
		// Common case: no escapes, so the value is a substring.
		if end := strings.IndexAny(s[i:], "\\\""); end >= 0 && s[i+end] == '"' {
			return s[i : i+end], i + end + 1
		}
		var b strings.Builder
		for i < len(s) {
			switch s[i] {
			case '\\':
				if i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
			case '"':
				return b.String(), i + 1
			default:
				b.WriteByte(s[i])
				i++
			}
		}
		return b.String(), i
	}
	start := i
	for i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
		i++
	}
	return s[start:i], i
}

package mpp

import (
	"net/http"
	"strings"
	"time"

	"github.com/l402d/l402d/l402/internal/authparam"
)

// FormatChallenge renders c as one WWW-Authenticate value, parameters in
// Aperture's order (id, realm, method, intent, request, then expires,
// digest, opaque when set) except that description, when set, comes last:
// Aperture's parser does not understand backslash escapes, so a quote in
// a description would swallow the parameters after it. Every value is
// quoted. It refuses a challenge missing a required field or holding a
// control character, which no header may carry.
func FormatChallenge(c Challenge) (string, error) {
	if err := c.check(""); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(c.Request) + len(c.Realm) + len(c.Description) + len(c.Opaque) + 160)
	b.WriteString(Scheme)
	b.WriteByte(' ')
	first := true
	for _, p := range c.params() {
		if p[1] == "" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(p[0])
		b.WriteByte('=')
		authparam.Quote(&b, p[1])
	}
	return b.String(), nil
}

// SetChallenge adds c as its own WWW-Authenticate value, beside any L402
// challenge already set: Aperture's parser reads one Payment challenge per
// value.
func SetChallenge(h http.Header, c Challenge) error {
	v, err := FormatChallenge(c)
	if err != nil {
		return err
	}
	h.Add(HeaderWWWAuthenticate, v)
	return nil
}

// params lists c's auth-params in the order FormatChallenge writes them.
func (c Challenge) params() [][2]string {
	return [][2]string{
		{"id", c.ID}, {"realm", c.Realm}, {"method", c.Method}, {"intent", c.Intent},
		{"request", c.Request}, {"expires", c.Expires}, {"digest", c.Digest},
		{"opaque", c.Opaque}, {"description", c.Description},
	}
}

// check validates the required fields and the characters of every field;
// prefix names the JSON path ("challenge." inside a credential).
func (c Challenge) check(prefix string) error {
	for i, p := range c.params() {
		if i < 5 && p[1] == "" {
			return fieldErr(prefix+p[0], "missing")
		}
		for j := 0; j < len(p[1]); j++ {
			if ch := p[1][j]; (ch < 0x20 && ch != '\t') || ch == 0x7f {
				return fieldErr(prefix+p[0], "holds a control character")
			}
		}
	}
	return nil
}

// ExpiresAt returns the parsed expires parameter; ok is false when there
// is none.
func (c Challenge) ExpiresAt() (t time.Time, ok bool, err error) {
	if c.Expires == "" {
		return time.Time{}, false, nil
	}
	t, err = time.Parse(time.RFC3339, c.Expires)
	if err != nil {
		return time.Time{}, true, fieldErr("expires", "not an RFC 3339 time")
	}
	return t, true, nil
}

// ParseChallenges reads every Payment challenge from WWW-Authenticate
// values: several values, several challenges per value, any case of the
// scheme and parameter names, quoted or bare values; unknown parameters and
// other schemes are skipped. Challenges of any method and intent are
// returned; the caller picks. With none valid it returns the first
// challenge's *FieldError, or one naming the header when there was no
// Payment challenge at all.
func ParseChallenges(values []string) ([]Challenge, error) {
	var out []Challenge
	var firstErr error
	for _, v := range values {
		for _, raw := range authparam.Split(v) {
			if !strings.EqualFold(raw.Scheme, Scheme) {
				continue
			}
			c, err := challengeFrom(raw)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = fieldErr(HeaderWWWAuthenticate, "no Payment challenge")
		}
		return nil, firstErr
	}
	return out, nil
}

// ParseChallengesHeader is ParseChallenges over h's WWW-Authenticate values.
func ParseChallengesHeader(h http.Header) ([]Challenge, error) {
	return ParseChallenges(h.Values(HeaderWWWAuthenticate))
}

// challengeFrom interprets a Payment challenge's parameters. A parameter
// given twice makes the challenge ambiguous, so it is refused (RFC 9110:
// each name occurs once per challenge).
func challengeFrom(r authparam.Challenge) (Challenge, error) {
	var c Challenge
	fields := map[string]*string{
		"id": &c.ID, "realm": &c.Realm, "method": &c.Method, "intent": &c.Intent,
		"request": &c.Request, "expires": &c.Expires, "digest": &c.Digest,
		"description": &c.Description, "opaque": &c.Opaque,
	}
	seen := map[string]bool{}
	for _, p := range r.Params {
		dst, known := fields[p[0]]
		if !known {
			continue
		}
		if seen[p[0]] {
			return Challenge{}, fieldErr(p[0], "given twice")
		}
		seen[p[0]] = true
		*dst = p[1]
	}
	if err := c.check(""); err != nil {
		return Challenge{}, err
	}
	return c, nil
}

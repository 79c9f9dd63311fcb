package l402

import (
	"strconv"
	"strings"
	"time"

	"gopkg.in/macaroon.v2"
)

// Info is what a token says about itself, read without verifying it. A
// client uses it to decide where a token it bought may be reused and
// until when; nothing here is proof of anything.
type Info struct {
	Identifier Identifier
	Services   []Service
	Resource   string
	AmountSats int64
	Node       string
	// ValidUntil is the earliest expiry the token carries, zero if none.
	ValidUntil time.Time
	// Prepaid marks a token sold as prepaid credit (CondPrepaid).
	Prepaid bool
	Caveats []Caveat
}

// Inspect decodes mac's identifier and caveats without checking anything
// cryptographic. Unparseable caveats are kept in Caveats but otherwise
// ignored.
func Inspect(mac *macaroon.Macaroon) (Info, error) {
	id, err := DecodeIdentifier(mac.Id())
	if err != nil {
		return Info{}, err
	}
	info := Info{Identifier: id}
	for _, raw := range mac.Caveats() {
		if raw.VerificationId != nil {
			continue
		}
		c, err := ParseCaveat(string(raw.Id))
		if err != nil {
			continue
		}
		info.Caveats = append(info.Caveats, c)
		switch {
		case c.Condition == CondServices && info.Services == nil:
			info.Services, _ = ParseServices(c.Value)
		case c.Condition == CondResource && info.Resource == "":
			info.Resource = c.Value
		case c.Condition == CondAmount && info.AmountSats == 0:
			info.AmountSats, _ = strconv.ParseInt(c.Value, 10, 64)
		case c.Condition == CondPrepaid:
			info.Prepaid = true
		case c.Condition == CondNode && info.Node == "":
			info.Node = c.Value
		case c.Condition == CondValidUntil || strings.HasSuffix(c.Condition, CondValidUntilSuffix):
			if t, err := parseUnix(c); err == nil {
				info.ValidUntil = earliest(info.ValidUntil, t)
			}
		}
	}
	return info, nil
}

// Expired reports whether the token's earliest expiry is before now.
func (i Info) Expired(now time.Time) bool {
	return !i.ValidUntil.IsZero() && now.After(i.ValidUntil)
}

package l402

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Caveat conditions this package knows how to check.
const (
	// CondServices lists the services a token is valid for:
	// "services=name:tier,name2:tier".
	CondServices = "services"
	// CondCapabilitiesSuffix, after a service name, lists the
	// capabilities granted for that service: "svc_capabilities=a,b".
	CondCapabilitiesSuffix = "_capabilities"
	// CondValidUntilSuffix, after a service name, is the unix time (s) at
	// which the token stops being valid for that service.
	CondValidUntilSuffix = "_valid_until"
	// CondValidUntil is a service-independent expiry (unix seconds).
	CondValidUntil = "valid_until"
	// CondResource binds a token to one resource. A value ending in "*"
	// matches every resource with that prefix, except where the verifier
	// is told resources are literal (Expect.LiteralResource), as the
	// producer API's verify is.
	CondResource = "resource"
	// CondAmount records the price paid for the token, in satoshis.
	CondAmount = "amount_sats"
	// CondNode records the public key of the issuing node.
	CondNode = "node"
	// CondPreimage carries the preimage inside the macaroon, as gRPC
	// clients that send only a macaroon header do.
	CondPreimage = "preimage"
	// CondPrepaid marks a token sold as prepaid credit ("prepaid=1"): its
	// issuer debits each request from a balance instead of letting the
	// token through until it expires. A verifier that does not know the
	// caveat refuses the token, so credit never passes for a pass.
	CondPrepaid = "prepaid"
)

// Caveat is one first-party caveat, "condition=value".
type Caveat struct {
	Condition string
	Value     string
}

// String encodes the caveat as it is stored in a macaroon.
func (c Caveat) String() string { return c.Condition + "=" + c.Value }

// ParseCaveat splits a raw caveat at its first "=".
func ParseCaveat(s string) (Caveat, error) {
	cond, val, ok := strings.Cut(s, "=")
	if !ok || cond == "" {
		return Caveat{}, fmt.Errorf("%w: caveat %q is not of the form condition=value",
			ErrMalformed, truncate(s))
	}
	return Caveat{Condition: cond, Value: val}, nil
}

// Service names one service and the tier a token grants on it.
type Service struct {
	Name string
	Tier uint8
}

// ServicesCaveat encodes services as a "services" caveat.
func ServicesCaveat(services ...Service) (Caveat, error) {
	if len(services) == 0 {
		return Caveat{}, fmt.Errorf("%w: services caveat needs at least one service", ErrMalformed)
	}
	var b strings.Builder
	for i, s := range services {
		if err := checkServiceName(s.Name); err != nil {
			return Caveat{}, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.Name)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(s.Tier)))
	}
	return Caveat{Condition: CondServices, Value: b.String()}, nil
}

// ParseServices decodes the value of a "services" caveat.
func ParseServices(v string) ([]Service, error) {
	if v == "" {
		return nil, fmt.Errorf("%w: empty services caveat", ErrMalformed)
	}
	var out []Service
	for raw := range strings.SplitSeq(v, ",") {
		name, tier, ok := strings.Cut(raw, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: service %q is not of the form name:tier",
				ErrMalformed, truncate(raw))
		}
		t, err := strconv.ParseUint(tier, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("%w: service %q has a bad tier", ErrMalformed, truncate(raw))
		}
		out = append(out, Service{Name: name, Tier: uint8(t)})
	}
	return out, nil
}

// checkServiceName refuses names that would make caveats ambiguous.
func checkServiceName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty service name", ErrMalformed)
	}
	if strings.ContainsAny(name, ",:= \t\r\n") {
		return fmt.Errorf("%w: service name %q may not contain , : = or spaces",
			ErrMalformed, truncate(name))
	}
	return nil
}

// parseUnix parses a unix-seconds caveat value.
func parseUnix(c Caveat) (time.Time, error) {
	n, err := strconv.ParseInt(c.Value, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: caveat %s has a non-numeric time", ErrMalformed, c.Condition)
	}
	return time.Unix(n, 0), nil
}

// resourceMatches reports whether pattern (a resource caveat value)
// covers resource. A trailing "*" makes the pattern a prefix unless
// literal is set.
func resourceMatches(pattern, resource string, literal bool) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok && !literal {
		return strings.HasPrefix(resource, p)
	}
	return pattern == resource
}

// resourceNarrows reports whether a later resource pattern is at least as
// narrow as an earlier one (with literal set: the same).
func resourceNarrows(earlier, later string, literal bool) bool {
	if p, ok := strings.CutSuffix(earlier, "*"); ok && !literal {
		return strings.HasPrefix(later, p)
	}
	return later == earlier
}

// truncate keeps error messages bounded when echoing untrusted input.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

package x402

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Validate checks a PaymentRequired against §5.1.2: version 2, a resource
// with a URL, at least one well-formed requirement.
func (p PaymentRequired) Validate() error {
	if p.X402Version != Version {
		return fail(ReasonInvalidVersion, "x402Version", "not 2")
	}
	if p.Resource == nil || p.Resource.URL == "" {
		return fail(ReasonInvalidRequirements, "resource.url", "missing")
	}
	if len(p.Accepts) == 0 {
		return fail(ReasonInvalidRequirements, "accepts", "empty")
	}
	for i, r := range p.Accepts {
		if err := r.validate("accepts[" + strconv.Itoa(i) + "]."); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a PaymentPayload against §5.2.2: version 2, a
// well-formed accepted requirement and a payload object. What the payload
// proves is the scheme's business (CheckLightningSettle).
func (p PaymentPayload) Validate() error {
	if p.X402Version != Version {
		return fail(ReasonInvalidVersion, "x402Version", "not 2")
	}
	if err := p.Accepted.validate("accepted."); err != nil {
		return err
	}
	if !isObject(p.Payload) {
		return fail(ReasonInvalidPayload, "payload", "not a JSON object")
	}
	return nil
}

// Validate checks a SettlementResponse against §5.3.2: a network always, a
// transaction on success, a reason on failure.
func (s SettlementResponse) Validate() error {
	switch {
	case s.Network == "":
		return fail(ReasonInvalidPayload, "network", "missing")
	case s.Success && s.Transaction == "":
		return fail(ReasonInvalidPayload, "transaction", "missing on success")
	case !s.Success && s.ErrorReason == "":
		return fail(ReasonInvalidPayload, "errorReason", "missing on failure")
	}
	return nil
}

// validate checks the members every scheme needs; prefix is the JSON path
// of r.
func (r PaymentRequirements) validate(prefix string) error {
	switch {
	case r.Scheme == "":
		return fail(ReasonInvalidRequirements, prefix+"scheme", "missing")
	case !isCAIP2(r.Network):
		return fail(ReasonInvalidRequirements, prefix+"network", "not a CAIP-2 id")
	case !isDecimal(r.Amount):
		return fail(ReasonInvalidRequirements, prefix+"amount", "not a decimal integer")
	case r.Asset == "":
		return fail(ReasonInvalidRequirements, prefix+"asset", "missing")
	case r.PayTo == "":
		return fail(ReasonInvalidRequirements, prefix+"payTo", "missing")
	case r.MaxTimeoutSeconds <= 0:
		return fail(ReasonInvalidRequirements, prefix+"maxTimeoutSeconds", "not positive")
	}
	return nil
}

// isCAIP2 checks namespace:reference (CAIP-2: [-a-z0-9]{3,8} and
// [-_a-zA-Z0-9]{1,32}).
func isCAIP2(s string) bool {
	ns, ref, ok := strings.Cut(s, ":")
	if !ok || len(ns) < 3 || len(ns) > 8 || len(ref) < 1 || len(ref) > 32 {
		return false
	}
	for i := 0; i < len(ns); i++ {
		if c := ns[i]; !(c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	for i := 0; i < len(ref); i++ {
		if c := ref[i]; !(c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// isDecimal: digits only, no sign, point, exponent or leading zero.
func isDecimal(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

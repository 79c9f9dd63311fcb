package mpp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/l402d/l402d/l402"
)

// FormatCredential renders cred as an Authorization value:
// "Payment " + base64url (unpadded) of its JSON, as Aperture reads it.
func FormatCredential(cred Credential) (string, error) {
	if err := cred.check(); err != nil {
		return "", err
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return "", fieldErr("payload", "not JSON: "+err.Error())
	}
	return Scheme + " " + b64.EncodeToString(raw), nil
}

// NewChargeCredential answers challenge c with the preimage that paid it.
func NewChargeCredential(c Challenge, preimage [32]byte) (string, error) {
	p, _ := json.Marshal(ChargePayload{Preimage: hexString(preimage[:])})
	return FormatCredential(Credential{Challenge: c, Payload: p})
}

// ParseCredential decodes one Authorization value of the Payment scheme
// (any case of the scheme name, padded or unpadded, URL or standard
// base64; unknown JSON members ignored). The echoed challenge must have its
// required fields and the payload must be a JSON object; what the payload
// proves is VerifyCharge's business.
func ParseCredential(value string) (Credential, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return Credential{}, fieldErr(HeaderAuthorization, "not the Payment scheme")
	}
	token = strings.TrimSpace(token)
	switch {
	case token == "":
		return Credential{}, fieldErr(HeaderAuthorization, "empty credential")
	case len(token) > maxEncoded:
		return Credential{}, fieldErr(HeaderAuthorization, "credential over 64 KiB")
	}
	raw, err := decodeB64(token)
	if err != nil {
		return Credential{}, fieldErr(HeaderAuthorization, "not base64url")
	}
	var cred Credential
	if err := json.Unmarshal(raw, &cred); err != nil {
		return Credential{}, fieldErr(HeaderAuthorization, "not a JSON credential: "+err.Error())
	}
	if err := cred.check(); err != nil {
		return Credential{}, err
	}
	return cred, nil
}

// CredentialFromHeader returns the first Authorization value of h that is
// a valid Payment credential. With no Payment value at all it returns
// l402.ErrNoCredential; with only invalid ones, the first one's error.
func CredentialFromHeader(h http.Header) (Credential, error) {
	var firstErr error
	for _, v := range h.Values(HeaderAuthorization) {
		scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, Scheme) {
			continue
		}
		cred, err := ParseCredential(v)
		if err == nil {
			return cred, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = l402.ErrNoCredential
	}
	return Credential{}, firstErr
}

func (cred Credential) check() error {
	if err := cred.Challenge.check("challenge."); err != nil {
		return err
	}
	p := bytes.TrimSpace(cred.Payload)
	if len(p) == 0 {
		return fieldErr("payload", "missing")
	}
	if p[0] != '{' || !json.Valid(p) {
		return fieldErr("payload", "not a JSON object")
	}
	return nil
}

// ChargePayload decodes the payload of a lightning charge credential.
func (cred Credential) ChargePayload() (ChargePayload, error) {
	var p ChargePayload
	if err := json.Unmarshal(cred.Payload, &p); err != nil {
		return ChargePayload{}, fieldErr("payload", "not a charge payload: "+err.Error())
	}
	return p, nil
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0xf]
	}
	return string(out)
}

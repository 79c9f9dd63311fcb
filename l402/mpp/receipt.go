package mpp

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// NewChargeReceipt is the receipt of a paid charge: status success, method
// lightning, the payment hash hex as reference, the challenge id, at.
func NewChargeReceipt(paymentHash [32]byte, challengeID string, at time.Time) Receipt {
	return Receipt{
		Status: ReceiptSuccess, Method: MethodLightning,
		Timestamp: at.UTC().Format(time.RFC3339), Reference: hexString(paymentHash[:]),
		ChallengeID: challengeID,
	}
}

// FormatReceipt renders r as a Payment-Receipt value: base64url
// (unpadded) of its JSON.
func FormatReceipt(r Receipt) (string, error) {
	if err := r.check(); err != nil {
		return "", err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return "", fieldErr(HeaderReceipt, err.Error())
	}
	return b64.EncodeToString(raw), nil
}

// SetReceipt sets the Payment-Receipt header of a paid response.
func SetReceipt(h http.Header, r Receipt) error {
	v, err := FormatReceipt(r)
	if err != nil {
		return err
	}
	h.Set(HeaderReceipt, v)
	return nil
}

// ParseReceipt decodes a Payment-Receipt value. Status must be "success"
// and method, timestamp and reference present; unknown members (a session
// receipt's refund fields) are ignored.
func ParseReceipt(value string) (Receipt, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return Receipt{}, fieldErr(HeaderReceipt, "missing")
	}
	if len(value) > maxEncoded {
		return Receipt{}, fieldErr(HeaderReceipt, "over 64 KiB")
	}
	raw, err := decodeB64(value)
	if err != nil {
		return Receipt{}, fieldErr(HeaderReceipt, "not base64url")
	}
	var r Receipt
	if err := json.Unmarshal(raw, &r); err != nil {
		return Receipt{}, fieldErr(HeaderReceipt, "not a JSON receipt: "+err.Error())
	}
	if err := r.check(); err != nil {
		return Receipt{}, err
	}
	return r, nil
}

func (r Receipt) check() error {
	switch {
	case r.Status != ReceiptSuccess:
		return fieldErr("status", `not "success"`)
	case r.Method == "":
		return fieldErr("method", "missing")
	case r.Timestamp == "":
		return fieldErr("timestamp", "missing")
	case r.Reference == "":
		return fieldErr("reference", "missing")
	}
	return nil
}

package x402

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// sameAsJSON re-encodes v and compares it with want as generic JSON, so
// every member the spec shows survives our types.
func sameAsJSON(t *testing.T, v any, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("re-encoded\n%s\nspec\n%s", got, want)
	}
}

// TestTransportExamples decodes the four header examples of the v2 HTTP
// transport and checks them against the JSON the text shows.
func TestTransportExamples(t *testing.T) {
	pr, err := DecodePaymentRequired(readFixture(t, "http-payment-required.b64"))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Error != "PAYMENT-SIGNATURE header is required" || pr.Resource.URL != "https://api.example.com/premium-data" ||
		len(pr.Accepts) != 1 || pr.Accepts[0].Network != "eip155:84532" || pr.Accepts[0].Amount != "10000" ||
		pr.Accepts[0].MaxTimeoutSeconds != 60 || string(pr.Accepts[0].Extra["name"]) != `"USDC"` {
		t.Fatalf("%+v", pr)
	}
	again, _ := EncodeHeader(pr)
	if back, err := DecodePaymentRequired(again); err != nil || !reflect.DeepEqual(back, pr) {
		t.Fatalf("round trip %+v %v", back, err)
	}

	pp, err := DecodePaymentPayload(readFixture(t, "http-payment-signature.b64"))
	if err != nil {
		t.Fatal(err)
	}
	if pp.Accepted.PayTo != "0x209693Bc6afc0C5328bA36FaF03C514EF312287C" || pp.Resource.MimeType != "application/json" ||
		!strings.Contains(string(pp.Payload), `"validBefore":"1740672154"`) {
		t.Fatalf("%+v", pp)
	}

	ok, err := DecodeSettlementResponse(readFixture(t, "http-payment-response-success.b64"))
	if err != nil || !ok.Success || ok.Payer != "0x857b06519E91e3A54538791bDbb0E22373e36b66" || ok.Network != "eip155:84532" {
		t.Fatalf("%+v %v", ok, err)
	}
	ko, err := DecodeSettlementResponse(readFixture(t, "http-payment-response-failure.b64"))
	if err != nil || ko.Success || ko.ErrorReason != "insufficient_funds" || ko.Transaction != "" {
		t.Fatalf("%+v %v", ko, err)
	}
}

// TestCoreExamples: the facilitator bodies of the core specification
// decode into our types and re-encode to the same JSON.
func TestCoreExamples(t *testing.T) {
	tests := []struct {
		file string
		v    any
	}{
		{"core-verify-request.json", &FacilitatorRequest{}},
		{"core-verify-response-invalid.json", &VerifyResponse{}},
		{"core-settle-response-error.json", &SettlementResponse{}},
		{"core-supported-response.json", &SupportedResponse{}},
		{"bip122-requirements.json", &PaymentRequirements{}},
		{"bip122-payload.json", &PaymentPayload{}},
		{"bip122-settlement.json", &SettlementResponse{}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw := readFixture(t, tc.file)
			if err := json.Unmarshal([]byte(raw), tc.v); err != nil {
				t.Fatal(err)
			}
			sameAsJSON(t, tc.v, raw)
		})
	}
}

// TestBip122Vector validates the Lightning draft's requirement, payload
// and settlement example with our checks.
func TestBip122Vector(t *testing.T) {
	var req PaymentRequirements
	var p PaymentPayload
	var s SettlementResponse
	for file, v := range map[string]any{"bip122-requirements.json": &req, "bip122-payload.json": &p, "bip122-settlement.json": &s} {
		if err := json.Unmarshal([]byte(readFixture(t, file)), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := ValidateLightningRequirements(req, ""); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	built := NewLightningRequirements(NetworkMainnet, req.PayTo, mustExtra(t, req).Invoice, 25000, 300)
	sameAsJSON(t, built, readFixture(t, "bip122-requirements.json"))
}

func mustExtra(t *testing.T, r PaymentRequirements) LightningExtra {
	t.Helper()
	e, err := r.LightningExtra()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

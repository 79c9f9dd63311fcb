package mpp

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

var testKey = func() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}()

// testPreimage returns a preimage and its payment hash derived from n.
func testPreimage(n byte) ([32]byte, [32]byte) {
	var pre [32]byte
	for i := range pre {
		pre[i] = n + byte(i)
	}
	return pre, sha256.Sum256(pre[:])
}

// testCharge is a challenge as Aperture builds it, for a 21 sat invoice.
func testCharge(t testing.TB, n byte, expires time.Time) (Challenge, [32]byte) {
	t.Helper()
	pre, hash := testPreimage(n)
	c, err := NewChargeChallenge(testKey, "api.example.com", ChargeRequest{
		Amount: "21", Currency: CurrencySat,
		MethodDetails: ChargeMethodDetails{
			Invoice: "lnbcrt210n1pjtestinvoice", PaymentHash: hex.EncodeToString(hash[:]), Network: "regtest",
		},
	}, expires)
	if err != nil {
		t.Fatal(err)
	}
	return c, pre
}

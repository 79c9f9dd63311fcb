package invoices

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

// signedInvoice returns a real signed invoice for params.
func signedInvoice(t testing.TB, params *chaincfg.Params, msat int64, created time.Time, expiry time.Duration) string {
	t.Helper()
	key, _ := btcec.NewPrivateKey()
	opts := []func(*zpay32.Invoice){zpay32.Description("coffee"), zpay32.Expiry(expiry)}
	if msat > 0 {
		opts = append(opts, zpay32.Amount(lnwire.MilliSatoshi(msat)))
	}
	inv, err := zpay32.NewInvoice(params, [32]byte{1, 2, 3}, created, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := inv.Encode(zpay32.MessageSigner{SignCompact: func(m []byte) ([]byte, error) { return ecdsa.SignCompact(key, m, true), nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecodeInvoice(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	reg := signedInvoice(t, &chaincfg.RegressionNetParams, 50_000, now, time.Hour)
	main := signedInvoice(t, &chaincfg.MainNetParams, 50_000, now, time.Hour)
	amountless := signedInvoice(t, &chaincfg.RegressionNetParams, 0, now, time.Hour)

	d, err := DecodeInvoice(reg, "regtest")
	if err != nil {
		t.Fatal(err)
	}
	if d.AmountMsat != 50_000 || d.Description != "coffee" || d.PaymentHash[0] != 1 || !d.ExpiresAt.Equal(now.Add(time.Hour)) || len(d.Destination) != 66 {
		t.Fatalf("decoded %+v", d)
	}
	if d.Expired(now) || !d.Expired(now.Add(time.Hour)) {
		t.Fatal("expiry boundary")
	}
	if d, err := DecodeInvoice("lightning:"+strings.ToUpper(reg), "regtest"); err != nil || d.AmountMsat != 50_000 {
		t.Fatalf("uri form: %v", err)
	}
	if d, err := DecodeInvoice(amountless, "regtest"); err != nil || d.AmountMsat != 0 {
		t.Fatalf("amountless: %+v %v", d, err)
	}

	bad := []struct {
		name, inv, network string
		want               error
	}{
		{"mainnet invoice on regtest", main, "regtest", ErrWrongNetwork},
		{"regtest invoice on mainnet", reg, "mainnet", ErrWrongNetwork},
		{"empty", "", "regtest", ErrInvalidInvoice},
		{"garbage", "lnbcrt1garbage", "regtest", ErrInvalidInvoice},
		{"bad checksum", flipLast(reg), "regtest", ErrInvalidInvoice},
		{"too long", "lnbcrt" + strings.Repeat("q", MaxInvoiceLength), "regtest", ErrInvalidInvoice},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeInvoice(tt.inv, tt.network); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := DecodeInvoice(reg, "moon"); err == nil {
		t.Fatal("unknown network accepted")
	}
}

func FuzzDecodeInvoice(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add(signedInvoice(f, &chaincfg.RegressionNetParams, 50_000, now, time.Hour))
	f.Add(signedInvoice(f, &chaincfg.RegressionNetParams, 0, now, time.Minute))
	f.Add(signedInvoice(f, &chaincfg.MainNetParams, 1, now, time.Hour))
	f.Add("lightning:lnbcrt1")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := DecodeInvoice(s, "regtest")
		if err != nil {
			if !errors.Is(err, ErrInvalidInvoice) && !errors.Is(err, ErrWrongNetwork) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if d.AmountMsat < 0 || d.ExpiresAt.Before(d.CreatedAt) {
			t.Fatalf("nonsense decode %+v", d)
		}
	})
}

func TestNewLNDRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]LNDConfig{
		"no address":      {Network: "regtest", MacaroonDir: dir},
		"bad network":     {Address: "x:1", Network: "moon", MacaroonDir: dir},
		"two macaroons":   {Address: "x:1", Network: "regtest", MacaroonDir: dir, MacaroonPath: dir},
		"no macaroon":     {Address: "x:1", Network: "regtest"},
		"missing cert":    {Address: "x:1", Network: "regtest", MacaroonDir: dir, TLSCertPath: dir + "/nope"},
		"missing mac dir": {Address: "x:1", Network: "regtest", MacaroonDir: dir + "/nope"},
	}
	for name, cfg := range tests {
		if _, err := NewLND(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// flipLast changes the last bech32 character of inv, so its checksum fails
// whatever that character was (a fixed replacement is a no-op when the
// random invoice already ends in it).
func flipLast(inv string) string {
	last := "q"
	if strings.HasSuffix(inv, last) {
		last = "p"
	}
	return inv[:len(inv)-1] + last
}

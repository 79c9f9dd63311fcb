package l402

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

// testInvoice returns a real, signed regtest BOLT 11 invoice.
func testInvoice(t testing.TB, hash [32]byte, sats int64) string {
	t.Helper()
	key, _ := btcec.NewPrivateKey()
	inv, err := zpay32.NewInvoice(&chaincfg.RegressionNetParams, hash, time.Unix(1_800_000_000, 0),
		zpay32.Amount(lnwire.NewMSatFromSatoshis(btcutil.Amount(sats))), zpay32.Description("test"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := inv.Encode(zpay32.MessageSigner{SignCompact: func(msg []byte) ([]byte, error) {
		return ecdsa.SignCompact(key, msg, true), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChallengeRoundTrip(t *testing.T) {
	keys := newMemKeys()
	mac, _ := mintTest(t, keys, 1, MintParams{Service: "s"})
	_, hash := testPreimage(1)
	c := Challenge{Macaroon: mustEncode(t, mac), Invoice: testInvoice(t, hash, 50)}
	for _, legacy := range []bool{false, true} {
		h := http.Header{}
		SetChallenge(h, c, legacy)
		vals := h.Values(HeaderWWWAuthenticate)
		if want := map[bool]int{false: 1, true: 2}[legacy]; len(vals) != want {
			t.Fatalf("legacy=%v: %d values", legacy, len(vals))
		}
		got, err := ParseChallenge(h)
		if err != nil {
			t.Fatal(err)
		}
		if got.Macaroon != c.Macaroon || got.Invoice != c.Invoice || got.Scheme != SchemeL402 || got.Version != "0" {
			t.Fatalf("legacy=%v: got %+v", legacy, got)
		}
	}
	// The form lnget's and Aperture's regexes expect: macaroon then invoice.
	v := c.HeaderValue(SchemeL402)
	if !strings.HasPrefix(v, `L402 macaroon="`+c.Macaroon+`", invoice="`+c.Invoice+`"`) {
		t.Fatalf("header does not start with the classic form: %s", v)
	}
}

// realWorldChallenges are the header forms seen in the wild; they also
// seed the fuzz corpus.
func realWorldChallenges(mac, inv string) map[string][]string {
	return map[string][]string{
		"aperture double":       {`LSAT macaroon="` + mac + `", invoice="` + inv + `"`, `L402 macaroon="` + mac + `", invoice="` + inv + `"`},
		"lnget / classic":       {`L402 macaroon="` + mac + `", invoice="` + inv + `"`},
		"spec version token":    {`L402 version="0", token="` + mac + `", invoice="` + inv + `"`},
		"superset":              {`L402 macaroon="` + mac + `", invoice="` + inv + `", version="0", token="` + mac + `"`},
		"invoice first":         {`L402 invoice="` + inv + `", macaroon="` + mac + `"`},
		"lower-case scheme":     {`l402 macaroon="` + mac + `", invoice="` + inv + `"`},
		"bare values":           {`L402 macaroon=` + mac + `, invoice=` + inv},
		"no commas":             {`L402 macaroon="` + mac + `" invoice="` + inv + `"`},
		"joined with bearer":    {`Bearer realm="api", L402 macaroon="` + mac + `", invoice="` + inv + `"`},
		"basic then l402 value": {`Basic realm="x"`, `L402 macaroon="` + mac + `", invoice="` + inv + `"`},
		"spaces around equals":  {`L402 macaroon = "` + mac + `" , invoice = "` + inv + `"`},
		"escaped quote value":   {`L402 macaroon="` + mac + `", invoice="` + inv + `", note="a \"b\""`},
	}
}

func TestParseChallengesRealWorld(t *testing.T) {
	keys := newMemKeys()
	m, _ := mintTest(t, keys, 1, MintParams{Service: "s"})
	mac := mustEncode(t, m)
	_, hash := testPreimage(1)
	inv := testInvoice(t, hash, 50)
	for name, vals := range realWorldChallenges(mac, inv) {
		t.Run(name, func(t *testing.T) {
			cs, err := ParseChallenges(vals)
			if err != nil {
				t.Fatal(err)
			}
			if cs[0].Macaroon != mac || cs[0].Invoice != inv {
				t.Fatalf("got %+v", cs[0])
			}
			if _, err := DecodeMacaroon(cs[0].Macaroon); err != nil {
				t.Fatal(err)
			}
		})
	}
	// L402 is preferred over an LSAT challenge that comes first.
	cs, _ := ParseChallenges([]string{`LSAT macaroon="a", invoice="b"`, `L402 macaroon="c", invoice="d"`})
	if cs[0].Macaroon != "c" || len(cs) != 2 {
		t.Fatalf("preference: %+v", cs)
	}
	for _, bad := range [][]string{nil, {""}, {`Bearer realm="x"`}, {`L402 macaroon="x"`}, {`L402 invoice="x"`}, {`=`}, {`L402 =, =="`}} {
		if _, err := ParseChallenges(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	keys := newMemKeys()
	m, pre := mintTest(t, keys, 1, MintParams{Service: "s"})
	raw, _ := m.MarshalBinary()
	std := base64.StdEncoding.EncodeToString(raw)
	url := base64.URLEncoding.EncodeToString(raw)
	rawStd := base64.RawStdEncoding.EncodeToString(raw)
	rawURL := base64.RawURLEncoding.EncodeToString(raw)
	ph := hex.EncodeToString(pre[:])
	ok := map[string]string{
		"canonical":           "L402 " + std + ":" + ph,
		"lsat":                "LSAT " + std + ":" + ph,
		"lower scheme":        "l402 " + std + ":" + ph,
		"url base64":          "L402 " + url + ":" + ph,
		"unpadded std":        "L402 " + rawStd + ":" + ph,
		"unpadded url":        "L402 " + rawURL + ":" + ph,
		"upper hex":           "L402 " + std + ":" + strings.ToUpper(ph),
		"extra spaces":        "  L402   " + std + ":" + ph + "  ",
		"discharges appended": "L402 " + std + "," + std + ":" + ph,
	}
	v := &Verifier{Keys: keys}
	for name, h := range ok {
		t.Run(name, func(t *testing.T) {
			c, err := ParseAuthorization(h)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), c, Expect{Service: "s"}); err != nil {
				t.Fatal(err)
			}
		})
	}
	bad := map[string]error{
		"empty":          ErrNoCredential,
		"bearer":         ErrNoCredential,
		"no colon":       ErrMalformed,
		"short preimage": ErrMalformed,
		"bad base64":     ErrMalformed,
		"not a macaroon": ErrMalformed,
	}
	inputs := map[string]string{
		"empty":          "",
		"bearer":         "Bearer abc",
		"no colon":       "L402 " + std,
		"short preimage": "L402 " + std + ":abcd",
		"bad base64":     "L402 !!!!:" + ph,
		"not a macaroon": "L402 " + base64.StdEncoding.EncodeToString([]byte("hello")) + ":" + ph,
	}
	for name, want := range bad {
		if _, err := ParseAuthorization(inputs[name]); !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", name, err, want)
		}
	}
}

func TestCredentialFromHeader(t *testing.T) {
	keys := newMemKeys()
	m, pre := mintTest(t, keys, 1, MintParams{Service: "s"})
	auth, err := FormatCredential(Credential{Macaroon: m, Preimage: pre})
	if err != nil {
		t.Fatal(err)
	}
	withPre, _ := AddCaveats(m, Caveat{CondPreimage, hex.EncodeToString(pre[:])})
	rawWithPre, _ := withPre.MarshalBinary()
	hexMac := hex.EncodeToString(rawWithPre)

	tests := []struct {
		name string
		h    http.Header
		err  error
	}{
		{"authorization", http.Header{"Authorization": {auth}}, nil},
		{"lsat then l402 (Aperture's client)", http.Header{"Authorization": {strings.Replace(auth, "L402", "LSAT", 1), auth}}, nil},
		{"bearer first, l402 second", http.Header{"Authorization": {"Bearer x", auth}}, nil},
		{"garbage l402 first, good second", http.Header{"Authorization": {"L402 zz:zz", auth}}, nil},
		{"grpc metadata macaroon", http.Header{"Grpc-Metadata-Macaroon": {hexMac}}, nil},
		{"macaroon header upper hex", http.Header{"Macaroon": {strings.ToUpper(hexMac)}}, nil},
		{"none", http.Header{}, ErrNoCredential},
		{"bearer only", http.Header{"Authorization": {"Bearer x"}}, ErrNoCredential},
		{"macaroon header without preimage", http.Header{"Macaroon": {hex.EncodeToString(mustRaw(t, m))}}, ErrMalformed},
		{"malformed l402", http.Header{"Authorization": {"L402 zz:zz"}}, ErrMalformed},
	}
	v := &Verifier{Keys: keys}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CredentialFromHeader(tt.h)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), c, Expect{Service: "s"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mustRaw(t testing.TB, m interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

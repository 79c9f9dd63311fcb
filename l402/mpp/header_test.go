package mpp

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

func TestFormatChallenge(t *testing.T) {
	c := Challenge{ID: "abc", Realm: "api.example.com", Method: "lightning", Intent: "charge",
		Request: "eyJ9", Expires: "2026-01-01T00:00:00Z", Description: `say "hi" \o/`}
	got, err := FormatChallenge(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `Payment id="abc", realm="api.example.com", method="lightning", intent="charge", ` +
		`request="eyJ9", expires="2026-01-01T00:00:00Z", description="say \"hi\" \\o/"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	back, err := ParseChallenges([]string{got})
	if err != nil || len(back) != 1 || back[0] != c {
		t.Fatalf("round trip: %+v %v", back, err)
	}

	bad := map[string]Challenge{
		"id":      {Realm: "r", Method: "m", Intent: "i", Request: "q"},
		"request": {ID: "x", Realm: "r", Method: "m", Intent: "i"},
		"realm":   {ID: "x", Realm: "r\r\nSet-Cookie: a=b", Method: "m", Intent: "i", Request: "q"},
	}
	for field, c := range bad {
		var fe *FieldError
		if _, err := FormatChallenge(c); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func TestParseChallenges(t *testing.T) {
	c := Challenge{ID: "i1", Realm: "r", Method: "lightning", Intent: "charge", Request: "q"}
	d := Challenge{ID: "i2", Realm: "r", Method: "lightning", Intent: "session", Request: "q2", Opaque: "o"}
	tests := []struct {
		name   string
		values []string
		want   []Challenge
	}{
		{"aperture form", []string{`Payment id="i1", realm="r", method="lightning", intent="charge", request="q"`}, []Challenge{c}},
		{"case and bare tokens", []string{`payment ID=i1, Realm="r",METHOD=lightning,intent=charge , request = "q"`}, []Challenge{c}},
		{"unknown params ignored", []string{`Payment id="i1", realm="r", foo="x, y", method="lightning", intent="charge", request="q", bar=1`}, []Challenge{c}},
		{"beside L402 in one value", []string{`L402 macaroon="m", invoice="i", Payment id="i1", realm="r", method="lightning", intent="charge", request="q", Basic realm="x"`}, []Challenge{c}},
		{"two values", []string{`L402 macaroon="m", invoice="i"`, `Payment id="i1", realm="r", method="lightning", intent="charge", request="q"`,
			`Payment id="i2", realm="r", method="lightning", intent="session", request="q2", opaque="o"`}, []Challenge{c, d}},
		{"bad one skipped", []string{`Payment id="x", realm="r"`, `Payment id="i1", realm="r", method="lightning", intent="charge", request="q"`}, []Challenge{c}},
		{"token68 neighbour", []string{`Basic dXNlcjpwYXNz==, Payment id="i1", realm="r", method="lightning", intent="charge", request="q"`}, []Challenge{c}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChallenges(tc.values)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v %v", got, err)
			}
		})
	}
}

func TestParseChallengesErrors(t *testing.T) {
	tests := []struct {
		values []string
		field  string
	}{
		{nil, HeaderWWWAuthenticate},
		{[]string{`L402 macaroon="m", invoice="i"`}, HeaderWWWAuthenticate},
		{[]string{`Payment realm="r", method="lightning", intent="charge", request="q"`}, "id"},
		{[]string{`Payment id="i", realm="r", method="lightning", intent="charge"`}, "request"},
		{[]string{`Payment id="i", realm="r", method="lightning", intent="charge", request=""`}, "request"},
		{[]string{`Payment id="i", id="j", realm="r", method="lightning", intent="charge", request="q"`}, "id"},
		{[]string{"Payment id=\"i\x00\", realm=\"r\", method=\"lightning\", intent=\"charge\", request=\"q\""}, "id"},
	}
	for _, tc := range tests {
		_, err := ParseChallenges(tc.values)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, l402.ErrMalformed) {
			t.Errorf("%q: got %v, want field %s", tc.values, err, tc.field)
		}
	}
}

func TestSetChallengeBesideL402(t *testing.T) {
	h := http.Header{}
	l402.SetChallenge(h, l402.Challenge{Macaroon: "bWFj", Invoice: "lnbc1"}, false)
	c, _ := testCharge(t, 1, time.Unix(1_900_000_000, 0))
	if err := SetChallenge(h, c); err != nil {
		t.Fatal(err)
	}
	got, err := ParseChallengesHeader(h)
	if err != nil || len(got) != 1 || got[0] != c {
		t.Fatalf("%+v %v", got, err)
	}
	if ls, err := l402.ParseChallenges(h.Values(HeaderWWWAuthenticate)); err != nil || len(ls) != 1 {
		t.Fatalf("L402 parser no longer finds its challenge: %v", err)
	}
}

package authparam

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Challenge
	}{
		{`L402 macaroon="a", invoice="b"`, []Challenge{{"L402", [][2]string{{"macaroon", "a"}, {"invoice", "b"}}}}},
		{`Basic realm="x", Payment ID="1" , Method=lightning`, []Challenge{{"Basic", [][2]string{{"realm", "x"}}}, {"Payment", [][2]string{{"id", "1"}, {"method", "lightning"}}}}},
		{`Payment description="say \"hi\"\\", id=2`, []Challenge{{"Payment", [][2]string{{"description", `say "hi"\`}, {"id", "2"}}}}},
		{`x="unterminated`, nil},
		{`, ,="=`, nil},
	} {
		if got := Split(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	// A token68 (Basic, Bearer) is junk after its scheme; only the
	// scheme matters to callers.
	if c := Split(`Bearer dG9rZW4=, L402 x=1`); len(c) == 0 || c[0].Scheme != "Bearer" || c[len(c)-1].Scheme != "L402" {
		t.Errorf("token68: %v", c)
	}
	if c := Split(`L402 Macaroon="m"`)[0]; c.Param("macaroon") != "m" || c.Param("invoice") != "" {
		t.Errorf("Param: %v", c)
	}
}

func TestQuote(t *testing.T) {
	var b strings.Builder
	Quote(&b, `a"b\c`)
	if b.String() != `"a\"b\\c"` {
		t.Fatal(b.String())
	}
	if c := Split(`P v=` + b.String()); c[0].Param("v") != `a"b\c` {
		t.Fatalf("round trip: %v", c)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(`L402 macaroon="a", invoice="b", Payment id="x\"y"`)
	f.Add(`Basic dXNlcjpwYXNz, Bearer ,, ="`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range Split(s) {
			if c.Scheme == "" {
				t.Fatalf("empty scheme from %q", s)
			}
			for _, p := range c.Params {
				if p[0] != strings.ToLower(p[0]) || p[0] == "" {
					t.Fatalf("parameter name %q from %q", p[0], s)
				}
			}
		}
	})
}

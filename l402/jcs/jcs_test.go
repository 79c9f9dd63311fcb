package jcs

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestRFC8785Examples checks the examples of RFC 8785 §3.2.2 (values) and
// §3.2.3 (sorting by UTF-16 code units).
func TestRFC8785Examples(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{
			name: "3.2.2 values",
			in: `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			name: "3.2.3 sorting",
			in: `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{name: "nested and empty", in: ` { "b" : [ {} , [ ] ] , "a" : { "z":1, "y":"<&>" } } `, want: `{"a":{"y":"<&>","z":1},"b":[{},[]]}`},
		{name: "scalar", in: ` "x" `, want: `"x"`},
		{name: "U+2028 stays literal", in: `"\u2028"`, want: "\"\u2028\""},
		{name: "del stays literal", in: "\"\x7f\"", want: "\"\x7f\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			again, err := Canonicalize(got)
			if err != nil || string(again) != string(got) {
				t.Fatalf("not idempotent: %s %v", again, err)
			}
		})
	}
}

// TestFormatNumber checks the IEEE 754 → string table of RFC 8785
// Appendix B.
func TestFormatNumber(t *testing.T) {
	tests := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tc := range tests {
		got, err := FormatNumber(math.Float64frombits(tc.bits))
		if err != nil || got != tc.want {
			t.Errorf("%#016x: got %q %v, want %q", tc.bits, got, err, tc.want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := FormatNumber(f); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: err %v", f, err)
		}
	}
}

func TestRejects(t *testing.T) {
	bad := []string{
		``, ` `, `{`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `01`, `1.`, `.5`, `1e`, `-`, `+1`,
		`1e400`, `"\ud800"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\x"`, `"\u12"`, "\"\x01\"",
		"\"\xff\"", `{"a":1,"a":2}`, `nul`, `[1] 2`, `"abc`, `NaN`,
		strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2),
	}
	for _, in := range bad {
		if out, err := Canonicalize([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: got %q, %v", in, out, err)
		}
	}
}

func TestMarshal(t *testing.T) {
	v := struct {
		Z string `json:"z"`
		A int64  `json:"a"`
		M string `json:"m,omitempty"`
	}{Z: "<tag>", A: 21}
	got, err := Marshal(v)
	if err != nil || string(got) != `{"a":21,"z":"<tag>"}` {
		t.Fatalf("%s %v", got, err)
	}
}

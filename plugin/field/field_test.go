package field

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func get(t *testing.T, body string, names ...string) Value {
	t.Helper()
	o, err := ParseObject([]byte(body))
	if err != nil {
		t.Fatalf("ParseObject(%s): %v", body, err)
	}
	v, err := o.Get(names...)
	if err != nil {
		t.Fatalf("Get(%v) in %s: %v", names, body, err)
	}
	return v
}

func TestParseObject(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // fields; -1 for an error
	}{
		{"", 0}, {"  null ", 0}, {"{}", 0}, {`{"a":1,"b":"x"}`, 2},
		{"[]", -1}, {`"x"`, -1}, {"{", -1}, {"12", -1},
	} {
		o, err := ParseObject([]byte(tc.in))
		switch {
		case tc.want < 0 && err == nil:
			t.Errorf("ParseObject(%q) = %v, want an error", tc.in, o)
		case tc.want >= 0 && (err != nil || len(o) != tc.want):
			t.Errorf("ParseObject(%q) = %v, %v; want %d fields", tc.in, o, err, tc.want)
		}
	}
}

func TestGetSpellings(t *testing.T) {
	for _, tc := range []struct {
		body      string
		wantName  string
		wantThere bool
		wantErr   string
	}{
		{`{"priceSats": 5}`, "priceSats", true, ""},
		{`{"price_sats": 5}`, "price_sats", true, ""},
		{`{"priceSats": 5, "price_sats": 5}`, "priceSats", true, ""},
		{`{"priceSats": 5, "price_sats": 6}`, "", false, "price_sats and priceSats are both given, with different values"},
		{`{"priceSats": null}`, "priceSats", false, ""},
		{`{"priceSats": ""}`, "priceSats", false, ""},
		{`{}`, "priceSats", false, ""},
	} {
		o, _ := ParseObject([]byte(tc.body))
		v, err := o.Get("priceSats", "price_sats")
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: err %v, want %q", tc.body, err, tc.wantErr)
			}
			continue
		}
		if err != nil || v.Name != tc.wantName || v.Present() != tc.wantThere {
			t.Errorf("%s: got %+v present=%v err=%v; want %s present=%v", tc.body, v, v.Present(), err, tc.wantName, tc.wantThere)
		}
	}
}

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    int64
		problem string
	}{
		{"50", 50, ""}, {"-3", -3, ""}, {"50.0", 50, ""}, {"5e1", 50, ""},
		{`"50"`, 0, "must be a number, not a string"},
		{"50.5", 0, "must be a whole number, without a fraction"},
		{"1e30", 0, "is out of range"},
		{"99999999999999999999", 0, "is out of range"},
		{"true", 0, "must be a whole number"},
		{"[1]", 0, "must be a whole number"},
	} {
		n, err := Value{Name: "n", Raw: []byte(tc.raw)}.Int("")
		var fe *Error
		switch {
		case tc.problem == "" && (err != nil || n != tc.want):
			t.Errorf("Int(%s) = %d, %v; want %d", tc.raw, n, err, tc.want)
		case tc.problem != "" && (!errors.As(err, &fe) || !strings.HasPrefix(fe.Problem, tc.problem) || fe.Field != "n" || fe.Fix == ""):
			t.Errorf("Int(%s) error %#v, want problem %q with a fix", tc.raw, err, tc.problem)
		}
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		raw, want, problem string
	}{
		{`"abc"`, "abc", ""}, {`"é"`, "é", ""},
		{"5", "", "must be a string"}, {`{"a":1}`, "", "must be a string"},
		{`"a\u0000b"`, "", "contains a NUL character"},
	} {
		s, err := Value{Name: "resource", Raw: []byte(tc.raw)}.String("send text")
		var fe *Error
		switch {
		case tc.problem == "" && (err != nil || s != tc.want):
			t.Errorf("String(%s) = %q, %v; want %q", tc.raw, s, err, tc.want)
		case tc.problem != "" && (!errors.As(err, &fe) || fe.Problem != tc.problem || fe.Fix != "send text"):
			t.Errorf("String(%s) error %#v, want %q", tc.raw, err, tc.problem)
		}
	}
}

func TestStrings(t *testing.T) {
	list, err := Value{Name: "allow", Raw: []byte(`["a.com","*.b.org"]`)}.Strings("")
	if err != nil || !reflect.DeepEqual(list, []string{"a.com", "*.b.org"}) {
		t.Fatalf("Strings = %v, %v", list, err)
	}
	for _, raw := range []string{`"a.com"`, `[1]`, `["a\u0000"]`, `{}`} {
		if _, err := (Value{Name: "allow", Raw: []byte(raw)}).Strings(""); err == nil {
			t.Errorf("Strings(%s) took it", raw)
		}
	}
}

func TestHeaders(t *testing.T) {
	h, err := get(t, `{"headers": {"Accept": "a/b", "X-Tag": ["1", "2"]}}`, "headers").Headers()
	want := http.Header{"Accept": {"a/b"}, "X-Tag": {"1", "2"}}
	if err != nil || !reflect.DeepEqual(h, want) {
		t.Fatalf("Headers = %v, %v; want %v", h, err, want)
	}
	for _, tc := range []struct{ raw, problem string }{
		{`"Accept: x"`, "must be an object"},
		{`{"Bad Name": "x"}`, "has an invalid header name"},
		{`{"X:Y": "x"}`, "has an invalid header name"},
		{`{"X": 5}`, "header X is neither a string nor a list of strings"},
		{`{"X": "a\r\nEvil: 1"}`, "header X holds a line break or NUL"},
	} {
		_, err := Value{Name: "headers", Raw: []byte(tc.raw)}.Headers()
		var fe *Error
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Problem, tc.problem) || fe.Field != "headers" {
			t.Errorf("Headers(%s) error %v, want %q", tc.raw, err, tc.problem)
		}
	}
}

func TestHeadersBound(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range MaxHeaders + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"X-%d": "v"`, i)
	}
	b.WriteString("}")
	_, err := Value{Name: "headers", Raw: []byte(b.String())}.Headers()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at most %d are allowed", MaxHeaders)) {
		t.Fatalf("%d headers: err %v", MaxHeaders+1, err)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abcdef", 3, "abc…"}, {"ééé", 3, "é…"}, {"ééé", 1, "…"},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// FuzzObject reads arbitrary bodies with every reader: none may panic,
// and every refusal is an *Error naming a field.
func FuzzObject(f *testing.F) {
	for _, s := range []string{
		`{"priceSats": 5, "resource": "/x"}`, `{"price_sats": 5.0, "priceSats": 5}`,
		`{"headers": {"A": ["b"]}, "allow": ["x"]}`, `{"n": 1e400}`, `{"resource": "\u0000"}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := ParseObject(body)
		if err != nil {
			return
		}
		for name := range o {
			v, err := o.Get(name, name+"_alias")
			if err != nil {
				continue
			}
			check := func(err error) {
				var fe *Error
				if err != nil && (!errors.As(err, &fe) || fe.Field == "" || fe.Problem == "" || fe.Fix == "") {
					t.Fatalf("%s: error %#v is not a whole *Error", name, err)
				}
			}
			s, err := v.String("")
			check(err)
			if err == nil && strings.ContainsRune(s, 0) {
				t.Fatalf("%s: String let a NUL through", name)
			}
			_, err = v.Int("")
			check(err)
			_, err = v.Strings("")
			check(err)
			_, err = v.Headers()
			check(err)
			if tr := Truncate(s, 10); !utf8.ValidString(tr) && utf8.ValidString(s) {
				t.Fatalf("Truncate broke a rune: %q", tr)
			}
		}
	})
}

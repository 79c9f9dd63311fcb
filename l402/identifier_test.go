package l402

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestIdentifierRoundTrip(t *testing.T) {
	_, hash := testPreimage(1)
	tid, err := NewTokenID()
	if err != nil {
		t.Fatal(err)
	}
	id := Identifier{Version: 0, PaymentHash: hash, TokenID: tid}
	raw, err := id.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != IdentifierSize || raw[0] != 0 || raw[1] != 0 {
		t.Fatalf("layout: got %d bytes starting %x", len(raw), raw[:2])
	}
	if !bytes.Equal(raw[2:34], hash[:]) || !bytes.Equal(raw[34:], tid[:]) {
		t.Fatal("payment hash or token id not where Aperture's v0 layout puts them")
	}
	for name, in := range map[string][]byte{
		"binary":    raw,
		"hex ascii": []byte(hex.EncodeToString(raw)),
		"HEX ASCII": bytes.ToUpper([]byte(hex.EncodeToString(raw))),
	} {
		got, err := DecodeIdentifier(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != id {
			t.Fatalf("%s: got %+v, want %+v", name, got, id)
		}
	}
}

func TestDecodeIdentifierRejects(t *testing.T) {
	good, _ := Identifier{}.MarshalBinary()
	v1 := append([]byte{0, 1}, good[2:]...)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"short", good[:40]},
		{"long", append(append([]byte{}, good...), 0)},
		{"unknown version", v1},
		{"hex of unknown version", []byte(hex.EncodeToString(v1))},
		{"not hex of the right length", bytes.Repeat([]byte{'z'}, 2*IdentifierSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeIdentifier(tt.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := (Identifier{Version: 3}).MarshalBinary(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("marshal of version 3: %v", err)
	}
}

func TestParseTokenID(t *testing.T) {
	id, _ := NewTokenID()
	got, err := ParseTokenID(id.String())
	if err != nil || got != id {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"", "abc", id.String()[:62] + "zz"} {
		if _, err := ParseTokenID(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

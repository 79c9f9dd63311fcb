package x402

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"
)

// TestNetworkIDs recomputes every genesis block hash from its header and
// checks the bip122 id is "bip122:" and its first 32 hex characters.
func TestNetworkIDs(t *testing.T) {
	const satoshi = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
	tests := []struct {
		id, merkle          string
		time, bits, nonce   uint32
		name, invoicePrefix string
	}{
		{NetworkMainnet, satoshi, 1231006505, 0x1d00ffff, 2083236893, "mainnet", "bc"},
		{NetworkTestnet, satoshi, 1296688602, 0x1d00ffff, 414098458, "testnet", "tb"},
		{NetworkRegtest, satoshi, 1296688602, 0x207fffff, 2, "regtest", "bcrt"},
		{NetworkSignet, satoshi, 1598918400, 0x1e0377ae, 52613770, "signet", "tbs"},
		{NetworkTestnet4, "7aa0a7ae1e223414cb807e40cd57e667b718e42aaf9306db9102fe28912b7b4e",
			1714777860, 0x1d00ffff, 393743547, "testnet4", "tb"},
	}
	for _, tc := range tests {
		hdr := make([]byte, 0, 80)
		hdr = binary.LittleEndian.AppendUint32(hdr, 1) // version
		hdr = append(hdr, make([]byte, 32)...)         // previous block
		m, _ := hex.DecodeString(tc.merkle)
		slices.Reverse(m) // displayed big-endian, hashed little-endian
		hdr = append(hdr, m...)
		hdr = binary.LittleEndian.AppendUint32(hdr, tc.time)
		hdr = binary.LittleEndian.AppendUint32(hdr, tc.bits)
		hdr = binary.LittleEndian.AppendUint32(hdr, tc.nonce)
		first := sha256.Sum256(hdr)
		h := sha256.Sum256(first[:])
		slices.Reverse(h[:])
		if want := "bip122:" + hex.EncodeToString(h[:16]); tc.id != want {
			t.Errorf("%s: id %s, genesis gives %s (%x)", tc.name, tc.id, want, h)
		}
		if id, ok := NetworkID(tc.name); !ok || id != tc.id {
			t.Errorf("NetworkID(%s) = %s", tc.name, id)
		}
		if name, ok := NetworkName(tc.id); !ok || name != tc.name {
			t.Errorf("NetworkName(%s) = %s", tc.id, name)
		}
		if cur, ok := InvoiceCurrency(tc.id); !ok || cur != tc.invoicePrefix {
			t.Errorf("InvoiceCurrency(%s) = %s", tc.id, cur)
		}
	}
	// The draft's two ids, transcribed.
	if NetworkMainnet != "bip122:000000000019d6689c085ae165831e93" || NetworkTestnet != "bip122:000000000933ea01ad0ee984209779ba" {
		t.Error("draft ids changed")
	}
	if _, ok := NetworkID("simnet"); ok {
		t.Error("simnet has no x402 id")
	}
}

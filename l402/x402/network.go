package x402

// CAIP-2 ids of the Bitcoin chains: "bip122:" and the first 32 hex
// characters (16 bytes) of the genesis block hash as block explorers print
// it. Mainnet and testnet are the draft's; the others follow the same rule.
const (
	NetworkMainnet  = "bip122:000000000019d6689c085ae165831e93"
	NetworkTestnet  = "bip122:000000000933ea01ad0ee984209779ba" // testnet3
	NetworkTestnet4 = "bip122:00000000da84f2bafbbc53dee25a72ae"
	NetworkSignet   = "bip122:00000008819873e925422c1ff0f99f7c"
	NetworkRegtest  = "bip122:0f9188f13cb7b2c71f2a335e3a4fc328"
)

// chain ties a network id to its lnd/btcd name and its BOLT 11 currency
// prefix (the human-readable part after "ln").
type chain struct{ id, name, hrp string }

var chains = []chain{
	{NetworkMainnet, "mainnet", "bc"},
	{NetworkTestnet, "testnet", "tb"},
	{NetworkTestnet4, "testnet4", "tb"},
	{NetworkSignet, "signet", "tbs"},
	{NetworkRegtest, "regtest", "bcrt"},
}

// NetworkID returns the bip122 id of a chain by its lnd name ("mainnet",
// "testnet", "testnet4", "signet", "regtest"; "bitcoin" and "simnet" are
// not x402 networks).
func NetworkID(name string) (string, bool) {
	if name == "bitcoin" {
		name = "mainnet"
	}
	for _, c := range chains {
		if c.name == name {
			return c.id, true
		}
	}
	return "", false
}

// NetworkName returns the lnd name of a bip122 id.
func NetworkName(id string) (string, bool) {
	for _, c := range chains {
		if c.id == id {
			return c.name, true
		}
	}
	return "", false
}

// InvoiceCurrency returns the BOLT 11 currency prefix ("bc", "tb", "tbs",
// "bcrt") that invoices on network id carry.
func InvoiceCurrency(id string) (string, bool) {
	for _, c := range chains {
		if c.id == id {
			return c.hrp, true
		}
	}
	return "", false
}

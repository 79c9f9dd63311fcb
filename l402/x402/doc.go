// Package x402 implements the x402 protocol version 2 over HTTP and its
// Lightning "exact" scheme, purely: the wire types, the base64 JSON
// headers, the facilitator request and response bodies, the bip122 network
// ids, and the scheme's settlement checks. It does no I/O, decodes no
// BOLT 11 itself (the caller passes an InvoiceDecoder) and keeps no replay
// store (the caller records the payment hash it returns, once).
//
// Documents followed (fetched 2026-11-27; neither the x402 Go SDK nor a
// Lightning mechanism is on the module proxy, so this is written from the
// texts):
//
//   - Core types and facilitator API: x402-foundation/x402 (formerly
//     coinbase/x402) specs/x402-specification-v2.md at commit
//     0022a09ac28cd649317376c1074d973dbb1520af, "Protocol Version 2",
//     version history v2.0 of 2025-12-09: PaymentRequired,
//     PaymentRequirements, PaymentPayload, SettlementResponse,
//     VerifyResponse, POST /verify, POST /settle, GET /supported.
//   - HTTP transport: coinbase/x402 specs/transports-v2/http.md at commit
//     037e96d5707e7acc2ec94abbec3aed14e15e3471: PAYMENT-REQUIRED,
//     PAYMENT-SIGNATURE and PAYMENT-RESPONSE, each base64 (standard
//     alphabet, padded) of the JSON object.
//   - Lightning: the open draft of x402-foundation/x402 pull request
//     #2861 "docs: Specify exact Lightning on BIP-122" (benthecarman),
//     specs/schemes/exact/scheme_exact_bip122.md at commit
//     03ee019635e60950b898e544e89cbb025d258665: network bip122:<first 32 hex
//     of the genesis hash>, asset "BTC", amount in millisatoshis, payTo the
//     receiver node's compressed public key (66 lowercase hex),
//     extra.paymentFlow "upfront", extra.assetTransferMethod "bolt11"
//     (optional), extra.invoice, payload {preimage}; the facilitator's
//     /settle validates and records the payment hash (no /verify in the
//     upfront flow); its errorReason vocabulary.
//
// The draft names only mainnet and testnet; regtest, signet and testnet4
// ids are added here the same way (the first 16 bytes of the genesis block
// hash, which network_test.go recomputes from the genesis headers).
package x402

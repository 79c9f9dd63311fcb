// Package l402 implements the L402 protocol, purely: macaroon identifiers,
// minting and verifying tokens, caveats, and the challenge (WWW-Authenticate)
// and credential (Authorization) headers.
//
// It performs no I/O and never talks to a Lightning node. Root keys come
// from a RootKeyStore and revocations from a RevocationChecker, both
// interfaces that the storage package implements.
//
// The wire format is the one every L402 client understands: a V2 binary
// macaroon whose identifier is Aperture's version 0 layout
// (uint16 BE version ‖ payment hash[32] ‖ token id[32]), sent as
//
//	WWW-Authenticate: L402 macaroon="<base64>", invoice="<bolt11>"
//	Authorization: L402 <base64 macaroon>:<hex preimage>
package l402

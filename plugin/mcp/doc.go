// Package mcp is l402d's MCP surface: every producer and consumer
// operation as a tool for AI agents, with the names, argument names and
// result shapes of the seed (create_l402_challenge, verify_l402_payment,
// access_l402_resource, pay_l402_challenge, pay_invoice, …), served over
// streamable HTTP at /mcp on l402d's API listener behind the API key.
//
// The tools call the producer and the consumer in-process. This package
// may touch those two (and, through them, the store and the node's LND)
// and nothing else: it opens no listener, reads no file and never changes
// a budget, so an agent cannot raise its own limits. A payment whose price
// plus routing fee limit is above the configured approval threshold is
// put to the person first through MCP elicitation (a multi round-trip
// input request, which the SDK turns into a server-to-client elicitation
// for clients of older protocol versions), and refused when the client
// cannot ask.
//
// Arguments are read here, not by the SDK's schema validation, so that
// every error names the field and its fix; the tools' input schemas are
// built from the same parameter lists and say the same to clients.
//
// The SDK is imported as sdk, since this package is also called mcp.
package mcp

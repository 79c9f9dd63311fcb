// Package consumer is the spending side of l402d: it pays other L402
// services through the node runner's own LND, with no custodial wallet,
// and never loses or double-spends a satoshi.
//
// Access fetches a URL and, on a 402 with an L402 (or LSAT) challenge,
// checks policy, pays and retries once with the credential. PayChallenge
// and PayInvoice pay what a caller already holds; Quote reports a price
// without paying. Every payment goes through a journal in the store,
// keyed by payment hash and written with its budget reservation before
// LND is asked to pay; Run resumes whatever a crash left in flight.
//
// The package may touch the store (journal, budgets, token cache), the
// Lightning backend and the network (outgoing HTTP to the targets it is
// asked to fetch, refusing private and loopback addresses at dial time
// unless configured otherwise). It knows nothing of l402d's own HTTP API:
// the REST and MCP surfaces call it.
package consumer

package mcp

import (
	"fmt"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// Tool names, as seed 000 has them (and quote_l402_resource, ours).
const (
	ToolCreateChallenge = "create_l402_challenge"
	ToolVerifyPayment   = "verify_l402_payment"
	ToolAccess          = "access_l402_resource"
	ToolQuote           = "quote_l402_resource"
	ToolPayChallenge    = "pay_l402_challenge"
	ToolPayInvoice      = "pay_invoice"
	ToolCreateInvoice   = "create_invoice"
	ToolCheckInvoice    = "check_invoice_status"
	ToolBalance         = "check_wallet_balance"
	ToolBudget          = "get_budget_status"
	ToolPayments        = "get_payment_history"
	ToolTokens          = "list_l402_tokens"
	ToolSessions        = "list_l402_sessions"
	ToolCloseSession    = "close_l402_session"
)

// Bounds of arguments.
const (
	// maxSatsBound is every bitcoin there will ever be, in sats: a bound
	// on a price cap that still refuses absurd numbers.
	maxSatsBound    = 21_000_000 * 100_000_000
	maxMacaroonLen  = 2 * l402.MaxMacaroonSize // its base64 is 4/3 of it
	maxChallengeLen = l402.MaxHeaderSize
	maxBodyArgLen   = 1 << 20
	maxDomainLen    = 253
	maxCursorLen    = 512
	maxOriginLen    = 2048
)

// toolList defines every tool this server offers.
func (s *Server) toolList() []*tool {
	var out []*tool
	if s.cfg.Producer != nil {
		out = append(out, s.producerTools()...)
	}
	if s.cfg.Consumer != nil {
		out = append(out, s.consumerTools()...)
	}
	return out
}

func (s *Server) producerTools() []*tool {
	return []*tool{{
		producer: true,
		def: sdk.Tool{Name: ToolCreateChallenge, Title: "Create an L402 payment challenge",
			Description: "Create an L402 payment challenge to charge another agent or user for accessing a resource. " +
				"Returns a Lightning invoice (from this node's own LND) and a macaroon bound to the resource, the price and this node. " +
				"The payer must pay the invoice and present the L402 token (L402 <macaroon>:<preimage>) back to you; " +
				"call verify_l402_payment before granting access. The same resource and price asked again within the idempotency window " +
				"returns the same challenge.",
			Annotations: &sdk.ToolAnnotations{Title: "Create L402 challenge", IdempotentHint: true, DestructiveHint: ptr(false), OpenWorldHint: ptr(false)}},
		spec: spec{params: []param{
			{name: "resource", kind: kindString, required: true, maxLen: producer.MaxResourceLen,
				desc: "Resource identifier — URL, service name, or description of what you're charging for",
				fix:  "Provide a URL, service name, or description of what you're charging for"},
			{name: "priceSats", aliases: []string{"price_sats"}, kind: kindInteger, required: true, min: 1, max: s.cfg.MaxPriceSats,
				desc: "Price in satoshis to charge",
				fix:  fmt.Sprintf("send the price as a whole number of sats from 1 to %d (this node's maximum)", s.cfg.MaxPriceSats)},
			{name: "description", kind: kindString, maxLen: producer.MaxDescriptionLen,
				desc: "Description shown on the Lightning invoice", fix: fmt.Sprintf("use at most %d bytes (BOLT 11's limit)", producer.MaxDescriptionLen)},
			{name: "idempotencyKey", aliases: []string{"idempotency_key"}, kind: kindString, maxLen: producer.MaxIdempotencyKeyLen,
				desc: "Optional key: the same key, resource and price within the idempotency window return the same challenge (by default this MCP session is the key)",
				fix:  fmt.Sprintf("use at most %d characters", producer.MaxIdempotencyKeyLen)},
		}},
		run: s.createChallenge,
	}, {
		producer: true,
		def: sdk.Tool{Name: ToolVerifyPayment, Title: "Verify an L402 payment",
			Description: "Verify an L402 token (macaroon + preimage) to confirm payment was made, before granting access to the resource. " +
				"Checks that SHA256(preimage) is the payment hash, that this node issued the macaroon (signature), and its caveats " +
				"(resource, expiry, not revoked). Never calls the Lightning node. valid=false means: do NOT grant access.",
			Annotations: &sdk.ToolAnnotations{Title: "Verify L402 payment", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}},
		spec: spec{params: []param{
			{name: "macaroon", kind: kindString, maxLen: maxMacaroonLen,
				desc: "Base64-encoded macaroon from the L402 token", fix: "send the macaroon part of the payer's L402 token (base64), or the whole token as token"},
			{name: "preimage", kind: kindString, hex64: true,
				desc: "Hex-encoded preimage (proof of payment), 64 hex characters", fix: "send the preimage part of the payer's L402 token: 64 hex characters"},
			{name: "token", kind: kindString, maxLen: maxMacaroonLen + 80,
				desc: "Instead of macaroon and preimage: the whole L402 token as the payer sent it, L402 <macaroon>:<preimage>",
				fix:  "send the token as the payer gave it: L402 <macaroon>:<preimage>"},
			{name: "resource", kind: kindString, maxLen: producer.MaxResourceLen,
				desc: "If set, the token must have been bought for exactly this resource", fix: "send the resource the challenge was created for"},
		}, alternatives: [][]string{{"macaroon", "preimage"}, {"token"}}},
		run: s.verifyPayment,
	}}
}

// consumerTools are the spend key's tools: those that pay, then those
// that read the node's wallet and records or create invoices.
func (s *Server) consumerTools() []*tool {
	return append(s.payingTools(), s.walletTools()...)
}

// payingTools are the tools that may spend the node's funds.
func (s *Server) payingTools() []*tool {
	// Parameters several tools share.
	pURL := param{name: "url", kind: kindString, required: true, maxLen: consumer.MaxURLLen, format: "uri",
		desc: "Absolute http(s) URL of the resource, e.g. https://api.example.com/v1/forecast",
		fix:  "send an absolute URL such as https://api.example.com/v1/data"}
	pMethod := param{name: "method", kind: kindString, enum: []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"},
		desc: "HTTP method (default GET)", fix: "use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"}
	pHeaders := param{name: "headers", kind: kindHeaders,
		desc: "Request headers to send, as an object of name to value (or list of values)"}
	pBody := param{name: "body", kind: kindString, maxLen: maxBodyArgLen,
		desc: "Request body (text), for POST, PUT or PATCH", fix: "send the body as a string of at most 1 MiB"}
	pMaxSats := param{name: "maxSats", aliases: []string{"max_sats"}, kind: kindInteger, min: 0, max: maxSatsBound,
		desc: "Refuse to pay more than this many sats (0 or absent: only the node's budget limits)",
		fix:  "send a whole number of sats, 0 for no cap beyond the budget"}
	pInvoice := param{name: "invoice", kind: kindString, maxLen: invoices.MaxInvoiceLength,
		desc: "BOLT 11 Lightning invoice (payment request, lnbc…)", fix: "send the payment request exactly as received (lnbc…)"}
	pMacaroon := param{name: "macaroon", kind: kindString, maxLen: maxMacaroonLen,
		desc: "Base64-encoded macaroon from the L402 challenge or token", fix: "send the base64 macaroon exactly as the challenge gave it"}

	paying := "Payments come from this node's own Lightning wallet, within budgets only the node runner can change. " + s.thresholdText()
	return []*tool{{
		def: sdk.Tool{Name: ToolAccess, Title: "Access an L402-protected resource",
			Description: "Fetch a URL; if it answers 402 Payment Required with an L402 challenge, pay the invoice and fetch it again with the token. " +
				"A cached token for the URL is used first, so a resource is paid once and then reused. Returns the response (status, headers, body) " +
				"and what was paid. Use quote_l402_resource first to learn the price without paying. " + paying,
			Annotations: &sdk.ToolAnnotations{Title: "Access L402 resource", DestructiveHint: ptr(true), OpenWorldHint: ptr(true)}},
		spec: spec{params: []param{pURL, pMethod, pHeaders, pBody, pMaxSats,
			{name: "session", kind: kindBool, desc: "Pay from a prepaid session at this URL's site instead of per request: the first call pays one deposit " +
				"(maxSats caps it) and later calls spend from it with no Lightning payment; a spent balance is topped up with another deposit. " +
				"Close it with close_l402_session to get the rest back. Only sellers whose 402 offers a session support it.",
				fix: "send true or false"},
			{name: "expectedCalls", aliases: []string{"expected_calls"}, kind: kindInteger, min: 0, max: 1_000_000,
				desc: "How many calls to this service you expect to make soon (leave session out): l402d then uses the seller's prepaid session " +
					"when those calls would spend its deposit anyway (calls × price ≥ deposit; the rest is refunded at close), else pays per request.",
				fix: "send 0 or the number of calls you expect"}}},
		run: s.access,
	}, {
		def: sdk.Tool{Name: ToolQuote, Title: "Quote an L402 resource's price",
			Description: "Find out what a URL costs without paying: fetches it once without a token and reports the L402 price, the routing fee limit, " +
				"whether l402d would pay it now (policy and budget) and whether a cached token already covers it. " +
				"A URL ending in /.well-known/l402.json (the L402 discovery manifest) or openapi.json (its OpenAPI profile, x-l402-pricing per operation) is read as the service's price list.",
			Annotations: &sdk.ToolAnnotations{Title: "Quote L402 price", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(true)}},
		spec: spec{params: []param{pURL, pMethod, pHeaders, pBody, pMaxSats}},
		run:  s.quote,
	}, {
		def: sdk.Tool{Name: ToolPayChallenge, Title: "Pay an L402 challenge",
			Description: "Pay an L402 challenge (the invoice and macaroon another agent or a 402 response gave you) and get the L402 token " +
				"(L402 <macaroon>:<preimage>) to present to the seller. A challenge already paid is never paid twice: its token is returned again. " + paying,
			Annotations: &sdk.ToolAnnotations{Title: "Pay L402 challenge", DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(true)}},
		spec: spec{params: []param{pInvoice, pMacaroon,
			{name: "challenge", aliases: []string{"wwwAuthenticate"}, kind: kindString, maxLen: maxChallengeLen,
				desc: `Instead of invoice and macaroon: the whole WWW-Authenticate value of the 402, e.g. L402 macaroon="…", invoice="…"`,
				fix:  `send the WWW-Authenticate value, e.g. L402 macaroon="…", invoice="…"`},
			pMaxSats,
			{name: "url", kind: kindString, maxLen: consumer.MaxURLLen, format: "uri",
				desc: "The resource URL the challenge came from, if any: the token is cached for it and the payment counts against its domain's budget",
				fix:  "send the absolute URL the challenge came from, or leave it out"},
		}, alternatives: [][]string{{"invoice", "macaroon"}, {"challenge"}}},
		run: s.payChallenge,
	}, {
		def: sdk.Tool{Name: ToolPayInvoice, Title: "Pay a Lightning invoice",
			Description: "Pay a BOLT 11 Lightning invoice and return the preimage (proof of payment). Invoices without an amount, expired or " +
				"for another network are refused. An invoice already paid is never paid twice. " + paying,
			Annotations: &sdk.ToolAnnotations{Title: "Pay invoice", DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(true)}},
		spec: spec{params: []param{
			{name: "invoice", aliases: []string{"paymentRequest", "payment_request"}, kind: kindString, required: true, maxLen: invoices.MaxInvoiceLength,
				desc: "BOLT 11 Lightning invoice to pay (lnbc…)", fix: "send the payment request exactly as received (lnbc…)"},
			pMaxSats,
			{name: "url", kind: kindString, maxLen: consumer.MaxURLLen, format: "uri",
				desc: "The resource URL the invoice pays for, if any: the payment counts against its domain's budget (without it the domain is unknown, refused when an allow list is set)",
				fix:  "send the absolute URL the invoice is for, or leave it out"},
		}},
		run: s.payInvoice,
	}}
}

// walletTools are the tools that never pay: invoices to receive, the
// balance, the budget, the payment history and the token cache.
func (s *Server) walletTools() []*tool {
	return []*tool{{
		def: sdk.Tool{Name: ToolCreateInvoice, Title: "Create a Lightning invoice",
			Description: "Create a Lightning invoice on this node, to receive a payment.",
			Annotations: &sdk.ToolAnnotations{Title: "Create invoice", DestructiveHint: ptr(false), OpenWorldHint: ptr(false)}},
		spec: spec{params: []param{
			{name: "amountSats", aliases: []string{"amount_sats", "amount"}, kind: kindInteger, required: true, min: 1, max: consumer.MaxInvoiceSats,
				desc: "Amount to receive, in sats", fix: fmt.Sprintf("send the amount as a whole number of sats from 1 to %d", consumer.MaxInvoiceSats)},
			{name: "memo", aliases: []string{"description"}, kind: kindString, maxLen: consumer.MaxMemoLen,
				desc: "Description shown on the invoice", fix: fmt.Sprintf("use at most %d bytes", consumer.MaxMemoLen)},
			{name: "expirySeconds", aliases: []string{"expiry_seconds", "expiry"}, kind: kindInteger, min: 0, max: int64(consumer.MaxInvoiceExpiry.Seconds()),
				desc: "How long the invoice can be paid, in seconds (0 or absent: one hour)", fix: "send 0 (one hour) up to 31536000 (one year)"},
		}},
		run: s.createInvoice,
	}, {
		def: sdk.Tool{Name: ToolCheckInvoice, Title: "Check an invoice's status",
			Description: "Report the state of one of this node's invoices (open, settled, canceled, accepted) and what was paid.",
			Annotations: &sdk.ToolAnnotations{Title: "Check invoice status", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}},
		spec: spec{params: []param{
			{name: "paymentHash", aliases: []string{"payment_hash"}, kind: kindString, hex64: true,
				desc: "Payment hash of the invoice (64 hex characters), as create_invoice returned it", fix: "send the invoice's paymentHash: 64 hex characters"},
			{name: "invoice", kind: kindString, maxLen: invoices.MaxInvoiceLength,
				desc: "Instead of paymentHash: the invoice itself (lnbc…)", fix: "send the payment request exactly as create_invoice returned it"},
		}, alternatives: [][]string{{"paymentHash"}, {"invoice"}}},
		run: s.checkInvoice,
	}, {
		def: sdk.Tool{Name: ToolBalance, Title: "Check the wallet balance",
			Description: "Report this node's funds: spendable in channels (local), receivable (remote), pending channels and on-chain.",
			Annotations: &sdk.ToolAnnotations{Title: "Wallet balance", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}},
		run: s.balance,
	}, {
		def: sdk.Tool{Name: ToolBudget, Title: "Get the spending budget",
			Description: "Report the spending limits (per payment, per UTC day, per domain), what today's payments used and what remains, " +
				"and the approval threshold. Read-only: budgets can only be changed by the node runner, never through MCP.",
			Annotations: &sdk.ToolAnnotations{Title: "Budget status", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}},
		run: s.budget,
	}, {
		def: sdk.Tool{Name: ToolPayments, Title: "Get the payment history",
			Description: "List the payments this node made for L402 resources, challenges and invoices, newest first, with totals.",
			Annotations: &sdk.ToolAnnotations{Title: "Payment history", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}},
		spec: spec{params: []param{
			{name: "state", kind: kindString, enum: []string{string(storage.PaymentReserved), string(storage.PaymentInFlight), string(storage.PaymentSucceeded), string(storage.PaymentFailed)},
				desc: "Only payments in this state", fix: "use reserved, in_flight, succeeded or failed"},
			{name: "kind", kind: kindString, enum: []string{string(storage.KindAccess), string(storage.KindChallenge), string(storage.KindInvoice)},
				desc: "Only payments of this kind", fix: "use access, challenge or invoice"},
			{name: "domain", kind: kindString, maxLen: maxDomainLen, desc: "Only payments to this domain", fix: "send a host name such as api.example.com"},
			{name: "since", kind: kindString, maxLen: 64, format: "date-time", desc: "Only payments made at or after this time (RFC 3339)", fix: "use RFC 3339, e.g. 2026-01-02T15:04:05Z"},
			{name: "until", kind: kindString, maxLen: 64, format: "date-time", desc: "Only payments made before this time (RFC 3339)", fix: "use RFC 3339, e.g. 2026-01-02T15:04:05Z"},
			{name: "limit", kind: kindInteger, min: 1, max: storage.MaxListLimit, desc: "Most payments to list (default 20)", fix: fmt.Sprintf("send 1 to %d", storage.MaxListLimit)},
			{name: "after", aliases: []string{"cursor"}, kind: kindString, maxLen: maxCursorLen, desc: "Continue after this cursor (the next value of a previous page)", fix: "pass the next value of a previous page unchanged"},
		}},
		run: s.payments,
	}, {
		def: sdk.Tool{Name: ToolTokens, Title: "List cached L402 tokens",
			Description: "List the L402 tokens this node bought and caches for reuse, by origin and scope, with their ready Authorization values.",
			Annotations: &sdk.ToolAnnotations{Title: "L402 tokens", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}},
		spec: spec{params: []param{
			{name: "origin", kind: kindString, maxLen: maxOriginLen, desc: "Only tokens for this origin, e.g. https://api.example.com", fix: "send scheme://host[:port]"},
		}},
		run: s.tokens,
	}, {
		def: sdk.Tool{Name: ToolSessions, Title: "List prepaid sessions",
			Description: "List the prepaid sessions this node holds at sellers (opened by access_l402_resource with session: true): deposit, the balance the seller last reported, state and refund.",
			Annotations: &sdk.ToolAnnotations{Title: "Prepaid sessions", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}},
		run: s.sessions,
	}, {
		def: sdk.Tool{Name: ToolCloseSession, Title: "Close a prepaid session",
			Description: "Close a prepaid session at its seller and collect the unspent balance: the seller pays it to this node's own invoice, and the refund is recorded once this node's LND received it.",
			Annotations: &sdk.ToolAnnotations{Title: "Close session", IdempotentHint: true, DestructiveHint: ptr(false), OpenWorldHint: ptr(true)}},
		spec: spec{params: []param{{name: "sessionId", aliases: []string{"session_id"}, kind: kindString, required: true, hex64: true,
			desc: "The session's id (from list_l402_sessions)", fix: "send the 64-hex sessionId from list_l402_sessions"}}},
		run: s.closeSession,
	}}
}

// Package gate puts a Lightning price on HTTP and gRPC services: it is
// l402d's paid reverse proxy, and the same gate as net/http middleware for
// Go programs that want to charge without a proxy.
//
// One core serves both shapes. For each request it finds the service (by
// host and path, in services-file order), lets whitelisted paths and
// services with auth off through, verifies an L402 credential if there is
// one, and otherwise answers with a 402 challenge (an invoice from the
// node's LND and a token bound to the service and to the pricing rule of
// the path). What happens to a request the gate lets through is the only
// difference between the shapes: the proxy hands it to the service's
// upstream (HTTP/1.1, h2c or TLS; gRPC trailers, streaming responses and
// WebSocket upgrades intact), the middleware to the next handler.
//
// A token opens exactly the paths of the pricing rule it was bought for:
// it carries services=<name>:0 and resource=<rule pattern>, and the gate
// accepts it on a path only when the path's own rule is that pattern. A
// token bought for a cheap rule therefore never opens a path priced by
// another rule, whatever the patterns' prefixes (see docs/gate.md).
//
// The package touches the producer only through the Producer interface
// (Issue, which calls LND, and Verify, which never does), reads the
// services file it is given, and serves HTTP. It holds no package-level
// state: every Gate has its own rate limiters, counters and transports.
package gate

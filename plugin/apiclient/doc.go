// Package apiclient is l402d's REST API for Go programs: the JSON bodies
// of every endpoint's request and answer, the names of the headers l402d
// reads and writes, the error body, and a Client with one method per
// endpoint.
//
// The server (plugin/api) encodes its answers with these very types, so a
// renamed field breaks the build of both sides rather than the wire.
//
// The package is meant to be imported by any Go program that talks to an
// l402d: it imports the standard library only (no store, no LND, no
// lndclient). Keep it that way.
//
// Errors: every method returns a *Error for an answer l402d gave as an
// error (status, code, message, field and fix; see errors.As), the
// transport's error (a *url.Error) when l402d could not be reached, and
// another error when an answer could not be read.
package apiclient

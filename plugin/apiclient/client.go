package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client calls one l402d's REST API with one key. It is safe for
// concurrent use. Each key role has its own endpoints: the producer key
// (api.key) creates, verifies and lists challenges; the spend key
// (spend.key) is for the consumer endpoints; the admin key (admin.key)
// may call every endpoint.
type Client struct {
	// BaseURL is l402d's API address, e.g. "http://127.0.0.1:8402".
	BaseURL string
	// APIKey is sent as X-API-Key; empty sends none.
	APIKey string
	// HTTPClient makes the calls; nil: http.DefaultClient. Its
	// CheckRedirect is not used: the client never follows a redirect,
	// since l402d's API sends none and following one would hand the key
	// to wherever it points.
	HTTPClient *http.Client
	// UserAgent, if set, is sent as User-Agent.
	UserAgent string
}

// Error is an answer l402d gave as an error: its HTTP status and its
// error body. A consumer error also says what is known of the payment
// concerned. Use errors.As to get one.
type Error struct {
	// StatusCode is the HTTP status (202 for a payment still in flight).
	StatusCode int
	// Code is stable (e.g. "invalid_field", "budget_exceeded"); Message
	// says what went wrong, Field which field (if one), Fix how to fix
	// it.
	Code, Message, Field, Fix string
	// PriceSats and PaymentHash: the challenge concerned, if known.
	PriceSats   int64
	PaymentHash string
	// Payment and Token: a payment made although the call failed (paid,
	// but the target did not answer), if any.
	Payment *PaymentInfo
	Token   *TokenInfo
	// Body is the answer's body as received.
	Body []byte
}

// Error renders the message, the code and the fix.
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("l402d answered %d: %.300s", e.StatusCode, e.Body)
	}
	s := e.Message
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	if e.Fix != "" {
		s += " (fix: " + e.Fix + ")"
	}
	return s
}

// newError reads an error answer. A body that is not an error body gives
// an Error with only StatusCode and Body.
func newError(status int, raw []byte) *Error {
	e := &Error{StatusCode: status, Body: raw}
	var b ErrorResponse
	if json.Unmarshal(raw, &b) == nil {
		e.Code, e.Message, e.Field, e.Fix = b.Code, b.Error, b.Field, b.Fix
		e.PriceSats, e.PaymentHash, e.Payment, e.Token = b.PriceSats, b.PaymentHash, b.Payment, b.Token
	}
	return e
}

// DecodeError is a success answer whose body is not the JSON expected.
type DecodeError struct {
	StatusCode int
	Body       []byte
	Err        error
}

// Error says what l402d answered instead.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("l402d answered %d with something that is not JSON: %.200s", e.StatusCode, e.Body)
}

// Unwrap returns the JSON error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Request builds a request to l402d: path is the API path (with its
// query), in, if not nil, is sent as JSON.
func (c *Client) Request(ctx context.Context, method, path string, in any) (*http.Request, error) {
	var rd io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if c.APIKey != "" {
		req.Header.Set(HeaderAPIKey, c.APIKey)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	return req, nil
}

// send makes a request; the caller closes the body of the answer.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	var hc http.Client
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	hc.CheckRedirect = refuseRedirect
	return hc.Do(req)
}

// ErrRedirect is returned for an answer that redirects elsewhere.
var ErrRedirect = errors.New("l402d's API answered with a redirect, which the client does not follow (the API key would go along); check BaseURL")

func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("%w: to %s", ErrRedirect, req.URL.Redacted())
}

// Do sends in as JSON (nil: no body) and decodes a success answer into
// out (nil: ignored). An error answer, and 202 (a payment still in
// flight), is a *Error; so is any status not in 2xx, except those listed
// in also, which are decoded into out as a success is.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, also ...int) error {
	req, err := c.Request(ctx, method, path, in)
	if err != nil {
		return err
	}
	return c.roundTrip(req, out, also...)
}

// roundTrip is Do for a request built already.
func (c *Client) roundTrip(req *http.Request, out any, also ...int) error {
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading l402d's answer: %w", err)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300 && resp.StatusCode != http.StatusAccepted
	for _, s := range also {
		ok = ok || resp.StatusCode == s
	}
	if !ok {
		return newError(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return &DecodeError{StatusCode: resp.StatusCode, Body: raw, Err: err}
		}
	}
	return nil
}

// stream sends in and returns the answer, whatever its status, for the
// caller to read and close.
func (c *Client) stream(ctx context.Context, method, path string, in any) (*http.Response, error) {
	req, err := c.Request(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	return c.send(req)
}

// errorOf reads an error answer and closes it.
func errorOf(resp *http.Response) *Error {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return newError(resp.StatusCode, raw)
}

// query renders a query string, leaving out empty values; "" for none.
func query(pairs ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			q.Set(pairs[i], pairs[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// itoa renders n, "" for 0.
func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

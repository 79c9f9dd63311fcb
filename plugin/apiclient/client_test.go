package apiclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestErrors: l402d's error answers are *Error with their fields, 202 (a
// payment in flight) included; an unreachable l402d is a *url.Error; a
// success that is not JSON a *DecodeError.
func TestErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderAPIKey) != "k" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"missing or invalid API key","code":"unauthorized","field":"X-API-Key","fix":"send a key"}`)
			return
		}
		switch r.URL.Path {
		case "/api/consumer/pay/invoice":
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"error":"in flight","code":"payment_in_flight","paymentHash":"ab","payment":{"paymentHash":"ab","state":"in_flight"}}`)
		case "/api/consumer/balance":
			io.WriteString(w, `not json`)
		default:
			io.WriteString(w, `{"valid":true,"amountSats":5}`)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := &Client{BaseURL: srv.URL + "/", APIKey: "k"}

	v, err := c.Verify(ctx, VerifyRequest{Macaroon: "m", Preimage: "p"})
	if err != nil || !v.Valid || v.AmountSats != 5 {
		t.Fatalf("verify: %+v %v", v, err)
	}
	_, err = (&Client{BaseURL: srv.URL}).Verify(ctx, VerifyRequest{})
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 401 || e.Code != "unauthorized" || e.Field != "X-API-Key" || e.Fix != "send a key" ||
		e.Message != "missing or invalid API key" || err.Error() != "missing or invalid API key [unauthorized] (fix: send a key)" {
		t.Fatalf("401: %#v", err)
	}
	_, err = c.PayInvoice(ctx, PayInvoiceRequest{Invoice: "lnbc1"})
	if !errors.As(err, &e) || e.StatusCode != 202 || e.PaymentHash != "ab" || e.Payment == nil || e.Payment.State != "in_flight" {
		t.Fatalf("202: %#v", err)
	}
	var de *DecodeError
	if _, err = c.Balance(ctx); !errors.As(err, &de) || de.StatusCode != 200 {
		t.Fatalf("not JSON: %v", err)
	}
	var ue *url.Error
	if _, err = (&Client{BaseURL: "http://127.0.0.1:1"}).Node(ctx); !errors.As(err, &ue) {
		t.Fatalf("unreachable: %v", err)
	}
}

// TestNoRedirect: the key never follows a redirect, even with a caller's
// client that would follow it, to the same host or another.
func TestNoRedirect(t *testing.T) {
	var leaked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get(HeaderAPIKey))
		io.WriteString(w, `{"valid":true}`)
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			leaked = append(leaked, r.Header.Get(HeaderAPIKey))
			return
		}
		to := elsewhere.URL + r.URL.Path
		if r.URL.Query().Get("same") != "" {
			to = "/same"
		}
		http.Redirect(w, r, to, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	follow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	for _, tc := range []struct {
		name string
		c    *Client
		path string
	}{
		{"default client", &Client{BaseURL: srv.URL, APIKey: "secret"}, "/api/verify"},
		{"caller's client", &Client{BaseURL: srv.URL, APIKey: "secret", HTTPClient: follow}, "/api/verify"},
		{"same host", &Client{BaseURL: srv.URL, APIKey: "secret"}, "/api/verify?same=1"},
	} {
		err := tc.c.Do(context.Background(), http.MethodPost, tc.path, map[string]string{"macaroon": "m"}, nil)
		if !errors.Is(err, ErrRedirect) {
			t.Errorf("%s: err %v, want ErrRedirect", tc.name, err)
		}
	}
	if len(leaked) != 0 {
		t.Fatalf("the redirect target got requests with keys %q", leaked)
	}
}

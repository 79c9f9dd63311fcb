package invoices

import (
	"context"
	"errors"
	"fmt"
	"testing"

	paymentsdb "github.com/lightningnetwork/lnd/payments/db"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMapErr checks that LND's answers reach callers as the sentinels they
// branch on, in the forms lndclient delivers them: a payment stream's gRPC
// code is turned into lnd's own error on the way (a payment LND never
// started stayed reserved for ever when that went unrecognized).
func TestMapErr(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"track: never initiated (lndclient)", paymentsdb.ErrPaymentNotInitiated, ErrNotFound},
		{"track: never initiated, wrapped", fmt.Errorf("x: %w", paymentsdb.ErrPaymentNotInitiated), ErrNotFound},
		{"grpc NotFound", status.Error(codes.NotFound, "unable to locate invoice"), ErrNotFound},
		{"pay: already paid (lndclient)", paymentsdb.ErrAlreadyPaid, ErrAlreadyPaid},
		{"pay: in flight", paymentsdb.ErrPaymentInFlight, ErrAlreadyPaid},
		{"pay: exists", paymentsdb.ErrPaymentExists, ErrAlreadyPaid},
		{"grpc AlreadyExists", status.Error(codes.AlreadyExists, "payment is in transition"), ErrAlreadyPaid},
		{"grpc Unavailable", status.Error(codes.Unavailable, "connection refused"), ErrUnavailable},
		{"starting", errors.New("rpc error: server is still in the process of starting"), ErrUnavailable},
		{"canceled", context.Canceled, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mapErr("op", tt.err); !errors.Is(got, tt.want) {
				t.Fatalf("mapErr(%v) = %v, want it to wrap %v", tt.err, got, tt.want)
			}
		})
	}
	if mapErr("op", nil) != nil {
		t.Fatal("mapErr(nil) != nil")
	}
	other := errors.New("insufficient balance")
	if got := mapErr("op", other); errors.Is(got, ErrNotFound) || errors.Is(got, ErrAlreadyPaid) || errors.Is(got, ErrUnavailable) || !errors.Is(got, other) {
		t.Fatalf("mapErr(other) = %v", got)
	}
}

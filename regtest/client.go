package regtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnrpc/walletrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
)

// Client is a gRPC connection to one LND node, authenticated with its admin
// macaroon, with the service clients tests need. The connection reconnects
// by itself after the node restarts. Close it when done.
type Client struct {
	// Node is the node this client talks to.
	Node      Node
	Lightning lnrpc.LightningClient
	Router    routerrpc.RouterClient
	Invoices  invoicesrpc.InvoicesClient
	WalletKit walletrpc.WalletKitClient
	State     lnrpc.StateClient

	conn *grpc.ClientConn
}

// Dial connects to node's gRPC port from the host (node.RPCAddr) using its
// TLS certificate and admin macaroon. It does not wait for the node to
// answer.
func Dial(node Node) (*Client, error) {
	creds, err := credentials.NewClientTLSFromFile(node.TLSCertPath, "")
	if err != nil {
		return nil, fmt.Errorf("%s: loading TLS certificate: %w", node.Name, err)
	}
	mac, err := os.ReadFile(node.AdminMacaroonPath)
	if err != nil {
		return nil, fmt.Errorf("%s: reading admin macaroon: %w", node.Name, err)
	}
	conn, err := grpc.NewClient(node.RPCAddr,
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(macaroonCredential(hex.EncodeToString(mac))),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		// Reconnect quickly after the node restarts (the default backoff
		// grows to two minutes), but give one attempt gRPC's default 20 s:
		// a node that has just restarted on a loaded machine can take
		// longer than 5 s to finish the TLS handshake.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 20 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: dialing %s: %w", node.Name, node.RPCAddr, err)
	}
	return &Client{
		Node:      node,
		Lightning: lnrpc.NewLightningClient(conn),
		Router:    routerrpc.NewRouterClient(conn),
		Invoices:  invoicesrpc.NewInvoicesClient(conn),
		WalletKit: walletrpc.NewWalletKitClient(conn),
		State:     lnrpc.NewStateClient(conn),
		conn:      conn,
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Pay sends a payment with SendPaymentV2 and follows it to its final state.
// It returns the final payment, and an error if the payment did not succeed
// (the payment is returned as well then, for its failure reason and HTLCs).
// A zero TimeoutSeconds is set to 30 s.
func (c *Client) Pay(ctx context.Context, req *routerrpc.SendPaymentRequest) (*lnrpc.Payment, error) {
	if req.TimeoutSeconds == 0 {
		req.TimeoutSeconds = 30
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Router.SendPaymentV2(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: SendPaymentV2: %w", c.Node.Name, err)
	}
	for {
		p, err := stream.Recv()
		if err != nil {
			return nil, fmt.Errorf("%s: following payment: %w", c.Node.Name, err)
		}
		switch p.Status {
		case lnrpc.Payment_SUCCEEDED:
			return p, nil
		case lnrpc.Payment_FAILED:
			return p, fmt.Errorf("%s: payment %s failed: %s", c.Node.Name, p.PaymentHash, p.FailureReason)
		}
	}
}

// ChannelWith returns c's channel with the node whose pubkey is peer, the
// active one first. It fails if there is none.
func (c *Client) ChannelWith(ctx context.Context, peer string) (*lnrpc.Channel, error) {
	resp, err := c.Lightning.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return nil, fmt.Errorf("%s: ListChannels: %w", c.Node.Name, err)
	}
	var found *lnrpc.Channel
	for _, ch := range resp.Channels {
		if ch.RemotePubkey != peer {
			continue
		}
		if ch.Active {
			return ch, nil
		}
		found = ch
	}
	if found == nil {
		return nil, errNoChannel
	}
	return found, nil
}

var errNoChannel = errors.New("no channel with that peer")

// macaroonCredential sends a hex macaroon with every call, as LND expects.
type macaroonCredential string

func (m macaroonCredential) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"macaroon": string(m)}, nil
}

func (macaroonCredential) RequireTransportSecurity() bool { return true }

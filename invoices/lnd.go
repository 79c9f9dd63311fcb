package invoices

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lightninglabs/lndclient"
	lndinvoices "github.com/lightningnetwork/lnd/invoices" // package invoices is ours; this is LND's
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	paymentsdb "github.com/lightningnetwork/lnd/payments/db"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// LNDConfig says how to reach an LND node.
//
// Exactly one of MacaroonPath and MacaroonDir is set. MacaroonDir is LND's
// macaroon directory (…/data/chain/bitcoin/<network>) and needs its
// admin, readonly, invoices, router, signer, walletkit and chainnotifier
// macaroons. MacaroonPath is one macaroon used for every call, which lets
// a node runner grant least privilege:
//
//	producer only: lncli bakemacaroon info:read invoices:read invoices:write
//	producer + consumer: add offchain:read offchain:write onchain:read
type LNDConfig struct {
	// Address is LND's gRPC host:port.
	Address string
	// TLSCertPath is LND's tls.cert.
	TLSCertPath  string
	MacaroonPath string
	MacaroonDir  string
	// Network is "mainnet", "testnet", "testnet4", "signet", "regtest"
	// or "simnet"; it must match the node's.
	Network string
	// RPCTimeout bounds unary calls; 0 means 30 s.
	RPCTimeout time.Duration
	// RetryInterval is how long a failed connection attempt is remembered
	// before the next call tries again; 0 means 1 s. Calls in between fail
	// fast with ErrUnavailable.
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// LND is a Backend over one LND node. It connects lazily and keeps
// trying: l402d starts, and verifies tokens, while LND is down.
type LND struct {
	cfg LNDConfig
	log *slog.Logger

	mu      sync.Mutex
	svc     *lndclient.GrpcLndServices
	lastTry time.Time
	lastErr error
	closed  bool
}

var _ Backend = (*LND)(nil)

// NewLND checks cfg and returns a backend that has not connected yet.
func NewLND(cfg LNDConfig) (*LND, error) {
	if cfg.Address == "" {
		return nil, errors.New("lnd: address is required (host:port of LND's gRPC)")
	}
	if _, err := ChainParams(cfg.Network); err != nil {
		return nil, fmt.Errorf("lnd: %w", err)
	}
	if (cfg.MacaroonPath == "") == (cfg.MacaroonDir == "") {
		return nil, errors.New("lnd: set exactly one of the macaroon path and the macaroon dir")
	}
	for what, p := range map[string]string{"tls cert": cfg.TLSCertPath, "macaroon": cfg.MacaroonPath, "macaroon dir": cfg.MacaroonDir} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("lnd: %s: %w", what, err)
		}
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = 30 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &LND{cfg: cfg, log: cfg.Logger}, nil
}

// Close drops the connection.
func (l *LND) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.svc != nil {
		l.svc.Close()
		l.svc = nil
	}
}

// Network is the network this backend was configured for.
func (l *LND) Network() string { return l.cfg.Network }

// services returns the connected lndclient services, connecting first if
// needed. Once connected, gRPC itself reconnects when LND restarts.
func (l *LND) services(ctx context.Context) (*lndclient.LndServices, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("%w: backend closed", ErrUnavailable)
	}
	if l.svc != nil {
		return &l.svc.LndServices, nil
	}
	if l.lastErr != nil && time.Since(l.lastTry) < l.cfg.RetryInterval {
		return nil, l.lastErr
	}
	l.lastTry = time.Now()
	cctx, cancel := context.WithTimeout(ctx, l.cfg.RPCTimeout)
	defer cancel()
	svc, err := lndclient.NewLndServices(&lndclient.LndServicesConfig{
		LndAddress:         l.cfg.Address,
		Network:            lndclient.Network(l.cfg.Network),
		MacaroonDir:        l.cfg.MacaroonDir,
		CustomMacaroonPath: l.cfg.MacaroonPath,
		TLSPath:            l.cfg.TLSCertPath,
		RPCTimeout:         l.cfg.RPCTimeout,
		CallerCtx:          cctx,
	})
	if err != nil {
		l.lastErr = fmt.Errorf("%w: connecting to LND at %s: %v", ErrUnavailable, l.cfg.Address, err)
		l.log.Warn("lnd connection failed", "address", l.cfg.Address, "err", err)
		return nil, l.lastErr
	}
	l.log.Info("connected to lnd", "address", l.cfg.Address, "alias", svc.NodeAlias, "pubkey", svc.NodePubkey.String())
	l.svc, l.lastErr = svc, nil
	return &l.svc.LndServices, nil
}

// mapErr turns gRPC errors into the package's errors.
func mapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	// lndclient turns the gRPC codes of the payment streams into lnd's
	// own errors, losing the code: a payment LND never started (Track) and
	// one it already has (Pay) arrive as these.
	switch {
	case errors.Is(err, paymentsdb.ErrPaymentNotInitiated):
		return fmt.Errorf("%w: %s: %v", ErrNotFound, what, err)
	case errors.Is(err, paymentsdb.ErrAlreadyPaid), errors.Is(err, paymentsdb.ErrPaymentExists),
		errors.Is(err, paymentsdb.ErrPaymentInFlight):
		return fmt.Errorf("%w: %s: %v", ErrAlreadyPaid, what, err)
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	case codes.NotFound:
		return fmt.Errorf("%w: %s: %v", ErrNotFound, what, err)
	case codes.AlreadyExists:
		return fmt.Errorf("%w: %s: %v", ErrAlreadyPaid, what, err)
	}
	msg := err.Error()
	for _, s := range []string{"in the process of starting", "wallet locked", "not yet ready", "server is still"} {
		if strings.Contains(msg, s) {
			return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// AddInvoice creates an invoice.
func (l *LND) AddInvoice(ctx context.Context, req AddInvoiceRequest) (Invoice, error) {
	svc, err := l.services(ctx)
	if err != nil {
		return Invoice{}, err
	}
	created := time.Now().Truncate(time.Second)
	hash, payReq, err := svc.Client.AddInvoice(ctx, &invoicesrpc.AddInvoiceData{
		Memo:   req.Memo,
		Value:  lnwire.NewMSatFromSatoshis(btcAmount(req.AmountSats)),
		Expiry: int64(req.Expiry / time.Second),
	})
	if err != nil {
		return Invoice{}, mapErr("add invoice", err)
	}
	return Invoice{PaymentHash: hash, PaymentRequest: payReq, ExpiresAt: expiresAt(created, req.Expiry)}, nil
}

// LookupInvoice returns an invoice's state.
func (l *LND) LookupInvoice(ctx context.Context, hash lntypes.Hash) (InvoiceStatus, error) {
	svc, err := l.services(ctx)
	if err != nil {
		return InvoiceStatus{}, err
	}
	inv, err := svc.Client.LookupInvoice(ctx, hash)
	if err != nil {
		return InvoiceStatus{}, mapErr("lookup invoice", err)
	}
	return InvoiceStatus{
		PaymentHash:    inv.Hash,
		PaymentRequest: inv.PaymentRequest,
		Memo:           inv.Memo,
		State:          invoiceState(inv.State),
		AmountMsat:     int64(inv.Amount),
		AmountPaidMsat: int64(inv.AmountPaid),
		CreatedAt:      inv.CreationDate,
		SettledAt:      inv.SettleDate,
		SettleIndex:    inv.SettleIndex,
	}, nil
}

func invoiceState(s lndinvoices.ContractState) InvoiceState {
	switch s {
	case lndinvoices.ContractSettled:
		return InvoiceSettled
	case lndinvoices.ContractCanceled:
		return InvoiceCanceled
	case lndinvoices.ContractAccepted:
		return InvoiceAccepted
	}
	return InvoiceOpen
}

// SubscribeSettlements streams settlements after afterSettleIndex.
func (l *LND) SubscribeSettlements(ctx context.Context, afterSettleIndex uint64) (<-chan Settlement, <-chan error, error) {
	svc, err := l.services(ctx)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	updates, errs, err := svc.Client.SubscribeInvoices(ctx, lndclient.InvoiceSubscriptionRequest{SettleIndex: afterSettleIndex})
	if err != nil {
		cancel()
		return nil, nil, mapErr("subscribe invoices", err)
	}
	out := make(chan Settlement)
	outErr := make(chan error, 1)
	go func() {
		defer cancel()
		defer close(out)
		for {
			select {
			case inv, ok := <-updates:
				if !ok {
					outErr <- mapErr("invoice stream", <-errs)
					return
				}
				if inv.State != lndinvoices.ContractSettled || inv.SettleIndex <= afterSettleIndex {
					continue
				}
				s := Settlement{PaymentHash: inv.Hash, AmountPaidMsat: int64(inv.AmountPaid), SettledAt: inv.SettleDate, SettleIndex: inv.SettleIndex}
				select {
				case out <- s:
				case <-ctx.Done():
					outErr <- ctx.Err()
					return
				}
			case err := <-errs:
				if err == nil {
					err = errors.New("stream closed")
				}
				outErr <- mapErr("invoice stream", err)
				return
			case <-ctx.Done():
				outErr <- ctx.Err()
				return
			}
		}
	}()
	return out, outErr, nil
}

// Pay pays an invoice and waits for the final outcome.
func (l *LND) Pay(ctx context.Context, req PayRequest) (Payment, error) {
	svc, err := l.services(ctx)
	if err != nil {
		return Payment{}, err
	}
	timeout := req.Timeout
	if timeout < time.Second {
		timeout = 60 * time.Second
	}
	d, err := l.DecodeInvoice(ctx, req.Invoice)
	if err != nil {
		return Payment{}, err
	}
	if req.AmountMsat != 0 || d.AmountMsat == 0 {
		return l.payAmount(ctx, svc, req, d, timeout)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, errs, err := svc.Router.SendPayment(sctx, lndclient.SendPaymentRequest{
		Invoice:    req.Invoice,
		MaxFeeMsat: lnwire.MilliSatoshi(req.MaxFeeMsat),
		Timeout:    timeout,
	})
	if err != nil {
		return Payment{PaymentHash: d.PaymentHash, State: PaymentInFlight}, mapErr("send payment", err)
	}
	return follow(ctx, d.PaymentHash, updates, errs, "send payment")
}

// payAmount pays AmountMsat to amountless invoice d, which lndclient's
// SendPayment cannot: it starts the payment on the raw router client and,
// once LND has taken it, follows it as Track does.
func (l *LND) payAmount(ctx context.Context, svc *lndclient.LndServices, req PayRequest, d DecodedInvoice, timeout time.Duration) (Payment, error) {
	switch {
	case d.AmountMsat != 0:
		return Payment{}, fmt.Errorf("%w: the invoice names its amount; pay it without one", ErrInvalidInvoice)
	case req.AmountMsat <= 0:
		return Payment{}, fmt.Errorf("%w: the invoice names no amount; say how much to pay", ErrInvalidInvoice)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rctx, _, rc := svc.Router.RawClientWithMacAuth(sctx)
	stream, err := rc.SendPaymentV2(rctx, &routerrpc.SendPaymentRequest{
		PaymentRequest: req.Invoice,
		AmtMsat:        req.AmountMsat,
		FeeLimitMsat:   req.MaxFeeMsat,
		TimeoutSeconds: int32(timeout / time.Second),
	})
	if err == nil {
		_, err = stream.Recv() // the first update: LND has the payment
	}
	if err != nil {
		return Payment{PaymentHash: d.PaymentHash, State: PaymentInFlight}, mapErr("send payment", err)
	}
	cancel() // the payment goes on without the stream
	return l.Track(ctx, d.PaymentHash)
}

// Track follows a payment the node already knows.
func (l *LND) Track(ctx context.Context, hash lntypes.Hash) (Payment, error) {
	svc, err := l.services(ctx)
	if err != nil {
		return Payment{}, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, errs, err := svc.Router.TrackPayment(sctx, hash)
	if err != nil {
		return Payment{PaymentHash: hash, State: PaymentInFlight}, mapErr("track payment", err)
	}
	return follow(ctx, hash, updates, errs, "track payment")
}

// follow reads payment updates until the payment is final.
func follow(ctx context.Context, hash lntypes.Hash, updates chan lndclient.PaymentStatus, errs chan error, what string) (Payment, error) {
	p := Payment{PaymentHash: hash, State: PaymentInFlight}
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				return p, mapErr(what, fmt.Errorf("%w: payment stream closed", ErrUnavailable))
			}
			p.AmountMsat, p.FeeMsat = int64(u.Value), int64(u.Fee)
			switch u.State {
			case lnrpc.Payment_SUCCEEDED:
				p.State, p.Preimage = PaymentSucceeded, u.Preimage
				return p, nil
			case lnrpc.Payment_FAILED:
				p.State, p.FailureReason = PaymentFailed, failureReason(u.FailureReason)
				return p, nil
			}
		case err := <-errs:
			return p, mapErr(what, err)
		case <-ctx.Done():
			return p, fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

func failureReason(r lnrpc.PaymentFailureReason) string {
	s := strings.TrimPrefix(r.String(), "FAILURE_REASON_")
	return strings.ToLower(s)
}

// DecodeInvoice decodes locally for the configured network.
func (l *LND) DecodeInvoice(_ context.Context, invoice string) (DecodedInvoice, error) {
	return DecodeInvoice(invoice, l.cfg.Network)
}

// NodeInfo describes the node.
func (l *LND) NodeInfo(ctx context.Context) (NodeInfo, error) {
	svc, err := l.services(ctx)
	if err != nil {
		return NodeInfo{}, err
	}
	// GetInfo asks the chain backend for its best block and waits while
	// the backend is gone, though LND itself is fine. Leave a third of
	// the time to ask LND's state service, which needs no chain, so such
	// a node is reported as up with its chain backend unresponsive.
	gctx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		gctx, cancel = context.WithTimeout(ctx, time.Until(dl)*2/3)
	}
	info, err := svc.Client.GetInfo(gctx)
	cancel()
	if err != nil {
		if st, serr := svc.State.GetState(ctx); serr == nil && st.ReadyForGetInfo() {
			return NodeInfo{Pubkey: svc.NodePubkey.String(), Alias: svc.NodeAlias, Network: l.cfg.Network, ChainUnresponsive: true}, nil
		}
		return NodeInfo{}, mapErr("get info", err)
	}
	return NodeInfo{
		Pubkey:        hex.EncodeToString(info.IdentityPubkey[:]),
		Alias:         info.Alias,
		Network:       info.Network,
		Version:       info.Version,
		BlockHeight:   info.BlockHeight,
		SyncedToChain: info.SyncedToChain,
		ActiveChans:   info.ActiveChannels,
	}, nil
}

// Balance reports channel and on-chain funds.
func (l *LND) Balance(ctx context.Context) (Balance, error) {
	svc, err := l.services(ctx)
	if err != nil {
		return Balance{}, err
	}
	chans, err := svc.Client.ListChannels(ctx, false, false)
	if err != nil {
		return Balance{}, mapErr("list channels", err)
	}
	var b Balance
	for _, c := range chans {
		b.ChannelLocalMsat += int64(c.LocalBalance) * 1000
		b.ChannelRemoteMsat += int64(c.RemoteBalance) * 1000
	}
	cb, err := svc.Client.ChannelBalance(ctx)
	if err != nil {
		return Balance{}, mapErr("channel balance", err)
	}
	b.PendingOpenMsat = int64(cb.PendingBalance) * 1000
	wb, err := svc.Client.WalletBalance(ctx)
	if err != nil {
		return Balance{}, mapErr("wallet balance", err)
	}
	b.OnchainConfirmed, b.OnchainUnconfirmed = int64(wb.Confirmed), int64(wb.Unconfirmed)
	return b, nil
}

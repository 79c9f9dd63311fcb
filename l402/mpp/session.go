package mpp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// SessionAction is what a session credential asks for.
type SessionAction string

// Session actions (draft-lightning-session-00 §8).
const (
	// ActionOpen opens a session with the deposit's preimage.
	ActionOpen SessionAction = "open"
	// ActionBearer spends from an open session.
	ActionBearer SessionAction = "bearer"
	// ActionTopUp adds a paid top-up invoice to a session.
	ActionTopUp SessionAction = "topUp"
	// ActionClose closes a session; the rest is refunded.
	ActionClose SessionAction = "close"
)

// SessionRequest is the request object of method "lightning", intent
// "session": the price of one unit and the deposit invoice that opens (or
// tops up) a session.
type SessionRequest struct {
	// Amount is the price of one unit in satoshis, a decimal string.
	Amount string `json:"amount"`
	// Currency is always "sat".
	Currency string `json:"currency"`
	// Description is an optional memo.
	Description string `json:"description,omitempty"`
	// UnitType optionally names the unit ("request").
	UnitType string `json:"unitType,omitempty"`
	// DepositInvoice is the BOLT 11 invoice to pay to open or top up.
	DepositInvoice string `json:"depositInvoice,omitempty"`
	// PaymentHash is the deposit invoice's payment hash, lowercase hex.
	PaymentHash string `json:"paymentHash"`
	// DepositAmount is the deposit in satoshis, a decimal string.
	DepositAmount string `json:"depositAmount,omitempty"`
	// IdleTimeout is the server's idle timeout in seconds.
	IdleTimeout string `json:"idleTimeout,omitempty"`
}

// Validate checks what a payer and a verifier rely on: a decimal unit
// price, currency "sat", a 32-byte payment hash, and a decimal deposit
// when present.
func (r SessionRequest) Validate() error {
	if !isDecimal(r.Amount) {
		return fieldErr("amount", "not a decimal number of satoshis")
	}
	if _, err := strconv.ParseUint(r.Amount, 10, 63); err != nil {
		return fieldErr("amount", "out of range")
	}
	if r.Currency != CurrencySat {
		return fieldErr("currency", `not "sat"`)
	}
	if _, err := lntypes.MakeHashFromStr(r.PaymentHash); err != nil {
		return fieldErr("paymentHash", "not 32 bytes of hex")
	}
	if r.DepositAmount != "" {
		if !isDecimal(r.DepositAmount) {
			return fieldErr("depositAmount", "not a decimal number of satoshis")
		}
		if _, err := strconv.ParseUint(r.DepositAmount, 10, 63); err != nil {
			return fieldErr("depositAmount", "out of range")
		}
	}
	return nil
}

// DepositSats is the deposit amount, 0 when absent.
func (r SessionRequest) DepositSats() int64 {
	n, _ := strconv.ParseInt(r.DepositAmount, 10, 64)
	return n
}

// AmountSats is the unit price.
func (r SessionRequest) AmountSats() int64 {
	n, _ := strconv.ParseInt(r.Amount, 10, 64)
	return n
}

// SessionRequest decodes c's request, refusing a challenge that is not
// lightning/session.
func (c Challenge) SessionRequest() (SessionRequest, error) {
	if c.Method != MethodLightning || c.Intent != IntentSession {
		return SessionRequest{}, ErrUnsupported
	}
	raw, err := decodeB64(c.Request)
	if err != nil {
		return SessionRequest{}, fieldErr("request", "not base64url")
	}
	var r SessionRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return SessionRequest{}, fieldErr("request", "not a JSON session request: "+err.Error())
	}
	return r, r.Validate()
}

// NewSessionChallenge builds the lightning session challenge a server
// sends for req, bound with key like a charge's.
func NewSessionChallenge(key []byte, realm string, req SessionRequest, expires time.Time) (Challenge, error) {
	if err := req.Validate(); err != nil {
		return Challenge{}, err
	}
	if req.DepositInvoice == "" {
		return Challenge{}, fieldErr("depositInvoice", "missing")
	}
	enc, err := EncodeRequest(req)
	if err != nil {
		return Challenge{}, err
	}
	c := Challenge{Realm: realm, Method: MethodLightning, Intent: IntentSession, Request: enc}
	if !expires.IsZero() {
		c.Expires = expires.UTC().Format(time.RFC3339)
	}
	if c.ID, err = NewChallengeID(key, c); err != nil {
		return Challenge{}, err
	}
	return c, c.check("")
}

// SessionPayload is the credential payload of a lightning session.
type SessionPayload struct {
	// Action is open, bearer, topUp or close.
	Action SessionAction `json:"action"`
	// Preimage opens the session's deposit hash (open, bearer, close).
	Preimage string `json:"preimage,omitempty"`
	// SessionID is the deposit's payment hash (bearer, topUp, close).
	SessionID string `json:"sessionId,omitempty"`
	// ReturnInvoice is an amountless BOLT 11 invoice of the client's,
	// paid with the unspent balance at close (open only).
	ReturnInvoice string `json:"returnInvoice,omitempty"`
	// TopUpPreimage opens the echoed challenge's deposit hash (topUp).
	TopUpPreimage string `json:"topUpPreimage,omitempty"`
}

// Session is a verified session credential: the echoed challenge is ours
// (its id verifies), and the preimages it carries open what they claim.
// Whether the session exists, is open and has the balance is the store's
// business. The echoed challenge's expiry is not enforced: it only says
// how long the deposit invoice could be paid, which the node enforces,
// and a deposit paid in time must not be refused because its preimage
// came back late.
type Session struct {
	// Challenge is the echoed (authenticated) challenge and Request its
	// decoded request.
	Challenge Challenge
	Request   SessionRequest
	Action    SessionAction
	// ID is the session: the payment hash of its opening deposit.
	ID lntypes.Hash
	// Preimage opens ID (open, bearer, close).
	Preimage lntypes.Preimage
	// TopUp is the paid top-up's hash (topUp only): the echoed request's
	// payment hash, opened by the payload's topUpPreimage.
	TopUp lntypes.Hash
	// ReturnInvoice is the open's refund invoice, unchecked here (the
	// caller decodes it for its network).
	ReturnInvoice string
}

// VerifySession checks a lightning session credential without state:
// method and intent, the id under key (constant time), the preimage(s)
// against the hashes they must open (see Session on expiry).
//
// Errors: *FieldError (l402.ErrMalformed), ErrUnsupported, ErrChallengeID,
// l402.ErrWrongPreimage.
func VerifySession(key []byte, cred Credential) (Session, error) {
	c := cred.Challenge
	if err := c.check("challenge."); err != nil {
		return Session{}, err
	}
	if c.Method != MethodLightning || c.Intent != IntentSession {
		return Session{}, fmt.Errorf("%w: method %q intent %q", ErrUnsupported, c.Method, c.Intent)
	}
	if !VerifyChallengeID(key, c) {
		return Session{}, ErrChallengeID
	}
	req, err := c.SessionRequest()
	if err != nil {
		return Session{}, err
	}
	var p SessionPayload
	if err := json.Unmarshal(cred.Payload, &p); err != nil {
		return Session{}, fieldErr("payload", "not a session payload: "+err.Error())
	}
	out := Session{Challenge: c, Request: req, Action: p.Action}
	reqHash, _ := lntypes.MakeHashFromStr(req.PaymentHash) // Validate checked it
	if _, _, err := c.ExpiresAt(); err != nil {
		return Session{}, fieldErr("challenge.expires", "not an RFC 3339 time")
	}
	switch p.Action {
	case ActionOpen, ActionTopUp, ActionBearer, ActionClose:
	case "":
		return Session{}, fieldErr("payload.action", "missing")
	default:
		return Session{}, fieldErr("payload.action", fmt.Sprintf("%q is not open, bearer, topUp or close", p.Action))
	}
	if p.Action == ActionOpen {
		out.ID = reqHash
		if p.ReturnInvoice == "" {
			return Session{}, fieldErr("payload.returnInvoice", "missing: an open needs an amountless invoice for the refund")
		}
		out.ReturnInvoice = p.ReturnInvoice
	} else {
		id, err := lntypes.MakeHashFromStr(p.SessionID)
		if err != nil {
			return Session{}, fieldErr("payload.sessionId", "not 32 bytes of hex")
		}
		out.ID = id
	}
	if p.Action == ActionTopUp {
		pre, err := lntypes.MakePreimageFromStr(p.TopUpPreimage)
		if err != nil {
			return Session{}, fieldErr("payload.topUpPreimage", "not 32 bytes of hex")
		}
		if !pre.Matches(reqHash) {
			return Session{}, l402.ErrWrongPreimage
		}
		out.TopUp = reqHash
		return out, nil
	}
	pre, err := lntypes.MakePreimageFromStr(p.Preimage)
	if err != nil {
		return Session{}, fieldErr("payload.preimage", "not 32 bytes of hex")
	}
	if !pre.Matches(out.ID) {
		return Session{}, l402.ErrWrongPreimage
	}
	out.Preimage = pre
	return out, nil
}

// NewSessionCredential answers session challenge c with payload p.
func NewSessionCredential(c Challenge, p SessionPayload) (string, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return "", fieldErr("payload", err.Error())
	}
	return FormatCredential(Credential{Challenge: c, Payload: raw})
}

// NewSessionReceipt is the receipt of a request served from session id.
func NewSessionReceipt(id [32]byte, challengeID string, at time.Time) Receipt {
	return Receipt{
		Status: ReceiptSuccess, Method: MethodLightning,
		Timestamp: at.UTC().Format(time.RFC3339), Reference: hexString(id[:]),
		ChallengeID: challengeID,
	}
}

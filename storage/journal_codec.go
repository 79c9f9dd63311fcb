package storage

import (
	"bytes"
	"encoding/binary"

	"github.com/lightningnetwork/lnd/lntypes"
)

// paymentFormat is the first byte of an encoded journal entry. Format 1
// entries lack the approval fields (they decode as unapproved, counted
// nowhere); formats 1 and 2 lack the scheme fields (they decode as L402,
// or no scheme for a bare invoice, with no offer and no receipt).
const paymentFormat = 3

// Stored payment state and kind codes.
var (
	paymentStates = [...]PaymentState{1: PaymentReserved, 2: PaymentInFlight, 3: PaymentSucceeded, 4: PaymentFailed}
	paymentKinds  = [...]PaymentKind{1: KindAccess, 2: KindChallenge, 3: KindInvoice}
	// Code 0 is no scheme (a bare invoice).
	paymentSchemes = [...]string{1: SchemeL402, 2: SchemeMPP, 3: SchemeX402}
)

func codeOf[T comparable](table []T, v T) byte {
	for i, x := range table {
		if i > 0 && x == v {
			return byte(i)
		}
	}
	return 0
}

func fromCode[T comparable](table []T, c byte) (T, bool) {
	var zero T
	if c == 0 || int(c) >= len(table) {
		return zero, false
	}
	return table[c], true
}

// encodePayment lays a journal entry out as
//
//	format 1 ‖ payment hash 32 ‖ preimage 32 ‖ state code ‖ kind code
//	‖ varint amount, fee limit, fee (msat), budget day
//	‖ uvarint attempts ‖ varint created, updated, settled (Unix ns)
//	‖ strings (uvarint length ‖ bytes): invoice, domain, URL, macaroon,
//	  origin, scope, failure reason
//	‖ approved (0 or 1) ‖ varint unapproved minute (format 2 on)
//	‖ scheme code ‖ strings: offer, receipt (format 3 on)
func encodePayment(p *Payment) []byte {
	b := make([]byte, 0, 1+64+3+8*10+len(p.Invoice)+len(p.Domain)+len(p.URL)+len(p.Macaroon)+
		len(p.Origin)+len(p.Scope)+len(p.FailureReason)+len(p.Offer)+len(p.Receipt)+9*2)
	b = append(b, paymentFormat)
	b = append(b, p.PaymentHash[:]...)
	b = append(b, p.Preimage[:]...)
	b = append(b, codeOf(paymentStates[:], p.State), codeOf(paymentKinds[:], p.Kind))
	b = binary.AppendVarint(b, p.AmountMsat)
	b = binary.AppendVarint(b, p.FeeLimitMsat)
	b = binary.AppendVarint(b, p.FeeMsat)
	b = binary.AppendVarint(b, dayOf(p.BudgetDay))
	b = binary.AppendUvarint(b, uint64(p.Attempts))
	b = binary.AppendVarint(b, unixNanos(p.CreatedAt))
	b = binary.AppendVarint(b, unixNanos(p.UpdatedAt))
	b = binary.AppendVarint(b, unixNanos(p.SettledAt))
	for _, s := range [...]string{p.Invoice, p.Domain, p.URL, p.Macaroon, p.Origin, p.Scope, p.FailureReason} {
		b = appendString(b, s)
	}
	approved := byte(0)
	if p.Approved {
		approved = 1
	}
	b = binary.AppendVarint(append(b, approved), p.UnapprovedMinute)
	b = append(b, codeOf(paymentSchemes[:], p.Scheme))
	b = appendString(b, p.Offer)
	return appendString(b, p.Receipt)
}

// decodePayment decodes what encodePayment wrote; k names the entry in
// errors and must end with the payment hash inside.
func decodePayment(k, v []byte) (*Payment, error) {
	r := reader{b: v}
	f := r.byte()
	if r.err == nil && (f < 1 || f > paymentFormat) {
		return nil, corrupt(k, "unknown payment format %d", f)
	}
	p := new(Payment)
	r.bytes(p.PaymentHash[:])
	r.bytes(p.Preimage[:])
	state, kind := r.byte(), r.byte()
	p.AmountMsat = r.varint()
	p.FeeLimitMsat = r.varint()
	p.FeeMsat = r.varint()
	day := r.varint()
	attempts := r.uvarint()
	p.CreatedAt = fromUnixNanos(r.varint())
	p.UpdatedAt = fromUnixNanos(r.varint())
	p.SettledAt = fromUnixNanos(r.varint())
	for _, s := range [...]*string{&p.Invoice, &p.Domain, &p.URL, &p.Macaroon, &p.Origin, &p.Scope, &p.FailureReason} {
		*s = r.string()
	}
	approved := byte(0)
	if f >= 2 {
		approved = r.byte()
		p.UnapprovedMinute = r.varint()
	}
	scheme := byte(0)
	if f >= 3 {
		scheme = r.byte()
		p.Offer = r.string()
		p.Receipt = r.string()
	}
	if err := r.done(); err != nil {
		return nil, corrupt(k, "payment: %v", err)
	}
	var ok bool
	if p.State, ok = fromCode(paymentStates[:], state); !ok {
		return nil, corrupt(k, "unknown payment state code %d", state)
	}
	if p.Kind, ok = fromCode(paymentKinds[:], kind); !ok {
		return nil, corrupt(k, "unknown payment kind code %d", kind)
	}
	switch {
	case f < 3 && p.Kind != KindInvoice:
		p.Scheme = SchemeL402 // all there was before schemes were recorded
	case scheme != 0:
		if p.Scheme, ok = fromCode(paymentSchemes[:], scheme); !ok {
			return nil, corrupt(k, "unknown payment scheme code %d", scheme)
		}
	}
	// A day beyond what time.Unix can represent is damage, as are
	// amounts no payment can have.
	if day < -1<<40 || day > 1<<40 || attempts > 1<<32-1 || p.AmountMsat < 0 || p.FeeLimitMsat < 0 || p.FeeMsat < 0 || approved > 1 || p.UnapprovedMinute < 0 {
		return nil, corrupt(k, "payment holds out-of-range numbers")
	}
	p.BudgetDay, p.Attempts, p.Approved = dayStart(day), uint32(attempts), approved == 1
	if len(k) < lntypes.HashSize || !bytes.Equal(k[len(k)-lntypes.HashSize:], p.PaymentHash[:]) {
		return nil, corrupt(k, "payment record holds payment hash %s", p.PaymentHash)
	}
	return p, nil
}

package storage

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// challengeFormat is the first byte of an encoded challenge record.
const challengeFormat = 1

// Stored state codes.
const (
	codePending  = 1
	codeSettled  = 2
	codeCanceled = 3
)

func stateCode(s ChallengeState) byte {
	switch s {
	case StateSettled:
		return codeSettled
	case StateCanceled:
		return codeCanceled
	default:
		return codePending
	}
}

func stateFromCode(k []byte, c byte) (ChallengeState, error) {
	switch c {
	case codePending:
		return StatePending, nil
	case codeSettled:
		return StateSettled, nil
	case codeCanceled:
		return StateCanceled, nil
	}
	return "", corrupt(k, "unknown state code %d", c)
}

// encodeChallenge lays a challenge out as
//
//	format 1 ‖ payment hash 32 ‖ token id 32 ‖ state code
//	‖ varint price sats, created, expires, settled (Unix ns), amount msat
//	‖ uvarint settle index
//	‖ strings (uvarint length ‖ bytes): resource, description, service,
//	  invoice, macaroon, client id
func encodeChallenge(c *Challenge) []byte {
	b := make([]byte, 0, 1+64+1+6*10+len(c.Resource)+len(c.Description)+len(c.Service)+
		len(c.Invoice)+len(c.Macaroon)+len(c.ClientID)+6*2)
	b = append(b, challengeFormat)
	b = append(b, c.PaymentHash[:]...)
	b = append(b, c.TokenID[:]...)
	b = append(b, stateCode(c.State))
	b = binary.AppendVarint(b, c.PriceSats)
	b = binary.AppendVarint(b, unixNanos(c.CreatedAt))
	b = binary.AppendVarint(b, unixNanos(c.ExpiresAt))
	b = binary.AppendVarint(b, unixNanos(c.SettledAt))
	b = binary.AppendVarint(b, c.AmountPaidMsat)
	b = binary.AppendUvarint(b, c.SettleIndex)
	for _, s := range [...]string{c.Resource, c.Description, c.Service, c.Invoice, c.Macaroon, c.ClientID} {
		b = appendString(b, s)
	}
	return b
}

// decodeChallenge decodes what encodeChallenge wrote; k names the entry in
// errors and must match the payment hash inside.
func decodeChallenge(k, v []byte) (*Challenge, error) {
	r := reader{b: v}
	if f := r.byte(); r.err == nil && f != challengeFormat {
		return nil, corrupt(k, "unknown challenge format %d", f)
	}
	c := new(Challenge)
	r.bytes(c.PaymentHash[:])
	r.bytes(c.TokenID[:])
	code := r.byte()
	c.PriceSats = r.varint()
	c.CreatedAt = fromUnixNanos(r.varint())
	c.ExpiresAt = fromUnixNanos(r.varint())
	c.SettledAt = fromUnixNanos(r.varint())
	c.AmountPaidMsat = r.varint()
	c.SettleIndex = r.uvarint()
	c.Resource = r.string()
	c.Description = r.string()
	c.Service = r.string()
	c.Invoice = r.string()
	c.Macaroon = r.string()
	c.ClientID = r.string()
	if err := r.done(); err != nil {
		return nil, corrupt(k, "challenge: %v", err)
	}
	var err error
	if c.State, err = stateFromCode(k, code); err != nil {
		return nil, err
	}
	if len(k) < lntypes.HashSize || !bytes.Equal(k[len(k)-lntypes.HashSize:], c.PaymentHash[:]) {
		return nil, corrupt(k, "challenge record holds payment hash %s", c.PaymentHash)
	}
	return c, nil
}

// indexValue is a challenge's creation-index entry: state code ‖ expires
// (Unix ns, 8 bytes) ‖ resource.
func indexValue(c *Challenge) []byte {
	v := make([]byte, 0, 1+8+len(c.Resource))
	v = append(v, stateCode(c.State))
	v = binary.BigEndian.AppendUint64(v, uint64(unixNanos(c.ExpiresAt)))
	return append(v, c.Resource...)
}

// decodeIndexValue decodes indexValue; resource aliases v.
func decodeIndexValue(k, v []byte) (ChallengeState, time.Time, []byte, error) {
	r := reader{b: v}
	code := r.byte()
	expires := fromUnixNanos(int64(r.uint64()))
	if r.err != nil {
		return "", time.Time{}, nil, corrupt(k, "index entry: %v", r.err)
	}
	state, err := stateFromCode(k, code)
	return state, expires, r.rest(), err
}

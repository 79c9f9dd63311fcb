package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/x402"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// The x402 facilitator: a resource server that sold a request with an
// invoice this node issued (POST /api/l402/challenges, or the gate) asks
// it to check (verify) and spend (settle) the client's x402 Lightning
// payment. Settling spends the payment in the store every scheme shares,
// so one payment is settled once, whichever way it comes back.

// x402Supported answers GET /x402/supported: the Lightning exact scheme on
// the node's chain.
func (s *Server) x402Supported(w http.ResponseWriter, r *http.Request) {
	out := x402.SupportedResponse{Kinds: []x402.SupportedKind{}, Extensions: []string{}, Signers: map[string][]string{}}
	if id, ok := x402.NetworkID(s.cfg.Producer.Network()); ok {
		out.Kinds = append(out.Kinds, x402.SupportedKind{X402Version: x402.Version, Scheme: x402.SchemeExact, Network: id})
	}
	WriteJSON(w, http.StatusOK, out)
}

// readFacilitatorRequest reads the body of /x402/verify and /x402/settle.
func readFacilitatorRequest(w http.ResponseWriter, r *http.Request) (x402.FacilitatorRequest, bool) {
	var req x402.FacilitatorRequest
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "request body is not an x402 facilitator request: " + err.Error(), Code: "invalid_json",
			Fix: `send {"x402Version": 2, "paymentPayload": {...}, "paymentRequirements": {...}} as JSON`})
		return req, false
	}
	return req, true
}

// checkFacilitated runs the checks common to verify and settle.
func (s *Server) checkFacilitated(r *http.Request, req x402.FacilitatorRequest) (producer.Charge, x402.PaymentRequirements, error) {
	if req.X402Version != x402.Version {
		return producer.Charge{}, x402.PaymentRequirements{}, &x402.Error{Reason: x402.ReasonInvalidVersion, Field: "x402Version", Problem: "not 2"}
	}
	if err := x402.ValidateLightningRequirements(req.PaymentRequirements, "paymentRequirements."); err != nil {
		return producer.Charge{}, x402.PaymentRequirements{}, err
	}
	return s.cfg.Producer.CheckX402(r.Context(), req.PaymentPayload, &req.PaymentRequirements, "", "")
}

// x402Verify answers POST /x402/verify: would settle succeed now? It
// spends nothing.
func (s *Server) x402Verify(w http.ResponseWriter, r *http.Request) {
	req, ok := readFacilitatorRequest(w, r)
	if !ok {
		return
	}
	c, _, err := s.checkFacilitated(r, req)
	if err == nil {
		_, err = s.cfg.Producer.CheckCharge(r.Context(), c)
	}
	if err != nil {
		if reason, verdict := x402Reason(err); verdict {
			WriteJSON(w, http.StatusOK, x402.VerifyResponse{IsValid: false, InvalidReason: reason})
			return
		}
		s.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, x402.VerifyResponse{IsValid: true})
}

// x402Settle answers POST /x402/settle: spends the payment once, durably;
// a second settle of it answers duplicate_settlement.
func (s *Server) x402Settle(w http.ResponseWriter, r *http.Request) {
	req, ok := readFacilitatorRequest(w, r)
	if !ok {
		return
	}
	c, ours, err := s.checkFacilitated(r, req)
	if err == nil {
		c.Scheme = producer.SchemeX402
		_, err = s.cfg.Producer.Consume(r.Context(), c)
	}
	if err != nil {
		if reason, verdict := x402Reason(err); verdict {
			out := x402.NewSettlementFailure(req.PaymentRequirements.Network, err)
			out.ErrorReason = reason
			WriteJSON(w, http.StatusOK, out)
			return
		}
		s.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, x402.NewLightningSettlement(ours.Network, c.PaymentHash))
}

// x402Reason is the x402 reason of a refusal; verdict is false for a
// failure to check (the store), which is not the payment's fault.
func x402Reason(err error) (reason string, verdict bool) {
	var xe *x402.Error
	switch {
	case errors.As(err, &xe):
		return xe.Reason, true
	case errors.Is(err, storage.ErrConsumed):
		return x402.ReasonDuplicateSettlement, true
	case errors.Is(err, l402.ErrWrongPreimage):
		return x402.ReasonPreimageHashMismatch, true
	case errors.Is(err, l402.ErrExpired):
		return x402.ReasonInvoiceExpired, true
	case producer.ReasonCode(err) != "error":
		return x402.ReasonInvalidPayload, true // e.g. an invoice this node did not issue
	}
	return "", false
}

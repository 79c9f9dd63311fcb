package consumer

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/l402d/l402d/l402"
)

// scopeRefusal reports whether a 402's JSON body says the credential was
// refused only for being bought for another resource, service or
// capability of the same seller (l402d's reasons wrong_resource,
// wrong_service, missing_capability): the token is still good where it
// was bought for, so it stays cached.
func scopeRefusal(body []byte) bool {
	var b struct {
		Reason string `json:"reason"`
	}
	if len(body) == 0 || json.Unmarshal(body, &b) != nil {
		return false
	}
	switch b.Reason {
	case "wrong_resource", "wrong_service", "missing_capability":
		return true
	}
	return false
}

// challengeService returns the first service a challenge's token names.
func challengeService(ch l402.Challenge) string {
	mac, err := l402.DecodeMacaroon(ch.Macaroon)
	if err != nil {
		return ""
	}
	info, err := l402.Inspect(mac)
	if err != nil || len(info.Services) == 0 {
		return ""
	}
	return info.Services[0].Name
}

// readChallenge reads the offers of a 402 (see ParseOffers) and picks the
// one of the most preferred scheme in pref. It reads at most
// maxChallengeBody bytes of the body and returns them as head; when ok it
// closes the body. offered lists every offer, for notes.
func readChallenge(resp *http.Response, pref []string) (chosen Offer, offered []Offer, advertised int64, head []byte, ok bool) {
	head, _ = io.ReadAll(io.LimitReader(resp.Body, maxChallengeBody))
	offered, advertised = ParseOffers(resp.Header, head)
	chosen, ok = chooseOffer(offered, pref)
	if ok {
		discard(resp)
	}
	return chosen, offered, advertised, head, ok
}

// ParseChallengeBody reads a 402's JSON body: the challenge it carries
// (macaroon and invoice fields, either may be empty) and the price it
// states (amountSats, priceSats, amount_sats, price_sats or amount; 0 if
// none). Anything that is not a JSON object yields zero values.
func ParseChallengeBody(b []byte) (l402.Challenge, int64) {
	var m map[string]json.RawMessage
	if len(b) == 0 || json.Unmarshal(b, &m) != nil {
		return l402.Challenge{}, 0
	}
	ch := l402.Challenge{Scheme: l402.SchemeL402, Macaroon: jsonString(m, "macaroon"), Invoice: jsonString(m, "invoice")}
	if ch.Macaroon == "" {
		ch.Macaroon = jsonString(m, "token")
	}
	for _, k := range []string{"amountSats", "priceSats", "amount_sats", "price_sats", "amount"} {
		var n int64
		if json.Unmarshal(m[k], &n) == nil && n > 0 {
			return ch, n
		}
	}
	return ch, 0
}

// discard drains a little of a body (so the connection can be reused)
// and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

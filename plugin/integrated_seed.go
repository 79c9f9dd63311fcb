package plugin

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/l402d/l402d/invoices/embedded"
	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/apiclient"
)

// SeedResponse is POST /api/node/seed's answer.
type SeedResponse = apiclient.NodeSeed

// seedWarning is shown with the words.
const seedWarning = "These 24 words are the embedded LND wallet's seed: anyone who has them can take the node's funds. " +
	"Write them down and keep them offline. l402d will not show them again; they remain in the seed file " +
	"in the data dir until you delete it."

// seedHandler serves POST /api/node/seed (admin key): the embedded
// wallet's seed, once. It answers only requests made directly from this
// machine: from a loopback address and without proxy forwarding headers,
// so that a reverse proxy in front of l402d cannot expose it. seeds is
// nil in remote mode.
func seedHandler(seeds *embedded.SeedStore, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !directFromLoopback(r) {
			api.WriteError(w, http.StatusForbidden, api.ErrorBody{
				Error: "the wallet seed is only shown to requests made on the l402d machine itself",
				Code:  "loopback_only", Fix: "run `l402cli node seed` on the machine l402d runs on, against a loopback --listen address",
			})
			return
		}
		if seeds == nil {
			api.WriteError(w, http.StatusNotFound, api.ErrorBody{
				Error: "l402d runs beside a remote LND (--lnd-mode=remote); its seed is that node's",
				Code:  "not_integrated", Fix: "the seed of a remote LND was shown by lncli create",
			})
			return
		}
		seed, err := seeds.Show(time.Now())
		switch {
		case errors.Is(err, embedded.ErrNoSeed):
			api.WriteError(w, http.StatusNotFound, api.ErrorBody{
				Error: "l402d holds no wallet seed (the wallet was created from your own seed, or the seed file was deleted)",
				Code:  "no_seed",
			})
			return
		case errors.Is(err, embedded.ErrSeedShown):
			api.WriteError(w, http.StatusGone, api.ErrorBody{
				Error: err.Error(), Code: "seed_already_shown",
				Fix: "read the seed file in the data dir if you still need the words, then delete it",
			})
			return
		case err != nil:
			log.Error("reading the wallet seed", "err", err)
			api.WriteError(w, http.StatusInternalServerError, api.ErrorBody{Error: "reading the wallet seed failed", Code: "internal"})
			return
		}
		log.Warn("the wallet seed was shown; it will not be shown again", "remote", r.RemoteAddr)
		api.WriteJSON(w, http.StatusOK, SeedResponse{Mnemonic: seed.Mnemonic, Network: seed.Network, CreatedAt: seed.CreatedAt, Warning: seedWarning})
	})
}

// directFromLoopback reports whether r comes from a loopback address and
// carries no sign of having passed a proxy.
func directFromLoopback(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip", "X-Forwarded-Host"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

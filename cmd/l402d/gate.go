package main

import (
	"errors"
	"flag"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/l402d/l402d/plugin"
	"github.com/l402d/l402d/plugin/gate"
)

// gateFlags are the gate's flags. Each is also an L402D_GATE_* variable
// and a key of the --config file.
func gateFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "gate.listen", EnvVars: []string{"L402D_GATE_LISTEN"}, Usage: "the gate's own listen `ADDR` (HTTP/1.1 and h2c); empty disables the gate"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "gate.services", EnvVars: []string{"L402D_GATE_SERVICES"}, Usage: "YAML `FILE` of priced services (see docs/gate.md); reloaded when it changes and on SIGHUP"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "gate.legacy-lsat", EnvVars: []string{"L402D_GATE_LEGACY_LSAT"}, Usage: "also send an LSAT challenge, before the L402 one, for old clients"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "gate.reload-interval", EnvVars: []string{"L402D_GATE_RELOAD_INTERVAL"}, Value: plugin.DefaultGateReloadInterval, Usage: "how often to check the services file for changes; 0: only on SIGHUP or POST /api/gate/reload"}),
		newFloatFlag(&cli.Float64Flag{Name: "gate.mint-rate", EnvVars: []string{"L402D_GATE_MINT_RATE"}, Value: gate.DefaultMintRate, Usage: "challenges per second one client address (IPv6: /64) may cause; 0: unlimited"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "gate.mint-burst", EnvVars: []string{"L402D_GATE_MINT_BURST"}, Value: gate.DefaultMintBurst, Usage: "challenges one client address may cause at once"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "gate.max-pending", EnvVars: []string{"L402D_GATE_MAX_PENDING"}, Value: gate.DefaultMaxPending, Usage: "most unpaid, unexpired gate invoices at a time; 0: unlimited"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "gate.max-pending-per-client", EnvVars: []string{"L402D_GATE_MAX_PENDING_PER_CLIENT"}, Value: gate.DefaultMaxPendingPerClient,
			Usage: "most unpaid, unexpired gate invoices of one client address (IPv6: /64), so one client cannot fill --gate.max-pending; behind Tor or one NAT every client shares an address: raise it, or 0: no per-client share"}),
		newFloatFlag(&cli.Float64Flag{Name: "gate.token-rate", EnvVars: []string{"L402D_GATE_TOKEN_RATE"}, Value: gate.DefaultTokenRate, Usage: "paid requests per second per token, unless a service sets rate_limit; 0: unlimited"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "gate.fold-case", EnvVars: []string{"L402D_GATE_FOLD_CASE"},
			Usage: "match every service's paths case-insensitively (as fold_case: true on each), for upstreams that ignore case"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "gate.token-burst", EnvVars: []string{"L402D_GATE_TOKEN_BURST"}, Value: gate.DefaultTokenBurst, Usage: "paid requests one token may make at once"}),
	}
}

// applyGateFlags fills cfg.Gate.
func applyGateFlags(c *cli.Context, cfg *plugin.Config) error {
	g := plugin.GateConfig{
		Listen:              c.String("gate.listen"),
		ServicesFile:        c.String("gate.services"),
		LegacyLSAT:          c.Bool("gate.legacy-lsat"),
		ReloadInterval:      c.Duration("gate.reload-interval"),
		MintRate:            c.Float64("gate.mint-rate"),
		MintBurst:           c.Int("gate.mint-burst"),
		MaxPending:          c.Int("gate.max-pending"),
		MaxPendingPerClient: c.Int("gate.max-pending-per-client"),
		TokenRate:           c.Float64("gate.token-rate"),
		TokenBurst:          c.Int("gate.token-burst"),
		FoldCase:            c.Bool("gate.fold-case"),
	}
	switch {
	case g.Listen != "" && g.ServicesFile == "":
		return errors.New("--gate.listen needs --gate.services FILE (the priced services; see docs/gate.md)")
	case g.Listen == "" && g.ServicesFile != "":
		return errors.New("--gate.services needs --gate.listen ADDR (the gate's own address, apart from --listen)")
	case g.Listen != "" && g.Listen == cfg.Listen:
		return errors.New("--gate.listen must differ from --listen: the gate serves the public, the API its owner")
	case g.MintBurst < 0 || g.TokenBurst < 0:
		return errors.New("--gate.mint-burst and --gate.token-burst must be 0 or more (0: the rate, at least 1)")
	}
	// The flags' defaults are the real defaults, so a 0 here was asked
	// for: it means "no limit" (plugin.GateConfig's zero means default).
	if g.ReloadInterval <= 0 {
		g.ReloadInterval = -1
	}
	if g.MintRate <= 0 {
		g.MintRate = -1
	}
	if g.TokenRate <= 0 {
		g.TokenRate = -1
	}
	if g.MaxPending <= 0 {
		g.MaxPending = -1
	}
	if g.MaxPendingPerClient <= 0 {
		g.MaxPendingPerClient = -1
	}
	cfg.Gate = g
	return nil
}

// floatFlag is a float64 flag that the --config file may also set with a
// whole number: YAML reads "gate.token-rate: 5" as an int, which altsrc's
// own float flag refuses.
type floatFlag struct {
	*cli.Float64Flag
	set *flag.FlagSet
}

func newFloatFlag(f *cli.Float64Flag) *floatFlag { return &floatFlag{Float64Flag: f} }

// Apply implements cli.Flag, keeping the flag set for the config file.
func (f *floatFlag) Apply(set *flag.FlagSet) error {
	f.set = set
	return f.Float64Flag.Apply(set)
}

// ApplyInputSourceValue implements altsrc.FlagInputSourceExtension: the
// command line and the environment win over the config file.
func (f *floatFlag) ApplyInputSourceValue(c *cli.Context, isc altsrc.InputSourceContext) error {
	if f.set == nil || c.IsSet(f.Name) {
		return nil
	}
	for _, e := range f.EnvVars {
		if _, ok := os.LookupEnv(e); ok {
			return nil
		}
	}
	v, err := isc.Float64(f.Name)
	switch {
	case err != nil:
		n, ierr := isc.Int(f.Name)
		if ierr != nil {
			return err
		}
		v = float64(n)
	case v == 0:
		// Float64 answers 0 for a missing key too; only a present one
		// makes String fail (a number) or answer (a string).
		if s, serr := isc.String(f.Name); serr == nil && s == "" {
			return nil
		}
	}
	return f.set.Set(f.Name, strconv.FormatFloat(v, 'g', -1, 64))
}

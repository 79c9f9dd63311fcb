package gate

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseOptions says how to read a services file.
type ParseOptions struct {
	// Name is the file's name in error messages.
	Name string
	// MaxPriceSats is the highest price a rule may ask; zero means the
	// producer's default.
	MaxPriceSats int64
	// FoldCase makes every service match paths case-insensitively, as
	// if each set fold_case (for upstreams that ignore case).
	FoldCase bool
}

// LoadServices reads and compiles a services file.
func LoadServices(path string, opt ParseOptions) (*Services, error) {
	if opt.Name == "" {
		opt.Name = path
	}
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return ParseServices(data, opt)
}

// readLimited reads a services file, refusing one larger than MaxFileSize.
func readLimited(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("gate: services file: %w", err)
	}
	if fi.Size() > MaxFileSize {
		return nil, ConfigErrors{{File: path, Problem: fmt.Sprintf("is %d bytes", fi.Size()), Fix: fmt.Sprintf("a services file may be at most %d bytes", MaxFileSize)}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gate: services file: %w", err)
	}
	return data, nil
}

// ParseServices reads a services file (YAML) and compiles it. Every
// problem is reported, as ConfigErrors, with its line and a fix; no input
// makes it panic.
func ParseServices(data []byte, opt ParseOptions) (*Services, error) {
	f, perrs := parseFile(data, opt.Name)
	s, err := compile(f, opt)
	if len(perrs) > 0 {
		// Report what the checks found too, except about fields that
		// did not even parse (their zero values would be blamed).
		var ce ConfigErrors
		errors.As(err, &ce)
		for _, e := range ce {
			if !coveredBy(e.Field, perrs) && len(perrs) < maxErrors {
				perrs = append(perrs, e)
			}
		}
		slices.SortStableFunc(perrs, func(a, b *ConfigError) int { return a.Line - b.Line })
		return nil, perrs
	}
	if err != nil {
		return nil, err
	}
	s.hash = sha256.Sum256(data)
	return s, nil
}

// coveredBy reports whether field, or a field it belongs to or contains,
// already has an error.
func coveredBy(field string, errs ConfigErrors) bool {
	for _, e := range errs {
		if e.Field == "" || e.Field == field || strings.HasPrefix(field, e.Field+".") || strings.HasPrefix(field, e.Field+"[") ||
			strings.HasPrefix(e.Field, field+".") || strings.HasPrefix(e.Field, field+"[") {
			return true
		}
	}
	return false
}

// ParseFile reads a services file into a File without checking what the
// values mean; NewServices does that.
func ParseFile(data []byte, name string) (File, error) {
	f, errs := parseFile(data, name)
	if len(errs) > 0 {
		return File{}, errs
	}
	return f, nil
}

// parseFile returns what it could read, and every problem.
func parseFile(data []byte, name string) (File, ConfigErrors) {
	d := &decoder{name: name, lines: map[string]int{}}
	if len(data) > MaxFileSize {
		d.fail(0, "", fmt.Sprintf("is %d bytes", len(data)), fmt.Sprintf("a services file may be at most %d bytes", MaxFileSize))
		return File{}, d.errs
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		d.fail(yamlErrorLine(err), "", "is not valid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "), "fix the syntax in the block that starts at that line: indent with spaces, quote values that contain ': ' or start with [ { * &")
		return File{}, d.errs
	}
	var f File
	d.file(&root, &f)
	f.lines = d.lines
	return f, d.errs
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlErrorLine digs the line number out of a yaml.v3 error message.
func yamlErrorLine(err error) int {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// decoder walks a YAML node tree into a File, collecting errors.
type decoder struct {
	name  string
	errs  ConfigErrors
	lines map[string]int
}

func (d *decoder) fail(line int, field, problem, fix string) {
	if len(d.errs) >= maxErrors {
		return
	}
	d.errs = append(d.errs, &ConfigError{File: d.name, Line: line, Field: field, Problem: problem, Fix: fix})
	if len(d.errs) == maxErrors {
		d.errs = append(d.errs, &ConfigError{File: d.name, Problem: "too many errors; stopped here"})
	}
}

// normKey folds the spellings a key may have (token_validity,
// tokenValidity, token-validity) into one.
func normKey(k string) string {
	k = strings.ToLower(k)
	if strings.ContainsAny(k, "_-") {
		k = strings.NewReplacer("_", "", "-", "").Replace(k)
	}
	return k
}

// mapping calls fn for each key of a mapping node, refusing unknown and
// repeated keys. known lists the canonical (snake_case) key names.
func (d *decoder) mapping(n *yaml.Node, field string, known []string, fn func(key string, k, v *yaml.Node, field string)) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, field, "is a "+kindName(n)+", want a mapping of keys to values", "write key: value pairs, one per line")
		return
	}
	canon := make(map[string]string, len(known))
	for _, k := range known {
		canon[normKey(k)] = k
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, field, "has a key that is not a plain name", "use plain key names such as "+known[0])
			continue
		}
		if k.Value == "<<" {
			d.fail(k.Line, field, "uses a merge key (<<)", "write the keys out; anchors and merges are not supported")
			continue
		}
		key, ok := canon[normKey(k.Value)]
		sub := join(field, k.Value)
		if !ok {
			d.fail(k.Line, sub, "is not a known key", "known keys here: "+strings.Join(known, ", "))
			continue
		}
		sub = join(field, key)
		if prev, dup := seen[key]; dup {
			d.fail(k.Line, sub, fmt.Sprintf("is set twice (first on line %d)", prev), "keep one")
			continue
		}
		seen[key] = k.Line
		if v.Kind == yaml.AliasNode {
			d.fail(v.Line, sub, "is an alias (*name)", "write the value out; anchors and aliases are not supported")
			continue
		}
		d.lines[sub] = v.Line
		fn(key, k, v, sub)
	}
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "single value"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

var (
	fileKeys    = []string{"services", "discovery", "provider"}
	serviceKeys = []string{"name", "host", "path", "upstream", "protocol", "price", "pricing", "token_validity",
		"capabilities", "auth", "free_window", "whitelist", "timeout", "rate_limit", "description",
		"pass_credentials", "allow_semicolons", "fold_case", "schemes", "session_deposit", "session_idle_timeout", "prepaid_credit",
		"pricer_url", "pricer_timeout", "pricer_fallback", "pricer_max", "pricer_body", "pricer_headers",
		"meter", "meter_price_msat", "meter_block"}
	ruleKeys      = []string{"path", "price"}
	rateLimitKeys = []string{"rate", "burst"}
)

func (d *decoder) file(root *yaml.Node, f *File) {
	if root.Kind == 0 || (root.Kind == yaml.DocumentNode && len(root.Content) == 0) {
		d.fail(0, "", "is empty", "list the priced services under a services: key (see docs/gate.md)")
		return
	}
	n := root
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	haveServices := false
	d.mapping(n, "", fileKeys, func(key string, _, v *yaml.Node, field string) {
		switch key {
		case "services":
			haveServices = true
			d.services(v, field, f)
		case "discovery":
			if b, ok := d.boolean(v, field); ok {
				f.NoDiscovery = !b
			}
		case "provider":
			if p, ok := d.str(v, field); ok {
				f.Provider = p
			}
		}
	})
	if !haveServices && n.Kind == yaml.MappingNode && len(d.errs) == 0 {
		d.fail(n.Line, "services", "is missing", "list the priced services under a services: key (see docs/gate.md)")
	}
}

func (d *decoder) services(n *yaml.Node, field string, f *File) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "services:" with nothing under it: no services
	}
	d.sequence(n, field, "a list of services", "start each service with '- name: …'", "services", MaxServices, func(item *yaml.Node, sub string) {
		var sc ServiceConfig
		d.service(item, sub, &sc)
		f.Services = append(f.Services, sc)
	})
}

// sequence checks that n is a list (want says of what, fix how to write
// it) of at most max items (noun names them) and calls each for every
// item with its field (field[i]), whose line it records first. It
// returns false, having called nothing, if n is no such list.
func (d *decoder) sequence(n *yaml.Node, field, want, fix, noun string, max int, each func(item *yaml.Node, sub string)) bool {
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, field, "is a "+kindName(n)+", want "+want, fix)
		return false
	}
	if len(n.Content) > max {
		d.fail(n.Line, field, fmt.Sprintf("lists %d %s", len(n.Content), noun), fmt.Sprintf("at most %d", max))
		return false
	}
	for i, item := range n.Content {
		sub := fmt.Sprintf("%s[%d]", field, i)
		d.lines[sub] = item.Line
		each(item, sub)
	}
	return true
}

func (d *decoder) service(n *yaml.Node, field string, sc *ServiceConfig) {
	d.mapping(n, field, serviceKeys, func(key string, _, v *yaml.Node, field string) {
		switch key {
		case "name":
			sc.Name, _ = d.str(v, field)
		case "host":
			sc.Host, _ = d.str(v, field)
		case "path":
			sc.Path, _ = d.str(v, field)
		case "upstream":
			sc.Upstream, _ = d.str(v, field)
		case "protocol":
			s, _ := d.str(v, field)
			sc.Protocol = Protocol(strings.ToLower(s))
		case "price":
			sc.PriceSats, _ = d.int64(v, field, "price: 10")
		case "pricing":
			d.pricing(v, field, sc)
		case "token_validity":
			sc.TokenValidity, _ = d.duration(v, field, true)
		case "capabilities":
			sc.Capabilities = d.strList(v, field)
		case "auth":
			d.auth(v, field, sc)
		case "free_window":
			sc.FreeWindow, _ = d.duration(v, field, false)
		case "whitelist":
			sc.Whitelist = d.strList(v, field)
		case "timeout":
			sc.Timeout, _ = d.duration(v, field, false)
		case "rate_limit":
			sc.RateLimit = d.rateLimit(v, field)
		case "description":
			sc.Description, _ = d.str(v, field)
		case "pass_credentials":
			sc.PassCredentials, _ = d.boolean(v, field)
		case "allow_semicolons":
			sc.AllowSemicolons, _ = d.boolean(v, field)
		case "fold_case":
			sc.FoldCase, _ = d.boolean(v, field)
		case "pricer_url":
			sc.PricerURL, _ = d.str(v, field)
		case "pricer_timeout":
			sc.PricerTimeout, _ = d.duration(v, field, false)
		case "pricer_fallback":
			sc.PricerFallbackSats, _ = d.int64(v, field, "pricer_fallback: 5")
		case "pricer_max":
			sc.PricerMaxSats, _ = d.int64(v, field, "pricer_max: 1000")
		case "pricer_body":
			sc.PricerBody, _ = d.int64(v, field, "pricer_body: 4096")
		case "pricer_headers":
			sc.PricerHeaders = d.strList(v, field)
		case "prepaid_credit":
			sc.PrepaidCreditSats, _ = d.int64(v, field, "prepaid_credit: 1000")
		case "session_deposit":
			sc.SessionDepositSats, _ = d.int64(v, field, "session_deposit: 1000")
		case "meter":
			m, _ := d.str(v, field)
			sc.Meter = MeterUnit(strings.ToLower(m))
		case "meter_price_msat":
			sc.MeterPriceMsat, _ = d.int64(v, field, "meter_price_msat: 10")
		case "meter_block":
			sc.MeterBlock, _ = d.int64(v, field, "meter_block: 1024")
		case "session_idle_timeout":
			sc.SessionIdleTimeout, _ = d.duration(v, field, false)
		case "schemes":
			sc.Schemes = d.strList(v, field)
			if sc.Schemes == nil {
				sc.Schemes = []string{} // written but empty: the checker says so
			}
		}
	})
}

func (d *decoder) pricing(n *yaml.Node, field string, sc *ServiceConfig) {
	d.sequence(n, field, "a list of {path, price} rules", "write '- path: /premium/*' and 'price: 100' under pricing:", "rules", MaxRulesPerService, func(item *yaml.Node, sub string) {
		var r PriceRule
		havePath, havePrice := false, false
		d.mapping(item, sub, ruleKeys, func(key string, _, v *yaml.Node, field string) {
			switch key {
			case "path":
				r.Path, havePath = d.str(v, field)
			case "price":
				r.PriceSats, havePrice = d.int64(v, field, "price: 100")
			}
		})
		if item.Kind == yaml.MappingNode {
			if !havePath {
				d.fail(item.Line, sub+".path", "is missing", "give the path pattern this price applies to, e.g. path: /premium/*")
			}
			if !havePrice {
				d.fail(item.Line, sub+".price", "is missing", "give the price in sats, e.g. price: 100")
			}
		}
		sc.Pricing = append(sc.Pricing, r)
	})
}

func (d *decoder) auth(n *yaml.Node, field string, sc *ServiceConfig) {
	const fix = `write "on", "off" or "freebie N" (N unpaid requests per client per free_window)`
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, field, "is a "+kindName(n)+", want on, off or freebie N", fix)
		return
	}
	v := strings.ToLower(strings.TrimSpace(n.Value))
	switch v {
	case "on", "true", "yes":
		sc.Auth = AuthOn
		return
	case "off", "false", "no":
		sc.Auth = AuthOff
		return
	}
	if rest, ok := strings.CutPrefix(v, "freebie"); ok {
		k, err := strconv.Atoi(strings.TrimSpace(rest))
		if err != nil || k < 1 || k > math.MaxInt32 {
			d.fail(n.Line, field, fmt.Sprintf("%q does not give a positive number of free requests", n.Value), `write e.g. "freebie 5"`)
			return
		}
		sc.Auth, sc.FreeRequests = AuthFreebie, k
		return
	}
	d.fail(n.Line, field, fmt.Sprintf("is %q", n.Value), fix)
}

func (d *decoder) rateLimit(n *yaml.Node, field string) *RateLimit {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(strings.TrimSpace(n.Value)) {
		case "off", "false", "no", "none", "unlimited":
			return &RateLimit{}
		}
		d.fail(n.Line, field, fmt.Sprintf("is %q", n.Value), "write off, or a mapping {rate: <requests per second>, burst: <requests>}")
		return nil
	}
	rl := &RateLimit{}
	d.mapping(n, field, rateLimitKeys, func(key string, _, v *yaml.Node, field string) {
		switch key {
		case "rate":
			var f float64
			if v.Kind != yaml.ScalarNode || v.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(v.Line, field, fmt.Sprintf("is %q, want a number of requests per second", v.Value), "write e.g. rate: 10 (0 means unlimited)")
				return
			}
			rl.Rate = f
		case "burst":
			n, _ := d.int64(v, field, "burst: 20")
			if n > math.MaxInt32 {
				n = math.MaxInt32
			}
			rl.Burst = int(n)
		}
	})
	return rl
}

// str reads a scalar as a string.
func (d *decoder) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n.Line, field, "is a "+kindName(n)+", want a single value", "write the value on the same line as the key")
		return "", false
	}
	return n.Value, true
}

func (d *decoder) strList(n *yaml.Node, field string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		d.lines[field+"[0]"] = n.Line
		return []string{n.Value} // a single value stands for a one-item list
	}
	out := make([]string, 0, len(n.Content))
	if !d.sequence(n, field, "a list", "write [a, b] or one '- item' per line", "items", MaxRulesPerService, func(item *yaml.Node, sub string) {
		if s, ok := d.str(item, sub); ok {
			out = append(out, s)
		}
	}) {
		return nil
	}
	return out
}

func (d *decoder) int64(n *yaml.Node, field, example string) (int64, bool) {
	var v int64
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
		d.fail(n.Line, field, fmt.Sprintf("is %q, want a whole number", n.Value), "write e.g. "+example)
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(n *yaml.Node, field string) (bool, bool) {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(strings.TrimSpace(n.Value)) {
		case "true", "on", "yes":
			return true, true
		case "false", "off", "no":
			return false, true
		}
	}
	d.fail(n.Line, field, fmt.Sprintf("is %q, want true or false", n.Value), "write true or false")
	return false, false
}

// duration reads a Go duration ("30s", "24h"); with never, "never" means
// forever (a negative duration).
func (d *decoder) duration(n *yaml.Node, field string, never bool) (time.Duration, bool) {
	fix := `write a duration such as 30s, 10m or 24h`
	if never {
		fix += `, or "never"`
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, field, "is a "+kindName(n)+", want a duration", fix)
		return 0, false
	}
	v := strings.TrimSpace(n.Value)
	if never && strings.EqualFold(v, "never") {
		return -1, true
	}
	t, err := time.ParseDuration(v)
	if err != nil {
		d.fail(n.Line, field, fmt.Sprintf("is %q, want a duration", n.Value), fix)
		return 0, false
	}
	if t < 0 {
		d.fail(n.Line, field, fmt.Sprintf("is negative (%s)", v), fix)
		return 0, false
	}
	return t, true
}

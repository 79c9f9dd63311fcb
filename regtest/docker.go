package regtest

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"
)

//go:embed docker-compose.yml.tmpl docker/lnd.Dockerfile docker/btcd.Dockerfile
var dockerFiles embed.FS

// composeTemplate renders the compose file for a node set;
// docker-compose.yml in this directory is its rendering for [LNDNodes].
var composeTemplate = template.Must(template.ParseFS(dockerFiles, "docker-compose.yml.tmpl"))

// defaultRoles describe the default nodes in the compose file: the role in
// its header and the comment above the service.
var defaultRoles = map[string][2]string{
	Alice: {"the producer's node (the LND l402d runs beside)", "The producer's node."},
	Bob:   {"a consumer's node", "A consumer's node."},
	Carol: {"a routing node (bob -> carol -> alice)", "A routing node."},
}

// renderCompose renders the compose file for the LND nodes.
func renderCompose(nodes []string) ([]byte, error) {
	type tmplNode struct{ Name, Env, Role, Comment string }
	data := struct {
		Count string
		Nodes []tmplNode
	}{Count: fmt.Sprintf("%d LND nodes", len(nodes))}
	if len(nodes) == 1 {
		data.Count = "one LND node"
	}
	if words := []string{"two", "three", "four", "five", "six", "seven", "eight", "nine"}; len(nodes) >= 2 && len(nodes) <= 9 {
		data.Count = words[len(nodes)-2] + " LND nodes"
	}
	isDefault := slices.Equal(nodes, LNDNodes())
	for i, name := range nodes {
		tn := tmplNode{Name: name, Env: strings.ToUpper(name), Role: "an LND node", Comment: "An LND node."}
		if i == 0 {
			tn.Role, tn.Comment = "an LND node, the miner's payee", "An LND node, the miner's payee."
		}
		if r, ok := defaultRoles[name]; ok && isDefault {
			tn.Role, tn.Comment = r[0], r[1]
		}
		data.Nodes = append(data.Nodes, tn)
	}
	var b bytes.Buffer
	if err := composeTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// runCmd runs name with args and returns its trimmed stdout. A failure is
// returned with the command and its stderr, which is where docker and
// compose explain themselves.
func runCmd(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// dockerEngine checks that a docker engine answers and returns its
// architecture (as GOARCH spells it), for building the images' binaries.
func dockerEngine(ctx context.Context) (arch string, err error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return "", fmt.Errorf("docker: command not found in PATH; set L402D_REGTEST_MODE=process to run the nodes as local processes")
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := runCmd(ctx, nil, "docker", "version", "--format", "{{.Server.Arch}}")
	if err != nil {
		host := os.Getenv("DOCKER_HOST")
		if host == "" {
			host = "the default socket (unix:///var/run/docker.sock)"
		}
		return "", fmt.Errorf("docker: engine not reachable at %s (%w); set L402D_REGTEST_MODE=process to run the nodes as local processes", host, err)
	}
	return out, nil
}

// findCompose returns the compose command: the `docker compose` plugin if
// present, else the standalone docker-compose.
func findCompose(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := runCmd(ctx, nil, "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}, nil
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		if _, err := runCmd(ctx, nil, "docker-compose", "version"); err == nil {
			return []string{"docker-compose"}, nil
		}
	}
	return nil, errors.New("docker: neither `docker compose` nor `docker-compose` works; install compose or set L402D_REGTEST_MODE=process")
}

// imageTags names the images for b's versions. The tags are keyed by module
// version only: an image is built once and reused until the version changes
// (remove it with docker rmi to force a rebuild).
func imageTags(b Binaries) (lnd, btcd string) {
	return "l402d-regtest-lnd:" + b.LndVersion, "l402d-regtest-btcd:" + b.BtcdVersion
}

// ensureImages builds the lnd and btcd images from b unless they exist. It
// reports whether it built any.
func ensureImages(ctx context.Context, b Binaries, log *slog.Logger) (lndTag, btcdTag string, built bool, err error) {
	lndTag, btcdTag = imageTags(b)
	for _, img := range []struct {
		tag, dockerfile string
		files           []string
	}{
		{lndTag, "docker/lnd.Dockerfile", []string{b.Lnd, b.Lncli}},
		{btcdTag, "docker/btcd.Dockerfile", []string{b.Btcd, b.Btcctl}},
	} {
		if _, err := runCmd(ctx, nil, "docker", "image", "inspect", "--format", "{{.Id}}", img.tag); err == nil {
			continue
		}
		start := time.Now()
		if err := buildImage(ctx, img.tag, img.dockerfile, img.files); err != nil {
			return "", "", built, err
		}
		built = true
		log.Info("built regtest image", "image", img.tag, "took", time.Since(start).Round(time.Millisecond))
	}
	return lndTag, btcdTag, built, nil
}

// buildImage builds tag from the embedded dockerfile with a context holding
// just files.
func buildImage(ctx context.Context, tag, dockerfile string, files []string) error {
	dir, err := os.MkdirTemp("", "l402d-regtest-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	df, err := dockerFiles.ReadFile(dockerfile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
		return err
	}
	for _, f := range files {
		if err := copyFile(f, filepath.Join(dir, filepath.Base(f)), 0o755); err != nil {
			return fmt.Errorf("preparing image %s: %w", tag, err)
		}
	}
	if _, err := runCmd(ctx, nil, "docker", "build", "--label", "org.l402d.regtest=1", "-t", tag, dir); err != nil {
		return fmt.Errorf("building image %s: %w", tag, err)
	}
	return nil
}

// dockerBackend runs the nodes as compose services of one project.
type dockerBackend struct {
	compose []string // "docker compose" or "docker-compose"
	project string
	network string          // docker network name
	file    string          // compose file
	env     func() []string // current compose variables
	log     *slog.Logger
}

func (d *dockerBackend) composeCmd(ctx context.Context, args ...string) (string, error) {
	full := append(append(append([]string{}, d.compose[1:]...), "-p", d.project, "-f", d.file), args...)
	out, err := runCmd(ctx, d.env(), d.compose[0], full...)
	if err != nil && isPortInUse(err) {
		return out, fmt.Errorf("a host port of the regtest network is already in use (another program took it; stop it or run `make regtest-down`): %w", err)
	}
	return out, err
}

func isPortInUse(err error) bool {
	s := err.Error()
	return strings.Contains(s, "port is already allocated") || strings.Contains(s, "address already in use")
}

func (d *dockerBackend) start(ctx context.Context, names ...string) error {
	_, err := d.composeCmd(ctx, append([]string{"up", "-d", "--no-deps"}, names...)...)
	if err != nil {
		return fmt.Errorf("starting %s: %w", strings.Join(names, ", "), err)
	}
	return nil
}

func (d *dockerBackend) stop(ctx context.Context, name string) error {
	if _, err := d.composeCmd(ctx, "stop", "-t", "30", name); err != nil {
		return fmt.Errorf("stopping %s: %w", name, err)
	}
	return nil
}

// containerID finds the container of service name by compose's labels,
// which both compose versions set.
func (d *dockerBackend) containerID(ctx context.Context, name string) (string, error) {
	out, err := runCmd(ctx, nil, "docker", "ps", "-a", "-q",
		"--filter", "label=com.docker.compose.project="+d.project,
		"--filter", "label=com.docker.compose.service="+name)
	if err != nil {
		return "", err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return "", fmt.Errorf("%w: %s in project %s", errNoContainer, name, d.project)
	}
	return ids[0], nil
}

// errNoContainer: docker answered, and the node has no container.
var errNoContainer = errors.New("no container")

// alive returns nil if name's container is running, else an
// [Unrecoverable] error with its state and last log lines.
func (d *dockerBackend) alive(ctx context.Context, name string) error {
	id, err := d.containerID(ctx, name)
	if errors.Is(err, errNoContainer) {
		return Unrecoverable(err)
	}
	if err != nil {
		// docker itself did not answer (on a loaded machine the wait's
		// deadline can kill "docker ps"): no news of the node, so not a
		// reason to give up on it.
		return err
	}
	out, err := runCmd(ctx, nil, "docker", "inspect", "--format", "{{.State.Status}} exit={{.State.ExitCode}} {{.State.Error}}", id)
	if err != nil {
		return err
	}
	if strings.HasPrefix(out, "running") {
		return nil
	}
	tail, _ := runCmd(ctx, nil, "docker", "logs", "--tail", "25", id)
	return Unrecoverable(fmt.Errorf("%s container is %s; last log lines:\n%s", name, out, tail))
}

// logs writes name's container log to w.
func (d *dockerBackend) logs(ctx context.Context, name string, w io.Writer) error {
	id, err := d.containerID(ctx, name)
	if err != nil {
		_, err = fmt.Fprintf(w, "(%s has no container: %v)\n", name, err)
		return err
	}
	cmd := exec.CommandContext(ctx, "docker", "logs", "--timestamps", id)
	cmd.Stdout, cmd.Stderr = w, w
	return cmd.Run()
}

// teardown removes every container, volume and network of the project,
// found by compose's labels so that it also cleans what an aborted run left
// without needing its compose file or variables. Containers are killed, not
// stopped: their data is about to be deleted anyway.
func (d *dockerBackend) teardown(ctx context.Context) error {
	return dockerTeardown(ctx, d.project, d.network)
}

func dockerTeardown(ctx context.Context, project, network string) error {
	label := "label=com.docker.compose.project=" + project
	var errs []error
	if out, err := runCmd(ctx, nil, "docker", "ps", "-a", "-q", "--filter", label); err != nil {
		errs = append(errs, err)
	} else if ids := strings.Fields(out); len(ids) > 0 {
		if _, err := runCmd(ctx, nil, "docker", append([]string{"rm", "-f", "-v"}, ids...)...); err != nil {
			errs = append(errs, err)
		}
	}
	nets := []string{}
	if out, err := runCmd(ctx, nil, "docker", "network", "ls", "-q", "--filter", label); err == nil {
		nets = append(nets, strings.Fields(out)...)
	}
	if network != "" {
		if _, err := runCmd(ctx, nil, "docker", "network", "inspect", "--format", "{{.Id}}", network); err == nil {
			nets = append(nets, network)
		}
	}
	for _, n := range nets {
		if err := removeNetwork(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	if out, err := runCmd(ctx, nil, "docker", "volume", "ls", "-q", "--filter", label); err != nil {
		errs = append(errs, err)
	} else if vols := strings.Fields(out); len(vols) > 0 {
		if _, err := runCmd(ctx, nil, "docker", append([]string{"volume", "rm", "-f"}, vols...)...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeNetwork removes a docker network, first disconnecting containers of
// other projects (say an l402d container a test attached) that would block
// the removal.
func removeNetwork(ctx context.Context, network string) error {
	if _, err := runCmd(ctx, nil, "docker", "network", "rm", network); err == nil || strings.Contains(err.Error(), "No such network") || strings.Contains(err.Error(), "not found") {
		return nil
	}
	out, err := runCmd(ctx, nil, "docker", "network", "inspect", "--format", "{{range $id, $c := .Containers}}{{$id}} {{end}}", network)
	if err != nil {
		return err
	}
	for _, id := range strings.Fields(out) {
		runCmd(ctx, nil, "docker", "network", "disconnect", "-f", network, id)
	}
	if _, err := runCmd(ctx, nil, "docker", "network", "rm", network); err != nil {
		return fmt.Errorf("removing docker network %s: %w", network, err)
	}
	return nil
}

// EnsureImages finds or builds the binaries for the docker engine's
// platform and the lnd and btcd images holding them, and returns the image
// tags. o.GOOS and o.GOARCH are ignored.
func EnsureImages(ctx context.Context, o BuildOptions) ([]string, error) {
	arch, err := dockerEngine(ctx)
	if err != nil {
		return nil, err
	}
	o.GOOS, o.GOARCH = "linux", arch
	b, err := EnsureBinaries(ctx, o)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lnd, btcd, _, err := ensureImages(ctx, b, log)
	if err != nil {
		return nil, err
	}
	return []string{lnd, btcd}, nil
}

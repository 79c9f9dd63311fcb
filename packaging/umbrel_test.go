package packaging

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const umbrelApp = "umbrel/l402d"

// TestUmbrelLint checks packaging/umbrel/l402d against the rules of the
// Umbrel App Store's own linter (getumbrel/umbrel-apps, .tools/lint-apps.mjs,
// read at commit 6372367) that can be checked without the store and without
// a registry, as errors unless noted:
//
//   - manifest.required: every required field is present (manifestVersion,
//     id, category, name, version, tagline, description, developer, website,
//     dependencies, repo, support, port, gallery, path, submitter,
//     submission); string fields are strings, optional booleans
//     (deterministicPassword …) are booleans;
//   - manifest.id: equals the directory name, lowercase kebab-case;
//   - manifest.version: manifestVersion is numeric;
//   - manifest.category: one of the store's categories;
//   - name, version, tagline, description, website, support, submitter and
//     submission are not empty; website, repo and submission are http(s)
//     URLs;
//   - manifest.port: 1–65535;
//   - manifest.path: empty or starts with "/";
//   - manifest.release_notes: a new app's releaseNotes is "" (set and
//     empty); manifest.gallery: a new app's gallery is [] (a warning);
//     manifest.icon: a new app sets no icon (a warning);
//   - compose.build: no build:, a prebuilt image;
//   - image.pinned: every image is repo:tag@sha256:<64 hex>; image.latest:
//     the tag is not "latest" (a warning);
//   - service.restart: restart: on-failure (a warning);
//   - ports.explicit: host:container mappings; ports.app_proxy: no service
//     publishes the manifest port;
//   - volumes.syntax: short-syntax string volumes;
//     persistence.app_data_root: ${APP_DATA_DIR} is not mounted whole;
//     persistence.missing_source: every ${APP_DATA_DIR}/… source is
//     committed (data/.gitkeep); access.docker_socket: no docker socket;
//   - app_proxy.host: APP_HOST names a service of this file
//     (<app>_<service>_1); app_proxy.port: APP_PORT numeric;
//     app_proxy.auth: PROXY_AUTH_WHITELIST not empty and no broad route
//     ("/", "/*", "/**");
//   - compose.networks / compose.volumes: no top-level ones (warnings);
//   - package.review_assets / runtime_artifact: no icons, screenshots,
//     .env, keys, databases or logs committed (warnings).
//
// What it cannot check here, and how it was checked instead:
// manifest.port_unique and ports.unique need the whole store (8402 and 8403
// were free in umbrel-apps at 6372367; set L402D_UMBREL_APPS to a checkout
// to check again); manifest.dependencies needs the store (lightning is an
// app there); image.pullable / image.architecture (--check-images) need the
// published image list (make image-push prints its digest; the linter
// then checks linux/amd64 and linux/arm64 are in it).
func TestUmbrelLint(t *testing.T) {
	var m map[string]any
	readYAML(t, filepath.Join(umbrelApp, "umbrel-app.yml"), &m)
	for _, f := range []string{"manifestVersion", "id", "category", "name", "version", "tagline", "description", "developer", "website",
		"dependencies", "repo", "support", "port", "gallery", "path", "submitter", "submission"} {
		if _, ok := m[f]; !ok {
			t.Errorf("manifest.required: %s missing", f)
		}
	}
	for _, f := range []string{"id", "category", "name", "version", "tagline", "description", "website", "support", "path", "submission",
		"releaseNotes", "defaultUsername", "defaultPassword", "developer", "submitter"} {
		if v, ok := m[f]; ok {
			if _, isStr := v.(string); !isStr {
				t.Errorf("%s must be a string, is %T", f, v)
			}
		}
	}
	for _, f := range []string{"deterministicPassword", "optimizedForUmbrelHome", "torOnly", "requiresHttps", "disabled"} {
		if v, ok := m[f]; ok {
			if _, isBool := v.(bool); !isBool {
				t.Errorf("%s must be true or false, is %T", f, v)
			}
		}
	}
	str := func(f string) string { s, _ := m[f].(string); return s }
	if id := str("id"); id != filepath.Base(umbrelApp) || !regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`).MatchString(id) {
		t.Errorf("manifest.id: %q", id)
	}
	if !regexp.MustCompile(`^\d+(\.\d+){0,2}$`).MatchString(strings.TrimSpace(toString(m["manifestVersion"]))) {
		t.Errorf("manifest.version: %v", m["manifestVersion"])
	}
	if !slices.Contains([]string{"ai", "automation", "bitcoin", "crypto", "developer", "files", "finance", "media", "networking", "social"}, str("category")) {
		t.Errorf("manifest.category: %q", str("category"))
	}
	for _, f := range []string{"name", "version", "tagline", "description", "website", "support", "submitter", "submission"} {
		if strings.TrimSpace(str(f)) == "" {
			t.Errorf("%s must not be empty", f)
		}
	}
	for _, f := range []string{"website", "repo", "submission"} {
		if u, err := url.Parse(str(f)); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Errorf("%s must be an http(s) URL: %q", f, str(f))
		}
	}
	if !strings.HasPrefix(str("submission"), "https://github.com/getumbrel/umbrel-apps/pull") {
		t.Errorf("submission is the umbrel-apps pull request: %q", str("submission"))
	}
	port, ok := m["port"].(int)
	if !ok || port < 1 || port > 65535 {
		t.Errorf("manifest.port: %v", m["port"])
	}
	if p := str("path"); p != "" && !strings.HasPrefix(p, "/") {
		t.Errorf("manifest.path: %q", p)
	}
	if rn, ok := m["releaseNotes"].(string); !ok || rn != "" {
		t.Errorf("manifest.release_notes: a new app's releaseNotes must be set and empty, is %#v", m["releaseNotes"])
	}
	if g, ok := m["gallery"].([]any); !ok || len(g) != 0 {
		t.Errorf("manifest.gallery: a new app leaves gallery: [] (%v)", m["gallery"])
	}
	if _, ok := m["icon"]; ok {
		t.Error("manifest.icon: a new app sets no icon")
	}
	if deps, _ := m["dependencies"].([]any); !slices.Contains(deps, any("lightning")) {
		t.Errorf("dependencies: want lightning, got %v", deps)
	}
	if m["deterministicPassword"] != true {
		t.Error("deterministicPassword must be true: $APP_PASSWORD is l402d's admin key")
	}

	var c struct {
		Services map[string]map[string]any
		Networks any
		Volumes  any
	}
	readYAML(t, filepath.Join(umbrelApp, "docker-compose.yml"), &c)
	if c.Networks != nil || c.Volumes != nil {
		t.Error("compose.networks / compose.volumes: no top-level networks or volumes")
	}
	proxy := c.Services["app_proxy"]
	if proxy == nil {
		t.Fatal("no app_proxy service")
	}
	penv := envMap(proxy["environment"])
	if h := penv["APP_HOST"]; h == "" || c.Services[strings.TrimSuffix(strings.TrimPrefix(h, str("id")+"_"), "_1")] == nil || !strings.HasPrefix(h, str("id")+"_") {
		t.Errorf("app_proxy.host: APP_HOST %q must name a service here as <app>_<service>_1", h)
	}
	if !regexp.MustCompile(`^\d+$`).MatchString(penv["APP_PORT"]) {
		t.Errorf("app_proxy.port: %q", penv["APP_PORT"])
	}
	wl := penv["PROXY_AUTH_WHITELIST"]
	if strings.TrimSpace(wl) == "" {
		t.Error("app_proxy.auth: PROXY_AUTH_WHITELIST must let /api/* and /mcp through")
	}
	for _, p := range regexp.MustCompile(`[,\s]+`).Split(wl, -1) {
		if p == "/" || p == "/*" || p == "/**" {
			t.Errorf("app_proxy.auth: broad route %q in PROXY_AUTH_WHITELIST", p)
		}
	}
	for _, want := range []string{"/api/*", "/mcp"} {
		if !slices.Contains(strings.Split(wl, ","), want) {
			t.Errorf("PROXY_AUTH_WHITELIST %q lacks %s", wl, want)
		}
	}
	gatePublished := false
	for name, svc := range c.Services {
		if _, ok := svc["build"]; ok {
			t.Errorf("compose.build: %s builds", name)
		}
		if name == "app_proxy" {
			continue
		}
		img, _ := svc["image"].(string)
		pinned := regexp.MustCompile(`^(.+):([^:@/]+)@sha256:[a-fA-F0-9]{64}$`).FindStringSubmatch(img)
		if pinned == nil {
			t.Errorf("image.pinned: %s's image %q is not repo:tag@sha256:<digest>", name, img)
		} else if pinned[2] == "latest" {
			t.Errorf("image.latest: %s's image uses the latest tag", name)
		}
		if svc["restart"] != "on-failure" {
			t.Errorf("service.restart: %s restart %v", name, svc["restart"])
		}
		if _, ok := svc["container_name"]; ok {
			t.Errorf("service.container_name: %s", name)
		}
		ports, _ := svc["ports"].([]any)
		for _, p := range ports {
			s, ok := p.(string)
			parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(s, "/tcp"), "/udp"), ":")
			if !ok || len(parts) < 2 {
				t.Errorf("ports.explicit: %s publishes %v", name, p)
				continue
			}
			host, err := strconv.Atoi(parts[len(parts)-2])
			if err != nil {
				t.Errorf("ports.unresolved: %s publishes %q", name, s)
				continue
			}
			if host == port {
				t.Errorf("ports.app_proxy: %s publishes the manifest port %d", name, port)
			}
			if parts[len(parts)-1] == "8403" {
				gatePublished = true
			}
		}
		vols, _ := svc["volumes"].([]any)
		for _, v := range vols {
			s, ok := v.(string)
			if !ok {
				t.Errorf("volumes.syntax: %s has a long-syntax volume", name)
				continue
			}
			src := strings.SplitN(s, ":", 2)[0]
			if strings.Contains(src, "docker.sock") {
				t.Errorf("access.docker_socket: %s", name)
			}
			if regexp.MustCompile(`^\$\{?APP_DATA_DIR\}?/?$`).MatchString(src) {
				t.Errorf("persistence.app_data_root: %s mounts ${APP_DATA_DIR} whole", name)
			}
			if strings.Contains(src, "APP_DATA_DIR") {
				sub := strings.TrimPrefix(regexp.MustCompile(`^\$\{?APP_DATA_DIR\}?`).ReplaceAllString(src, ""), "/")
				if _, err := os.Stat(filepath.Join(umbrelApp, sub)); err != nil {
					t.Errorf("persistence.missing_source: %s is not committed at %s/%s (add %s/.gitkeep)", src, umbrelApp, sub, sub)
				}
			}
		}
	}
	if !gatePublished {
		t.Error("the gate's port (8403) must be published for buyers")
	}
	web := envMap(c.Services["web"]["environment"])
	if web["L402D_ADMIN_KEY_ENV"] != "APP_PASSWORD" || web["APP_PASSWORD"] != "$APP_PASSWORD" {
		t.Errorf("the admin key must come from $APP_PASSWORD: %v", web)
	}
	if web["L402D_GATE_LISTEN"] == "" || web["L402D_GATE_SERVICES"] == "" {
		t.Errorf("the gate must be on with a services file: %v", web)
	}
	_ = filepath.WalkDir(umbrelApp, func(p string, d os.DirEntry, err error) error {
		b := strings.ToLower(d.Name())
		if regexp.MustCompile(`^(icon|logo|screenshot|gallery).*\.(png|jpe?g|webp|gif|svg)$`).MatchString(b) ||
			b == ".env" || regexp.MustCompile(`\.(db|sqlite|sqlite3|log|pid|sock|pem|key)$`).MatchString(b) {
			t.Errorf("package.review_assets / runtime_artifact: %s", p)
		}
		return nil
	})
	if dir := os.Getenv("L402D_UMBREL_APPS"); dir != "" {
		checkUmbrelPorts(t, dir, port, 8403)
	}
}

// checkUmbrelPorts looks for our ports in a checkout of umbrel-apps
// (manifest.port_unique, ports.unique).
func checkUmbrelPorts(t *testing.T, dir string, ports ...int) {
	for _, p := range ports {
		out, _ := exec.Command("git", "-C", dir, "grep", "-nE", `(^port: *`+strconv.Itoa(p)+`\s*$|["' -]`+strconv.Itoa(p)+`:)`, "HEAD", "--",
			"*/umbrel-app.yml", "*/docker-compose.yml").CombinedOutput()
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" && !strings.Contains(l, ":l402d/") {
				t.Errorf("port %d is taken in the store: %s", p, l)
			}
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// envMap reads a compose environment (map or KEY=value list).
func envMap(v any) map[string]string {
	out := map[string]string{}
	switch e := v.(type) {
	case map[string]any:
		for k, v := range e {
			out[k] = toString(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(toString(kv), "=")
			out[k] = v
		}
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}

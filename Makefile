# l402d. Override any variable on the command line, e.g.
#   make GO=go1.26.8 itest
#   make REGTEST_MODE=process regtest-up
#   make ITEST_FLAGS='-run Network -v' itest

GO ?= go

# Integration tests (build tag, timeout, extra go test flags).
ITEST_TAGS ?= itest
ITEST_TIMEOUT ?= 40m
ITEST_FLAGS ?=

# The regtest network of `make regtest-up` (see regtest/README.md).
# REGTEST_MODE is docker or process; empty means $$L402D_REGTEST_MODE, else
# docker when a docker engine answers.
REGTEST_DIR ?= .run/regtest
REGTEST_PROJECT ?= l402d-regtest
REGTEST_MODE ?=
# REGTEST_NODES and REGTEST_CHANNELS (regtest's -nodes and -channels, e.g.
# alice,bob and bob:alice) pick other nodes and channels; empty means the
# default alice, bob, carol graph.
REGTEST_NODES ?=
REGTEST_CHANNELS ?=
REGTEST = $(GO) run ./regtest/cmd/regtest -go '$(GO)' -dir '$(REGTEST_DIR)' \
	-project '$(REGTEST_PROJECT)' $(if $(REGTEST_MODE),-mode '$(REGTEST_MODE)') \
	$(if $(REGTEST_NODES),-nodes '$(REGTEST_NODES)') $(if $(REGTEST_CHANNELS),-channels '$(REGTEST_CHANNELS)')

# Fuzzing: every Fuzz target of the module runs for FUZZTIME.
FUZZTIME ?= 10s
# Benchmarks: go test -benchtime for the unit benchmarks.
BENCHTIME ?= 1s

# lnd's sub-server tags: integrated mode (LND inside l402d) needs them.
LND_TAGS ?= signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc

BIN_DIR ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS = -s -w -X main.version=$(VERSION)

.PHONY: all build image image-push run deps load-deps load bench-gate bench-schemes test unit unit-postgres unit-lazy interop itest itest-repeat lint vet fmt-check fuzz fuzz-long bench \
	regtest-bins regtest-up regtest-down regtest-info clean

all: build

## build: static l402d and l402cli into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(LND_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/ ./cmd/...

## run: the main job: a regtest network, l402d beside alice's LND, a paid request end to end
run: build
	$(GO) run ./regtest/cmd/demo -bin $(BIN_DIR) $(RUN_FLAGS)

## test: everything CI runs: lint, unit tests, the Aperture interop module, the regtest itests
test: lint unit unit-postgres unit-lazy interop itest

## unit: unit tests (no network)
unit:
	$(GO) test -count=1 ./...

## unit-postgres: the storage suite again with every store on a real Postgres
## (Debian's server, started by the tests as the postgres user): the
## conformance run of the shared backend
unit-postgres: deps
	L402D_STORAGE_BACKEND=postgres $(GO) test -count=1 ./storage/...

## unit-lazy: the storage suite again with every store taking debits in
## memory (--db.debit-allowance-msat): the same promises must hold
unit-lazy:
	L402D_STORAGE_DEBIT_ALLOWANCE=3000 $(GO) test -count=1 ./storage/

## interop: cross-check with Aperture v0.5.0 (nested module itest/interop)
interop:
	cd itest/interop && $(GO) test -count=1 ./...

## lint: gofmt and go vet over every build tag and module
lint: fmt-check vet

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags '$(ITEST_TAGS)' ./itest/...
	cd itest/interop && $(GO) vet ./...

## fuzz: every fuzz target for FUZZTIME each (default 10s)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## fuzz-long: every fuzz target for 5 minutes (not in CI)
fuzz-long:
	$(MAKE) fuzz FUZZTIME=5m

## bench: unit benchmarks (verify vs raw macaroon.v2, storage, gate) and the Aperture comparison
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./l402/ ./storage/ ./plugin/...
	cd itest/interop && $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## image: the FROM scratch image for linux/amd64 and linux/arm64 (static GOARCH binaries, one docker build each):
##   $(IMAGE):$(VERSION)-amd64 and -arm64, and this machine's as $(IMAGE):$(VERSION) and :latest
IMAGE ?= l402d
IMAGE_ARCHES ?= amd64 arm64
HOST_ARCH := $(shell $(GO) env GOARCH)
image:
	@set -e; for arch in $(IMAGE_ARCHES); do \
		echo "== linux/$$arch"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags '$(LND_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/linux-$$arch/ ./cmd/...; \
		ctx=$$(mktemp -d); cp $(BIN_DIR)/linux-$$arch/l402d $(BIN_DIR)/linux-$$arch/l402cli $$ctx/ && mkdir $$ctx/data; \
		docker build -q --platform linux/$$arch -f packaging/docker/Dockerfile -t $(IMAGE):$(VERSION)-$$arch $$ctx; rm -rf $$ctx; \
	done; \
	if echo " $(IMAGE_ARCHES) " | grep -q " $(HOST_ARCH) "; then \
		docker tag $(IMAGE):$(VERSION)-$(HOST_ARCH) $(IMAGE):$(VERSION) && docker tag $(IMAGE):$(VERSION)-$(HOST_ARCH) $(IMAGE):latest; fi

## image-push: push the per-arch images and a multi-arch manifest list $(IMAGE):$(VERSION) (IMAGE=registry/repo);
##   prints the list's digest, which packaging/umbrel/l402d/docker-compose.yml pins (repo:tag@sha256:…)
image-push: image
	@set -e; for arch in $(IMAGE_ARCHES); do docker push -q $(IMAGE):$(VERSION)-$$arch; done; \
	docker manifest rm $(IMAGE):$(VERSION) >/dev/null 2>&1 || true; \
	docker manifest create $(IMAGE):$(VERSION) $(foreach a,$(IMAGE_ARCHES),$(IMAGE):$(VERSION)-$(a)); \
	for arch in $(IMAGE_ARCHES); do docker manifest annotate --os linux --arch $$arch $(IMAGE):$(VERSION) $(IMAGE):$(VERSION)-$$arch; done; \
	digest=$$(docker manifest push $(IMAGE):$(VERSION)); \
	echo "pin in packaging/umbrel/l402d/docker-compose.yml: image: $(IMAGE):$(VERSION)@$$digest"

## load: the load campaigns on regtest: 10,000 challenges (L402D_LOAD_N to change the count) and the gate vs direct (wrk if installed)
load: deps load-deps
	$(GO) test -tags '$(ITEST_TAGS)' -count=1 -timeout 60m -run '^$$' -bench 'Load10k|GateLoad' -benchtime 1x -v ./itest/

## bench-gate: the gate against nginx (bare proxy, with and without upstream keepalive; auth_request to /auth) and Aperture v0.5.0,
##   paid requests under wrk -c32 and -c1, one Markdown table (L402D_BENCH_ROUNDS, L402D_BENCH_DURATION, L402D_BENCH_CONNS)
bench-gate: deps load-deps
	$(GO) test -tags '$(ITEST_TAGS)' -count=1 -timeout 30m -run '^$$' -bench GateVsProxies -benchtime 1x -v ./itest/

## bench-schemes: the gate's cost of letting one already-paid request through, per scheme (L402 first use, L402 cached,
##   MPP charge, x402 payment), same run; L402D_BENCH_REQUESTS per scheme (each needs its own regtest payment)
bench-schemes: deps
	$(GO) test -tags '$(ITEST_TAGS)' -count=1 -timeout 30m -run '^$$' -bench 'Schemes|MeteredStream' -benchtime 1x -v ./itest/

clean:
	rm -rf $(BIN_DIR)

## regtest-bins: build btcd, btcctl, lnd, lncli (cached in .cache/bin/) and, with docker, the images
regtest-bins:
	$(REGTEST) bins

## regtest-up: start a fresh regtest network, print how to reach it, leave it running
regtest-up:
	$(REGTEST) up

## regtest-down: remove the regtest network (containers, volumes, processes, state)
regtest-down:
	$(REGTEST) down

## regtest-info: print how to reach the running regtest network
regtest-info:
	$(REGTEST) info

## deps: system packages the tests need, from Debian: chromium (the dashboard test), nginx and caddy (forward auth), postgresql (the shared backend)
DEPS_PACKAGES = chromium:chromium nginx:nginx caddy:caddy pg_ctlcluster:postgresql
deps:
	@missing=""; for pair in $(DEPS_PACKAGES); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || { [ $$cmd = chromium ] && command -v chromium-browser >/dev/null 2>&1; } || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for the itests:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; fi

## load-deps: wrk (Debian package), the reference load generator of make load
load-deps:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing wrk (Debian package) for make load"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends wrk; }

## itest-repeat: every itest N times on one network (-count=N) and on N fresh networks, with each test's pass rate
N ?= 5
REPEAT_MODE ?= both
itest-repeat: deps regtest-bins
	$(GO) run ./itest/repeat -go '$(GO)' -n $(N) -mode $(REPEAT_MODE) $(if $(ITEST_RUN),-run '$(ITEST_RUN)')

## itest: run the integration tests against a fresh regtest network. The
## regtest binaries and images are built first, outside go test's timeout:
## a cold lnd build on a busy machine took 13 min of a 40 min test budget.
itest: deps regtest-bins
	$(GO) test -tags '$(ITEST_TAGS)' -count=1 -timeout $(ITEST_TIMEOUT) $(ITEST_FLAGS) ./itest/...

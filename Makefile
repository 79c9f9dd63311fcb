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
REGTEST = $(GO) run ./regtest/cmd/regtest -go '$(GO)' -dir '$(REGTEST_DIR)' \
	-project '$(REGTEST_PROJECT)' $(if $(REGTEST_MODE),-mode '$(REGTEST_MODE)')

.PHONY: test vet regtest-bins regtest-up regtest-down regtest-info itest

## test: vet and run the unit tests
test: vet
	$(GO) test ./...

vet:
	$(GO) vet ./...

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

## itest: run the integration tests against a fresh regtest network
itest:
	$(GO) test -tags '$(ITEST_TAGS)' -count=1 -timeout $(ITEST_TIMEOUT) $(ITEST_FLAGS) ./itest/...

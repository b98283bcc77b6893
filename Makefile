# Bulwark. `make run` and `make test` work on a fresh machine with Go 1.26.
# Binaries go to bin/; Go's build cache makes repeated builds fast (the
# embedded Temporal server takes ~12 minutes cold, ~20 s warm).

GO        ?= go
BIN       := $(CURDIR)/bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
WORKFLOWCHECK_VERSION := v0.6.0
TEST_TIMEOUT ?= 25m

.PHONY: all build run test unit lint bench integration clean serve fmt

all: build

build: ## bulwark (CLI), bulwark-worker, bulwark-temporal (embedded server)
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/bulwark ./starter
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/bulwark-worker ./workers
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/bulwark-temporal ./cmd/bulwark-temporal

run: build ## back up and verify the demo database on the embedded server
	cd $(CURDIR) && $(BIN)/bulwark run $(ARGS)

test: build ## the whole suite, including end-to-end tests on the embedded server
	BULWARK_BIN_DIR=$(BIN) BULWARK_TEMPORAL_BIN=$(BIN)/bulwark-temporal $(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...

unit: ## tests that need no binaries (end-to-end tests build what they need)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e /devserver -e /integration)

lint: ## go vet, gofmt, and Temporal's workflowcheck on workflow code
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	@test -x $(BIN)/workflowcheck || GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)
	$(BIN)/workflowcheck ./workflows/...

bench: build ## speed and memory against the named baselines, printed as ratios
	./bench/run.sh

integration: ## Oracle and other suites that need Docker (skip cleanly without it)
	$(GO) test -count=1 -tags integration -timeout 60m ./integration/...

serve: build ## embedded server + Web UI + worker on .bulwark, schedules applied, until Ctrl-C
	$(BIN)/bulwark run --keep schedules apply

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

# Bulwark. `make run` and `make test` work on a fresh machine with Go 1.26.
# Binaries go to bin/; Go's build cache makes repeated builds fast (the
# embedded Temporal server takes ~12 minutes cold, ~20 s warm).

GO        ?= go
BIN       := $(CURDIR)/bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
WORKFLOWCHECK_VERSION := v0.6.0
TEST_TIMEOUT ?= 25m

.PHONY: all build run test unit lint bench integration clean serve fmt chaos cluster-up cluster-down

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

chaos: build ## the reliability campaign (issue #7): crash points, server restarts, storage faults, soak, fuzzers (FUZZTIME=5m each), secrets; one table at the end
	./chaos/run.sh

serve: build ## embedded server + Web UI + worker on .bulwark, schedules applied, until Ctrl-C
	$(BIN)/bulwark run --keep schedules apply

# The docker-compose cluster (docker-compose.yml): `docker compose` (v2) when
# installed, else docker-compose. Its secrets come from .env or the
# environment: BULWARK_TEMPORAL_DB_PASSWORD, BULWARK_ORACLE_SYS_PASSWORD,
# BULWARK_ORACLE_PASSWORD, BULWARK_MINIO_ROOT_USER, BULWARK_MINIO_ROOT_PASSWORD,
# BULWARK_S3_ACCESS_KEY, BULWARK_S3_SECRET_KEY (see .env.example).
CLUSTER_PROJECT ?= bulwark
CLUSTER_COMPOSE = $$(docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose) -p $(CLUSTER_PROJECT)

cluster-up: ## Temporal+PostgreSQL, UI, Oracle Free, MinIO (Object Lock), workers in Docker; needs .env (cp .env.example .env)
	@test -f .env || test -n "$$BULWARK_TEMPORAL_DB_PASSWORD" || { \
	  echo "cluster-up: no .env: cp .env.example .env and set its passwords (BULWARK_TEMPORAL_DB_PASSWORD, BULWARK_ORACLE_SYS_PASSWORD, BULWARK_ORACLE_PASSWORD, BULWARK_MINIO_ROOT_USER, BULWARK_MINIO_ROOT_PASSWORD, BULWARK_S3_ACCESS_KEY, BULWARK_S3_SECRET_KEY)"; exit 1; }
	@if docker compose version >/dev/null 2>&1; then \
	  docker compose -p $(CLUSTER_PROJECT) up -d --build --wait; \
	else \
	  docker-compose -p $(CLUSTER_PROJECT) up -d --build && \
	  echo "docker-compose v1 does not wait for health checks: watch docker-compose -p $(CLUSTER_PROJECT) ps (Oracle's first start takes minutes)"; \
	fi
	@echo "Temporal UI on 127.0.0.1:8080, MinIO console on :9001 (or the BULWARK_*_PORT of .env)"
	@echo "CLI: $(CLUSTER_COMPOSE) exec bulwark-worker bulwark status"

cluster-down: ## stop and remove the cluster's containers; VOLUMES=1 also deletes its data (backups, key, databases)
	$(CLUSTER_COMPOSE) --env-file $$(test -f .env && echo .env || echo .env.example) down --remove-orphans $(if $(filter 1,$(VOLUMES)),--volumes)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

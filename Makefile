# genrelay: build, run and test. `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Every package of every module in go.work.
PKGS := github.com/genrelay/genrelay/...
BIN := $(CURDIR)/bin

# Pinned tool versions, installed into ./bin on first use.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
STATICCHECK_VERSION := v0.8.2

# Docker Compose v2 is "docker compose"; v1 is "docker-compose".
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 \
	&& echo "docker compose" || echo docker-compose)

export TESTCONTAINERS_RYUK_DISABLED := true

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) \
		| awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: run
run: ## Run NATS, ingress and moderation locally (no Docker).
	@bash deployments/local/run.sh

.PHONY: build
build: ## Build the service binaries into ./bin.
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./services/ingress ./services/moderation \
		./services/devnats ./pkg/examples/printclean

.PHONY: test
test: lint proto-check ## Lint, check generated code, run every test.
	$(GO) test -race -count=1 -timeout 40m $(PKGS)

.PHONY: bench
bench: ## Benchmark ingress and the pipeline over real processes.
	$(GO) test -run '^$$' -bench . -benchtime 3000x -count 3 \
		github.com/genrelay/genrelay/tests/integration

.PHONY: lint
lint: $(BIN)/staticcheck ## Run go vet and staticcheck.
	$(GO) vet $(PKGS)
	$(BIN)/staticcheck $(PKGS)

.PHONY: proto
proto: $(BIN)/buf $(BIN)/protoc-gen-go ## Regenerate Go code from proto/.
	PATH=$(BIN):$$PATH $(BIN)/buf lint proto
	PATH=$(BIN):$$PATH $(BIN)/buf generate proto --template proto/buf.gen.yaml

.PHONY: proto-check
proto-check: $(BIN)/buf $(BIN)/protoc-gen-go ## Fail if generated code is stale.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	PATH=$(BIN):$$PATH $(BIN)/buf generate proto \
		--template proto/buf.gen.yaml -o "$$tmp"; \
	if ! diff -r "$$tmp/pkg/genrelay" pkg/genrelay; then \
		echo "generated code in pkg/genrelay is stale: run make proto" >&2; \
		exit 1; \
	fi

$(BIN)/buf:
	GOBIN=$(BIN) GOWORK=off $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) GOWORK=off $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) GOWORK=off $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Container images and the compose stack; docs/deployment.md explains them.
# Image tag of genrelay/{nats,ingress,moderation,printclean}.
GENRELAY_IMAGE_TAG ?= dev
export GENRELAY_IMAGE_TAG

.PHONY: images
images: ## Build static Linux binaries and the container images.
	@bash deployments/build-images.sh

.PHONY: up
up: images ## Build the images and start the compose stack.
	$(COMPOSE) up --detach --remove-orphans

# Compose interpolates the whole file for every command, so `down` needs
# some value for the required webhook keys even though it does not use it.
.PHONY: down
down: ## Stop the compose stack; its NATS volumes are kept.
	GENRELAY_WEBHOOK_KEYS=$${GENRELAY_WEBHOOK_KEYS:-unused:unused} \
		$(COMPOSE) down --remove-orphans

.PHONY: e2e
e2e: ## Run only the end-to-end suite against containers (needs Docker).
	$(GO) test -race -count=1 -timeout 30m -v \
		github.com/genrelay/genrelay/tests/e2e/...

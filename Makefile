# sweep — design-space exploration of Mixture-of-Experts accelerators.
# `make help` lists the targets.

GO      ?= go
BIN     ?= bin/sweep
STUDY   ?= studies/seed-moe.toml
PKGS    := ./...

.PHONY: help build install run test unit interop lint bench torture fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/sweep
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/sweep

install: ## go install the sweep command
	CGO_ENABLED=0 $(GO) install ./cmd/sweep

run: ## run the seed study on the embedded engine (results/seed-moe/)
	$(GO) run ./cmd/sweep run $(STUDY)

test: lint unit interop ## everything the README promises: lint, unit and integration tests, DuckDB interop

unit: ## go test of the main module
	CGO_ENABLED=0 $(GO) test -count=1 $(PKGS)

interop: ## DuckDB reads the datasets (nested cgo module)
	bash .ci/duckdb-test.sh

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

FULL ?= 1
bench: ## benchmarks that print figures: engine, writer, runner, command engine, end to end with 100k, 1M and 10M points (FULL=0 leaves out the 10M run)
	CGO_ENABLED=0 $(GO) test -run '^$$' -bench . -benchmem -benchtime 20000x ./engine/moe
	CGO_ENABLED=0 $(GO) test -run '^$$' -bench . -benchmem -benchtime 2x ./dataset ./sweep
	FULL=$(FULL) bash bench/perf.sh
	bash bench/command-overhead.sh

# FUZZTIME is a count of inputs (Nx), not a duration: with a duration, Go
# 1.26's fuzz coordinator can fail a target with "context deadline
# exceeded" at the deadline on a loaded machine, with no crasher (Go issue
# 75804, fixed in Go 1.27).
FUZZTIME ?= 50000x
fuzz: ## run every fuzz target on FUZZTIME inputs each (crashers land in testdata/fuzz)
	CGO_ENABLED=0 $(GO) test ./sweep -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	CGO_ENABLED=0 $(GO) test ./engine/moe -run '^$$' -fuzz '^FuzzNeuPIMsJSON$$' -fuzztime $(FUZZTIME)
	CGO_ENABLED=0 $(GO) test ./engine/moe -run '^$$' -fuzz '^FuzzTraces$$' -fuzztime $(FUZZTIME)
	CGO_ENABLED=0 $(GO) test ./engine/moe -run '^$$' -fuzz '^FuzzHFConfig$$' -fuzztime $(FUZZTIME)

KILLS ?= 20
torture: ## SIGKILL a 200k-point sweep KILLS times, resuming each time; compare with an uninterrupted run
	SWEEP_TORTURE_KILLS=$(KILLS) SWEEP_TORTURE_STUDY=testdata/torture.toml \
	  CGO_ENABLED=0 $(GO) test ./cmd/sweep -run '^TestKillAndResume$$' -count=1 -v -timeout 30m

clean: ## remove build output (datasets under results/ are kept)
	rm -rf bin

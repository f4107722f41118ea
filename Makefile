# beadbff: `make run` serves on the embedded defaults; `make test` runs every test.
#
# The patched Go toolchain comes through the Go module proxy (go.mod alone is not honoured here).
export GOTOOLCHAIN := go1.26.10
GO        ?= go
TEMPL     := $(GO) tool templ
STATICCHECK_VERSION := v0.8.2
BENCHTIME ?= 5s
# bash with pipefail, so that a failing command piped into tee or grep fails its target.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: run build test test-short generate verify-generate lint bench deps sandbox clean

## run: the server on its embedded defaults (sandbox, in-memory sessions) at http://localhost:8080
run:
	$(GO) run ./cmd/beadbff

## sandbox: the standalone Bead sandbox on 127.0.0.1:8081
sandbox:
	$(GO) run ./cmd/beadsandbox

## build: static binaries in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o bin/beadbff ./cmd/beadbff
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o bin/beadsandbox ./cmd/beadsandbox

## deps: make sure redis-server and chromium are there (installs them with apt when root), or say what is missing
deps:
	@.ci/deps

## test: every test, against a real redis-server and real headless Chromium
test: deps verify-generate
	@mkdir -p test-artifacts
	$(GO) test -count=1 -timeout 12m -artifacts -outputdir $(CURDIR)/test-artifacts ./...

## test-short: the unit tests only (no Redis, no browser)
test-short:
	$(GO) test -short -count=1 ./...

## generate: regenerate templ's Go code from views/*.templ
generate:
	$(TEMPL) generate -path views

## verify-generate: fail when the committed generated code is not what the .templ sources give
verify-generate:
	@$(TEMPL) generate -path views >/dev/null 2>&1 || { echo 'templ generate failed: run make generate' >&2; exit 1; }
	@git diff --exit-code -- views || { echo 'views/*_templ.go are stale: run make generate and commit the result' >&2; exit 1; }

## lint: go vet and staticcheck
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## bench: a status read through beadbff against the same read sent straight to the sandbox, same run,
## same concurrency; prints both and their ratio (see README). Then the refresh storm (200 concurrent
## calls over two servers right after every token expired) beside the same calls with valid tokens, one
## burst per iteration: wall time of both and their ratio; the session layer's benchmarks; and the Redis
## commands per proxied status read. It asserts nothing about time.
bench: deps
	@mkdir -p test-artifacts
	$(GO) test -run '^$$' -bench 'StatusRead' -benchtime $(BENCHTIME) -count 1 ./cmd/beadbff/ | tee test-artifacts/bench.txt
	@.ci/bench-ratio test-artifacts/bench.txt
	$(GO) test -run '^$$' -bench 'RefreshStorm' -benchtime 20x -count 1 ./cmd/beadbff/ | tee test-artifacts/bench-storm.txt
	@.ci/bench-storm-ratio test-artifacts/bench-storm.txt
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./session/ ./bff/ | tee test-artifacts/bench-session.txt
	$(GO) test -run '^TestRedisCommandsPerProxiedCall$$' -v -count 1 ./cmd/beadbff/ | grep -E 'per proxied|^(ok|FAIL|---)'

clean:
	rm -rf bin

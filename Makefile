# cratestream — the two commands are `make demo` and `make test`.
GO      ?= go
BIN     ?= cratestream
# Packages of the stream runtime run under the race detector.
RACE_PKGS := ./internal/stream/... ./internal/kv/...

.PHONY: all build demo test deps bench generate generate-check lint eval clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/cratestream

## demo: the whole pipeline on the embedded stack (installs redis-server and
## clickhouse-server from apt when missing and possible; runs without otherwise)
demo: build
	@scripts/install-deps.sh
	./$(BIN) demo

## test: every test; installs what it needs (CI=true makes missing servers fatal)
test:
	@CRATESTREAM_DEPS_REQUIRED=$(if $(filter true,$(CI)),1,0) scripts/install-deps.sh --test
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...
	$(GO) test -race -timeout 20m $(RACE_PKGS)
	$(GO) test -timeout 20m $$($(GO) list ./... | grep -v -e /internal/stream -e /internal/kv)

## bench: Go benchmarks, then the end-to-end benchmark commands
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
	./$(BIN) bench profile

## eval: the offline evaluation on both shared datasets (all models, 5 seeds)
eval: build
	./$(BIN) eval --ratings ../shared/datasets/ml-latest-small/ratings.csv
	./$(BIN) eval --ratings ../shared/datasets/hetrec2011-lastfm-2k/user_artists.dat

## generate: regenerate the protobuf Go code with pinned buf and protoc-gen-go
## (and its stamp, which make test checks without building them)
generate:
	schemas/generate.sh

## generate-check: regenerate into a temporary directory and compare (builds buf)
generate-check:
	CRATESTREAM_GENERATE_CHECK=1 $(GO) test -count=1 -run TestGeneratedCodeIsFresh ./schemas

## lint: formatting, vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

clean:
	rm -f $(BIN)
	rm -rf .demo

# flowguard: make run (the daemon on its embedded defaults), make test,
# make demo (replay the demo capture), make bench, make bench-e2e, make
# bench-redis, make lint, make build.
GO      ?= go
BIN     ?= bin/flowguard
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Packages that run goroutines: the race detector runs on these.
RACE_PKGS := ./engine/... ./ingest/... ./notifiers/... ./enrich/... ./cmd/... ./daemon/... ./web/... ./console/... ./talkers/...
FUZZTIME ?= 10s
# Decoders of untrusted input: their fuzz targets run briefly in `make test`,
# bounded by a count of inputs rather than a duration (a duration can end
# while the fuzzer minimises an input, which go test reports as a failure).
FUZZ_PKGS := ./ingest/netflow ./ingest/sflow ./ingest/pcap ./ingest/flowfile

.PHONY: all build run demo bench-e2e bench-redis test test-race fuzz fuzz-long bench lint clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/flowguard

# The daemon on its embedded defaults: NetFlow :2055, IPFIX :4739,
# sFlow :6343, the bundled rules, alerts on stdout, /metrics on :9310;
# or on a config file: make run CONFIG=examples/five-minutes.yaml.
run: build
	$(BIN) run $(if $(CONFIG),-c $(CONFIG))

# Replay the bundled demo capture through the bundled rules.
demo: build
	$(BIN) replay --format text testdata/demo.pcap

test: lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)
	$(BIN) rules validate examples/rules
	$(BIN) rules test examples/rules
	$(MAKE) --no-print-directory fuzz FUZZ_LIST="$(FUZZ_PKGS)" FUZZTIME=20000x

FUZZ_LIST ?= ./...
fuzz:
	@for pkg in $$($(GO) list $(FUZZ_LIST)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Every decoder fuzz target for a longer while: FUZZTIME per target
# (default 10m here; e.g. make fuzz-long FUZZTIME=1h).
fuzz-long:
	$(MAKE) --no-print-directory fuzz FUZZ_LIST="$(FUZZ_PKGS)" FUZZTIME=$(if $(filter command line,$(origin FUZZTIME)),$(FUZZTIME),10m)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./...

# flowguard against goflow2, nfcapd and softflowd on loopback (see bench/e2e.sh).
bench-e2e:
	bash bench/e2e.sh

# two instances sharing Redis and a 3-master Cluster at live pace (see bench/redis.sh).
bench-redis:
	bash bench/redis.sh

lint: build
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin

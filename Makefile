# Developer front door. Every target works from a fresh clone on Debian with
# Go installed; `make test` is what CI runs (through .ci/run).

FUZZTIME ?= 10s
BENCHTIME ?= 1s
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

.PHONY: all run build test lint proto proto-check fuzz bench clean help cluster-up cluster-down

all: build

help:
	@echo "make run          build and run the server with its embedded defaults"
	@echo "make build        build bin/switchboard and bin/xmppctl"
	@echo "make test         everything CI checks (scripts/test.sh)"
	@echo "make lint         gofmt -l and go vet, every module"
	@echo "make proto        regenerate the protobuf code"
	@echo "make proto-check  fail when the committed protobuf code is stale"
	@echo "make fuzz         every fuzz target for FUZZTIME (default 10s)"
	@echo "make bench        every benchmark, every module"
	@echo "make cluster-up   start a local cluster (2 c2s, 2 routers, roster, presence) in the background"
	@echo "make cluster-down stop it"

# ARGS passes flags through: make run ARGS='--domain example.org'.
# Like `go run ./cmd/switchboard`, but the server is exec'd rather than a
# child of go run, so Ctrl-C stops it gracefully and make sees its own exit
# status (go run reports 1 after any interrupt).
run:
	go build -o bin/switchboard ./cmd/switchboard
	exec bin/switchboard $(ARGS)

build:
	go build -ldflags "-X main.version=$(VERSION) -X github.com/switchboard-xmpp/switchboard/internal/nodes.version=$(VERSION)" -o bin/switchboard ./cmd/switchboard
	go build -o bin/xmppctl ./cmd/xmppctl

test:
	FUZZTIME=$(FUZZTIME) scripts/test.sh

lint:
	scripts/lint.sh

proto:
	proto/generate.sh

proto-check:
	scripts/proto-check.sh

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

bench:
	BENCHTIME=$(BENCHTIME) scripts/bench.sh

# The local cluster: separate processes against the machine's Postgres,
# Redis and NATS; state, logs and pid files under .cluster/. See the scripts
# for the settings (CLUSTER_PREFIX, NATS_URL, ...).
cluster-up:
	scripts/cluster-up.sh

cluster-down:
	scripts/cluster-down.sh

clean:
	rm -rf bin/switchboard

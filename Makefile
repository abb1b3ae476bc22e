# glowcast — see README.md. `make demo` and `make test` are the two entry points.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/glowcast/glowcast/device.Version=$(VERSION) -X github.com/glowcast/glowcast/agent.Version=$(VERSION)
WEATHER ?= open-meteo
BINS    := glowcastd glowcast-agent glowcast

.PHONY: test-cluster chaos soak fuzz bench all build demo test test-short test-security pki vet fmt-check race fuzz-seeds clean dist deb

all: build

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINS))

# One process: embedded broker, agent, one device drawing in this terminal.
# WEATHER=sample uses the bundled sample forecast (labelled as such).
demo: build
	./bin/glowcast demo --weather $(WEATHER)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The whole suite: formatting, vet, race-enabled tests (Mosquitto suites
# included; they start their own broker processes).
test: build fmt-check vet
	$(GO) test -race -count=1 -timeout 15m ./...

test-short: build
	$(GO) test -count=1 -short ./...

# The security suite alone: production broker config and ACL, TLS and
# credentials, the PKI script, limits, and the systemd units' exposure.
test-security:
	$(GO) test -race -count=1 -v -run . ./internal/securitytest ./internal/brokerconf ./internal/sdnotify ./protocol

# The clustered-broker suite alone: three nats-server nodes (the release
# configs/nats/glowcast.conf is written for, built once with go install into
# the user cache, or $$GLOWCAST_NATS_SERVER) from the shipped config, nodes
# killed under a fleet's retained state. Not yet part of make test.
test-cluster:
	GLOWCAST_NATS_CLUSTER=1 $(GO) test -race -count=1 -v -timeout 10m ./test/natscluster

# A fleet's credentials: make pki ARGS="device kitchen" (see scripts/glowcast-pki).
pki:
	GLOWCAST_PKI=$${GLOWCAST_PKI:-glowcast-pki} ./scripts/glowcast-pki $(ARGS)

clean:
	rm -rf bin dist

# Cross builds, CGO off: armv6 (GOARM=6: Pi Zero/1), armv7 (GOARM=7: Pi 2/3
# 32-bit), arm64 (Pi 3/4/5) and amd64 (servers), in $(DIST)/linux_<target>/.
DIST      ?= dist
DIST_BINS := glowcastd glowcast-agent
dist:
	$(call xbuild,armv6,arm,6)
	$(call xbuild,armv7,arm,7)
	$(call xbuild,arm64,arm64,)
	$(call xbuild,amd64,amd64,)

define xbuild
	@mkdir -p $(DIST)/linux_$(1)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(2) GOARM=$(3) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/linux_$(1)/ $(addprefix ./cmd/,$(DIST_BINS))
endef

# .deb packages in $(DIST)/deb/ for armhf (the ARMv6 build, so one package
# serves every Pi), arm64 and amd64, built with nfpm from the tools module.
# Debian versions must start with a digit: v1.2.3-4-gabc becomes 1.2.3+4+gabc.
NFPM        := $(GO) tool -modfile=tools/go.mod nfpm
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -e 's/^v//' -e 's/^[^0-9]/0.0.0+&/' -e 's/-/+/g')
deb: dist
	@mkdir -p $(DIST)/deb
	@set -e; for t in armv6:arm6 arm64:arm64 amd64:amd64; do \
		for p in glowcastd glowcast-agent; do \
			echo "nfpm $$p $${t#*:}"; \
			GOARCHDIR=$${t%%:*} ARCH=$${t#*:} VERSION='$(DEB_VERSION)' DIST='$(DIST)' \
				$(NFPM) pkg --packager deb --config packaging/$$p.yaml --target $(DIST)/deb/; \
		done; \
	done

# The benchmark campaign that BENCHMARKS.md records: one table (takes about
# ten minutes; not part of make test). BENCH_FLAGS narrows it, e.g.
# BENCH_FLAGS='--parts resume --trials 5'.
bench: build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/glowcast-bench
	./bin/glowcast-bench --bin bin $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchtime 300x ./internal/bench/

# The fault campaign (docs/RELIABILITY.md): every fault, the minute-long
# ones included, ROUNDS times in all on a seeded schedule that is printed;
# SEED=n replays one; FAULTS=a,b draws from those faults only. make test
# runs a short version of it.
SEED     ?= 0
FAULTS   ?=
ROUNDS   ?= 60
DURATION ?= 30m
FUZZTIME ?= 5s
FUZZPKGS ?= ./...
chaos:
	$(GO) test -count=1 -timeout 0 -v -run '^TestCampaign$$' ./internal/chaos \
		-args -chaos.seed=$(SEED) -chaos.rounds=$(ROUNDS) -chaos.long -chaos.interval=2s -chaos.devices=5 -chaos.faults=$(FAULTS)

# 50 devices, interval 1 s, random faults for DURATION; prints resources
# every minute and fails on growth.
soak:
	$(GO) test -count=1 -timeout 0 -v -run '^TestSoak$$' ./internal/chaos \
		-args -chaos.seed=$(SEED) -soak.duration=$(DURATION) -soak.devices=50 -soak.interval=1s -chaos.long

# Every fuzz target of FUZZPKGS for FUZZTIME each (make test runs their
# checked-in seed corpora). Go 1.26's fuzz coordinator can fail a target
# with a bare "context deadline exceeded" as FUZZTIME ends
# (go.dev/issue/75804): such a run, without a failing input written, is
# reported and not counted as a failure.
fuzz:
	@failed=""; out=$$(mktemp); for pkg in $$($(GO) list $(FUZZPKGS)); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$t"; \
			before=$$(ls $$dir/testdata/fuzz/$$t 2>/dev/null | wc -l); \
			if ! $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg > $$out 2>&1; then \
				after=$$(ls $$dir/testdata/fuzz/$$t 2>/dev/null | wc -l); \
				if [ "$$after" = "$$before" ] && grep -q '^    context deadline exceeded$$' $$out; then \
					echo "  (fuzz coordinator deadline race, go.dev/issue/75804; no failing input)"; \
				else cat $$out; failed="$$failed $$pkg.$$t"; fi; \
			fi; \
		done; \
	done; \
	rm -f $$out; \
	if [ -n "$$failed" ]; then echo "fuzz failures (inputs under testdata/fuzz/):$$failed"; exit 1; fi

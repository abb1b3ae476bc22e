# glowcast — see README.md. `make demo` and `make test` are the two entry points.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/glowcast/glowcast/device.Version=$(VERSION) -X github.com/glowcast/glowcast/agent.Version=$(VERSION)
WEATHER ?= open-meteo
BINS    := glowcastd glowcast-agent glowcast

.PHONY: test-cluster pkg-docs apt-repo test-deps test-debroot deb-pkgs dist-amd64 chaos soak fuzz bench bench-100k bench-retained all build demo test test-short test-security pki vet fmt-check race fuzz-seeds clean dist deb

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

# The Debian packages the suites need (scripts/install-test-deps says
# what it installs; not root, it prints the apt-get line to run).
test-deps:
	./scripts/install-test-deps

# The whole suite: formatting, vet, race-enabled tests (Mosquitto suites
# included; they start their own broker processes).
test: test-deps build fmt-check vet
	$(GO) test -race -count=1 -timeout 15m ./...

test-short: build
	$(GO) test -count=1 -short ./...

# The security suite alone: production broker config and ACL, TLS and
# credentials, the PKI script, limits, and the systemd units' exposure.
test-security:
	$(GO) test -race -count=1 -v -run . ./test/security ./internal/brokerconf ./internal/sdnotify ./protocol

# The clustered-broker suite alone (make test runs it too): three
# nats-server nodes (the release configs/nats/glowcast.conf is written for,
# built once with go install into the user cache by scripts/install-test-deps,
# or $$GLOWCAST_NATS_SERVER) from the shipped config, nodes killed under a
# fleet's retained state.
test-cluster: test-deps
	$(GO) test -race -count=1 -v -timeout 10m ./test/natscluster

# A fleet's credentials: make pki ARGS="device kitchen" (see scripts/glowcast-pki).
pki:
	GLOWCAST_PKI=$${GLOWCAST_PKI:-glowcast-pki} ./scripts/glowcast-pki $(ARGS)

clean:
	rm -rf bin dist

# Cross builds, CGO off: armv6 (GOARM=6: Pi Zero/1), armv7 (GOARM=7: Pi 2/3
# 32-bit), arm64 (Pi 3/4/5) and amd64 (servers), in $(DIST)/linux_<target>/.
DIST      ?= dist
DIST_BINS := glowcastd glowcast-agent glowcast
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
deb: dist deb-pkgs

# The packages alone, from binaries already in $(DIST): DEB_ARCHES narrows
# them (the Debian-root suite builds amd64 only: make dist-amd64 deb-pkgs
# DEB_ARCHES=amd64:amd64).
DEB_ARCHES ?= armv6:arm6 arm64:arm64 amd64:amd64
deb-pkgs: pkg-docs
	@mkdir -p $(DIST)/deb
	@set -e; for t in $(DEB_ARCHES); do \
		for p in glowcastd glowcast-agent; do \
			echo "nfpm $$p $${t#*:}"; \
			GOARCHDIR=$${t%%:*} ARCH=$${t#*:} VERSION='$(DEB_VERSION)' DIST='$(DIST)' \
				$(NFPM) pkg --packager deb --config packaging/$$p.yaml --target $(DIST)/deb/; \
		done; \
	done

# A signed apt repository in $(DIST)/apt from the .debs (scripts/apt-repo;
# the fleet's signing key lives in $(APT_KEY), docs/DEPLOY.md says how to
# keep it). Publish $(DIST)/apt on any web server.
APT_KEY ?= glowcast-apt-key
apt-repo: deb
	GLOWCAST_APT_KEY=$(APT_KEY) ./scripts/apt-repo $(DIST)/apt $(DIST)/deb/*.deb

# What the packages carry besides the binaries: the manual pages printed by
# `<binary> man` (from the flag sets the binaries parse) and a Debian
# changelog entry for this version, gzipped as Debian policy asks.
pkg-docs:
	@mkdir -p $(DIST)/man $(DIST)/doc
	$(GO) run ./cmd/glowcastd man | gzip -9n > $(DIST)/man/glowcastd.8.gz
	$(GO) run ./cmd/glowcast-agent man | gzip -9n > $(DIST)/man/glowcast-agent.8.gz
	$(GO) run ./cmd/glowcast man | gzip -9n > $(DIST)/man/glowcast.1.gz
	@set -e; for p in glowcastd glowcast-agent; do \
		{ echo "$$p ($(DEB_VERSION)) stable; urgency=medium"; echo; \
		  git log -n 20 --format='  * %s' 2>/dev/null | cut -c1-78 || echo '  * Release $(DEB_VERSION).'; \
		  echo; echo " -- glowcast maintainers <maintainers@glowcast.invalid>  $$(date -R -d @$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)})"; \
		} | gzip -9n > $(DIST)/doc/$$p.changelog.gz; \
	done

dist-amd64:
	$(call xbuild,amd64,amd64,)

# The Debian-root suite (test/debroot): the .debs installed, upgraded,
# removed and purged by dpkg and apt in a Debian root that mmdebstrap builds
# from Debian's mirror (cached in ~/.cache/glowcast). Part of make test.
test-debroot: test-deps
	$(GO) test -count=1 -v ./test/debroot

# The benchmark campaign that BENCHMARKS.md records: one table, the fleet
# rows at 10,000 and 100,000 devices (takes about forty minutes; not part
# of make test). BENCH_FLAGS narrows it, e.g. BENCH_FLAGS='--parts resume
# --trials 5' or BENCH_FLAGS='--fleets 10000'.
bench: build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/glowcast-bench
	./bin/glowcast-bench --bin bin --fleets 10000,100000 $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench MessageToLight -benchtime 300x ./cmd/glowcast-bench/bench/
	$(GO) test -run '^$$' -bench RetainedBurstClient -benchtime 5x ./cmd/glowcast-bench/bench/
	$(GO) test -run '^$$' -bench RetainedBurstTLS -benchtime 5x ./test/security/
	$(GO) test -run '^$$' -bench RetainedStateHandlers -benchtime 30x ./agent/
	$(GO) test -run '^$$' -bench . -benchtime 1x ./agent/verify/

# The fleet rows alone, at 10,000 and 100,000 devices in one table
# (BENCHMARKS.md, "100,000 devices"): 10,000 with connections, the rest
# retained state only (one process stops at 20,000 open files). About
# twenty minutes, most of it the 100,000-device cold start.
bench-100k: build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/glowcast-bench
	./bin/glowcast-bench --bin bin --parts fleet --fleets 10000,100000 $(BENCH_FLAGS)

# 3,000 simulated devices on the shipped broker limits, cold and after an
# agent SIGKILL (BENCHMARKS.md, "3,000 devices on the shipped broker limits").
bench-retained: build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/glowcast-bench
	./bin/glowcast-bench --bin bin --parts fleet --fleets 3000 --steady 5s --after 10s

# The fault campaign (docs/RELIABILITY.md): every fault, the minute-long
# ones included, ROUNDS times in all on a seeded schedule that is printed;
# SEED=n replays one; FAULTS=a,b draws from those faults only. make test
# runs a short version of it. INTERVAL, DEVICES, LONG=false and FLEET=0
# trade the slow faults for more faults in an hour.
SEED     ?= 0
FAULTS   ?=
ROUNDS   ?= 60
FLEET    ?= 2000
LONG     ?= true
INTERVAL ?= 2s
DEVICES  ?= 5
DURATION ?= 30m
FUZZTIME ?= 5s
FUZZPKGS ?= ./...
chaos:
	$(GO) test -count=1 -timeout 0 -v -run '^TestCampaign$$' ./test/chaos \
		-args -chaos.seed=$(SEED) -chaos.rounds=$(ROUNDS) -chaos.long=$(LONG) -chaos.interval=$(INTERVAL) -chaos.devices=$(DEVICES) -chaos.fleet=$(FLEET) -chaos.faults=$(FAULTS)

# 50 devices, interval 1 s, random faults for DURATION; prints resources
# every minute and fails on growth.
soak:
	$(GO) test -count=1 -timeout 0 -v -run '^TestSoak$$' ./test/chaos \
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

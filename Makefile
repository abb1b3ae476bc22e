# glowcast — see README.md. `make demo` and `make test` are the two entry points.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/glowcast/glowcast/device.Version=$(VERSION) -X github.com/glowcast/glowcast/agent.Version=$(VERSION)
WEATHER ?= open-meteo
BINS    := glowcastd glowcast-agent glowcast

.PHONY: all build demo test test-short vet fmt-check race fuzz-seeds clean

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

clean:
	rm -rf bin dist

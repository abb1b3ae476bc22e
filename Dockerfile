# glowcast-agent in a container. Build from the repository root:
#
#   docker build -t glowcast-agent .
#
# Run it beside the broker (docs/DEPLOY.md, "In a container"): the config,
# CA and client certificate come in read-only under /etc/glowcast, the key
# or password as a secret file, the saved device state in a volume.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/glowcast/glowcast/agent.Version=${VERSION}" \
	-o /out/glowcast-agent ./cmd/glowcast-agent

# distroless/static: CA roots and tzdata for HTTPS to the weather services,
# no shell, a non-root user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/glowcast-agent /usr/bin/glowcast-agent
COPY configs/agent.yaml /etc/glowcast/agent.yaml
VOLUME /var/lib/glowcast
# The status page, /healthz and /metrics, on loopback unless the operator
# says otherwise: with --network host that is the host's loopback. On a
# bridge network pass --http 0.0.0.0:9120 and publish the port on the
# host's loopback only (-p 127.0.0.1:9120:9120; docs/DEPLOY.md).
EXPOSE 9120
USER nonroot:nonroot
ENTRYPOINT ["/usr/bin/glowcast-agent"]
CMD ["-config", "/etc/glowcast/agent.yaml", "--http", "127.0.0.1:9120", "--state-dir", "/var/lib/glowcast"]

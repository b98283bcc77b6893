# Bulwark's worker and CLI, for docker-compose.yml (make cluster-up).
#
# Builds bulwark-worker (./workers), bulwark (./starter) and finance-gen (the
# demo database generator). Not ./cmd/bulwark-temporal: the cluster runs the
# real Temporal server, and linking it takes minutes.
#
#   docker build -t bulwark:local --build-arg VERSION=$(git describe --always --dirty) .

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-trixie AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/bulwark-worker ./workers \
 && go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/bulwark ./starter \
 && go build -ldflags "-s -w" -o /out/finance-gen ./demodb/cmd/finance-gen

FROM debian:trixie-slim
# ca-certificates for TLS to S3 and KMS; tzdata for schedules' time zones;
# sqlite3 to inspect restored databases and replay SQL exports; wget for the
# compose healthcheck.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata sqlite3 wget \
 && rm -rf /var/lib/apt/lists/*
# Named volumes mounted on these directories start with their owner and mode.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/bulwark --shell /usr/sbin/nologin bulwark \
 && mkdir -p /var/lib/bulwark/backups /var/lib/bulwark/keys /var/lib/bulwark/demo /var/lib/bulwark/scratch /etc/bulwark \
 && chown -R bulwark:bulwark /var/lib/bulwark \
 && chmod 700 /var/lib/bulwark/keys
COPY --from=build /out/ /usr/local/bin/
USER bulwark
WORKDIR /var/lib/bulwark
ENV BULWARK_CONFIG=/etc/bulwark/bulwark.yaml
EXPOSE 9464
CMD ["bulwark-worker", "--config", "/etc/bulwark/bulwark.yaml"]

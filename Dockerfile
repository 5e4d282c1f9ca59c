# simutrador-gateway image: `docker build -t simutrador-gateway .`
#
# Runs as an unprivileged user; listens on 8003 on all interfaces. Configure it with
# SIMUTRADOR__* environment variables (README, "Configuration"); production needs
# SIMUTRADOR__MODE=production, SIMUTRADOR__JWT__SECRET, SIMUTRADOR__AUTH__API_KEY_PEPPER
# and a postgres:// SIMUTRADOR__DATABASE__URL shared by all nodes. Health checks are
# left to the orchestrator (docker-compose.yml, deploy/k8s/) on /health and /ready.
# Operator commands use the same image: `docker run --rm <env> IMAGE admin create-key ...`.

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
# The release profile keeps debug info for profiling; the image only needs symbols.
RUN cargo build --release --locked -p gateway \
    && strip --strip-debug target/release/simutrador-gateway \
    && cp target/release/simutrador-gateway /usr/local/bin/simutrador-gateway

FROM debian:bookworm-slim
# curl is for the /ready health checks of docker-compose.yml.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 simutrador \
    && useradd --system --uid 10001 --gid simutrador --home-dir /app \
        --no-create-home --shell /usr/sbin/nologin simutrador \
    && mkdir -p /app /var/lib/simutrador \
    && chown simutrador:simutrador /var/lib/simutrador
WORKDIR /app
COPY --from=build /usr/local/bin/simutrador-gateway /usr/local/bin/simutrador-gateway
COPY sample-data /app/sample-data
# A container is reached from outside, so listen on all interfaces. data_dir holds the
# SQLite file only when no database.url is set (single-node use).
ENV SIMUTRADOR__SERVER__HOST=0.0.0.0 \
    SIMUTRADOR__DATA_DIR=/var/lib/simutrador \
    SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT=/app/sample-data
USER 10001:10001
EXPOSE 8003
# `serve` as CMD rather than in ENTRYPOINT, so `admin ...` and `migrate` can replace it.
ENTRYPOINT ["/usr/local/bin/simutrador-gateway"]
CMD ["serve"]

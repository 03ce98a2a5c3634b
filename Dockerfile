# syntax=docker/dockerfile:1
# mist-otel container image: build with the Rust toolchain, run on a slim Debian as a non-root
# user. `docker build -t mist-otel .` then see docker-compose.yml for a full stack.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin mist-otel \
    && install -m 0755 target/release/mist-otel /usr/local/bin/mist-otel

FROM debian:bookworm-slim
# CA certificates for OTLP over TLS and the Mist API; nothing else is needed at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mist-otel \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/mist-otel --shell /usr/sbin/nologin mist-otel \
    && install -d -o mist-otel -g mist-otel -m 0750 /var/lib/mist-otel
COPY --from=builder /usr/local/bin/mist-otel /usr/local/bin/mist-otel

# Inside a container both listeners bind all interfaces; publish the admin port on loopback
# only (see docker-compose.yml). The buffer lives on the volume.
ENV MIST_OTEL_LISTEN=0.0.0.0:4320 \
    MIST_OTEL_ADMIN_LISTEN=0.0.0.0:4321 \
    MIST_OTEL_DATA_DIR=/var/lib/mist-otel
VOLUME ["/var/lib/mist-otel"]
EXPOSE 4320 4321
USER 10001:10001

# The binary probes its own admin /healthz (the slim image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/mist-otel", "health"]

# SIGTERM makes the server stop accepting, finish requests and flush the buffer.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mist-otel"]
CMD ["serve"]

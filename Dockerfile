# syntax=docker/dockerfile:1
#
# obol as a container image: one static binary (musl), CA certificates, non-root.
# Used by the Deployment `obol manifests` prints (`obol serve verifier --route-source kube`).
#
#   docker build -t ghcr.io/obolnetwork/obol:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/obol:TAG --push .
#
# Each platform builds natively (under emulation with buildx), so the Rust target is simply
# <this machine's arch>-unknown-linux-musl.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "$(uname -m)-unknown-linux-musl"
# ring's C/assembly parts are compiled with musl-gcc for either arch.
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CC_aarch64_unknown_linux_musl=musl-gcc
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
 && cargo build --release --locked --bin obol --target "$target" \
 && install -m 0755 "target/$target/release/obol" /obol \
 && /obol --version

# distroless/static: no shell, no libc needed; has /etc/ssl/certs/ca-certificates.crt (TLS to
# the facilitator and the Kubernetes API) and the `nonroot` user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /obol /usr/local/bin/obol
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/obol"]
CMD ["--help"]

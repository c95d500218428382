# syntax=docker/dockerfile:1
# The lustre-operator image: built with the repository's own build command
# (scripts/build-operator: `cargo auditable`, so the binary carries its dependency list),
# dependencies in their own cached layer (cargo-chef), and run as a non-root user on a
# distroless base with no shell.
#
#   docker build -t lustre-operator:dev .          (BuildKit, the default since Docker 23)
#
# The runtime stage (the last one) exists once and takes its base and its binary from two
# build arguments. The defaults are the users' build: distroless, and the binary compiled in
# the `build` stage. `scripts/image build` feeds the same stage a binary built on the host and
# a local Debian 12 base (`--build-arg BINARY=prebuilt --build-arg BASE=...`), because no
# registry is reachable where this project is tested; BuildKit and buildah skip the stages
# the target does not use.

ARG RUST_VERSION=1.95
ARG BASE=gcr.io/distroless/cc-debian12:nonroot
ARG BINARY=build

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install --locked cargo-chef --version ^0.1 \
    && cargo install --locked cargo-auditable --version ^0.7
WORKDIR /src

# The dependency graph only: this layer changes when Cargo.toml / Cargo.lock change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p lustre-operator --recipe-path recipe.json
COPY . .
RUN scripts/build-operator --release \
    && install -D -m 0755 target/release/lustre-operator /out/lustre-operator

# A binary built outside (scripts/image build): the build context holds only
# out/lustre-operator.
FROM scratch AS prebuilt
COPY out/lustre-operator /out/lustre-operator

FROM ${BINARY} AS binary

FROM ${BASE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="lustre-operator" \
      org.opencontainers.image.description="FSx for Lustre workspaces for Kubernetes, from one object" \
      org.opencontainers.image.source="https://github.com/lustre-dev/lustre-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=binary /out/lustre-operator /usr/local/bin/lustre-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/lustre-operator"]
CMD ["run"]

# syntax=docker/dockerfile:1
# The lustre-operator image: built with the repository's own build command
# (scripts/build-operator), dependencies in their own cached layer (cargo-chef), and run as a
# non-root user on a distroless base with no shell.
#
#   docker build -t lustre-operator:dev .

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
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

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="lustre-operator" \
      org.opencontainers.image.description="FSx for Lustre workspaces for Kubernetes, from one object" \
      org.opencontainers.image.source="https://github.com/lustre-dev/lustre-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/lustre-operator /usr/local/bin/lustre-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/lustre-operator"]
CMD ["run"]

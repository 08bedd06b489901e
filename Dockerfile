# syntax=docker/dockerfile:1
#
# gitgate container image: a static-ish Rust binary on distroless (glibc, CA certificates,
# no shell, no package manager), running as the unprivileged user 65532.
#
#   docker build -t gitgate:0.1.0 .                    # HTTPS or local repositories
#   docker build -t gitgate:0.1.0-ssh --target ssh .   # ssh:// repositories (adds the ssh program)
#   docker run --rm gitgate:0.1.0 demo
#
# The image ships the rendering engines beside gitgate (/usr/local/bin/kustomize and
# /usr/local/bin/helm), so that what is indexed is what the GitOps controller applies:
#   docker build --build-arg KUSTOMIZE_VERSION=v5.5.0 --build-arg HELM_VERSION=v3.16.3 .

ARG KUSTOMIZE_VERSION=v5.5.0
ARG HELM_VERSION=v3.16.3

# ---- rendering engines -------------------------------------------------------------------
# kustomize from its official release image.
FROM registry.k8s.io/kustomize/kustomize:${KUSTOMIZE_VERSION} AS kustomize

# helm publishes no official image: its official release archive, checked against the
# checksum published beside it.
FROM debian:bookworm-slim AS helm
ARG HELM_VERSION
ARG TARGETARCH=amd64
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN set -eu; \
    archive="helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz"; \
    curl -fsSLO "https://get.helm.sh/${archive}"; \
    curl -fsSLO "https://get.helm.sh/${archive}.sha256sum"; \
    sha256sum -c "${archive}.sha256sum"; \
    tar -xzf "${archive}"; \
    install -D -m 0755 "linux-${TARGETARCH}/helm" /out/helm

# ---- build ----------------------------------------------------------------------------
# The `dist` profile (Cargo.toml): the release build without debug info, with fat LTO.
FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependency layer: build every dependency against stub sources, so that this layer is
# rebuilt only when Cargo.toml or Cargo.lock change, not on every source change. It is
# only a cache: should the manifest one day name targets the stubs lack (an explicit
# [[bench]], say), the layer caches less and the full build below still does the work.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && (cargo build --profile dist --locked \
     || echo 'warning: dependency pre-build failed; dependencies are built with the sources') \
 && rm -rf src target/dist/gitgate target/dist/deps/gitgate-* target/dist/deps/libgitgate-* \
           target/dist/.fingerprint/gitgate-*

# The real sources (and the policies/ library embedded into the binary).
COPY . .
# COPY keeps the files' own modification times, which may be older than the stub build:
# touch them so that cargo rebuilds the gitgate crate.
RUN find src -name '*.rs' -exec touch {} + \
 && cargo build --profile dist --locked \
 && install -D -m 0755 target/dist/gitgate /out/gitgate \
 && install -d -m 0755 /out/var/lib/gitgate

# ---- runtime with ssh (for ssh:// repositories): docker build --target ssh ------------------
# gix fetches over SSH by running the `ssh` program, which distroless does not have. HTTPS
# repositories need nothing of the kind: use the default image below.
FROM debian:bookworm-slim AS ssh
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --home-dir /home/nonroot --create-home nonroot
COPY --from=builder /out/gitgate /gitgate
COPY --from=builder --chown=65532:65532 /out/var/lib/gitgate /var/lib/gitgate
COPY --from=kustomize /app/kustomize /usr/local/bin/kustomize
COPY --from=helm /out/helm /usr/local/bin/helm
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/gitgate"]
CMD ["serve"]

# ---- runtime (the default target) ----------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="gitgate" \
      org.opencontainers.image.description="Policy and admission gate for GitOps: the same Rego policies before merge and at apply time" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/gitgate /gitgate
# The Git mirror's default home, writable by the nonroot user (the Helm chart mounts an
# emptyDir here; the root filesystem is read-only in the cluster).
COPY --from=builder --chown=65532:65532 /out/var/lib/gitgate /var/lib/gitgate
# The rendering engines (render.kustomizeBinary and render.helmBinary default to these, found
# on PATH); renders run in /tmp, an emptyDir in the chart.
COPY --from=kustomize /app/kustomize /usr/local/bin/kustomize
COPY --from=helm /out/helm /usr/local/bin/helm
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/gitgate"]
CMD ["serve"]

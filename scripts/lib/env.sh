# Shared settings for the project's scripts (sourced, not run).

# A persistent target directory outside the clone: a fresh clone builds incrementally
# (a cold build of the AWS SDK crates takes minutes on this machine).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lustre-operator/target}"
# Python tools the tests use live in a virtualenv beside it, not in the system Python.
export LUSTRE_VENV="${LUSTRE_VENV:-$HOME/.cache/lustre-operator/venv}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

ensure_rust_components() {
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
  fi
}

# ensure_python_tools REQUIREMENTS_FILE: create the virtualenv and install what the file
# lists, skipping pip when the installed set already matches.
ensure_python_tools() {
  local req="$1" stamp
  [ -x "$LUSTRE_VENV/bin/python" ] || python3 -m venv "$LUSTRE_VENV"
  stamp="$LUSTRE_VENV/.installed-$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$LUSTRE_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    touch "$stamp"
  fi
  export PATH="$LUSTRE_VENV/bin:$PATH"
}

# Everything built or downloaded for tests lives under one cache directory outside the clone.
export LUSTRE_CACHE="${LUSTRE_CACHE:-$HOME/.cache/lustre-operator}"
# Go's module and build caches for the control plane and helm builds (scripts/control-plane).
export GOMODCACHE="$LUSTRE_CACHE/go/mod"
export GOCACHE="$LUSTRE_CACHE/go/build"
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
export GOTOOLCHAIN=local

# use_project_kubectl: the project's own kubectl (the newest control plane's release, built
# from the Kubernetes Go modules by scripts/control-plane) first on PATH, whatever kubectl the
# machine has. Builds it once per machine (a few minutes), then it is current in seconds.
use_project_kubectl() {
  bash scripts/control-plane build kubectl >&2
  PATH="$(bash scripts/control-plane bin new):$PATH"
  export PATH
}

# ensure_image_tools: buildah (a Debian package; root installs it) and the release tools
# cargo-auditable, rust-audit-info and cargo-cyclonedx (pinned, once per machine, under the
# cache directory), put on PATH.
LUSTRE_TOOLS=(cargo-auditable@0.7.7 rust-audit-info@0.5.4 cargo-cyclonedx@0.5.9)
ensure_image_tools() {
  if ! command -v buildah >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends buildah >&2
    else
      echo "buildah is missing: apt-get install buildah (as root)" >&2
      return 1
    fi
  fi
  local tools="$LUSTRE_CACHE/tools" tool missing=()
  for tool in "${LUSTRE_TOOLS[@]}"; do
    [ -x "$tools/bin/${tool%@*}" ] && [ -f "$tools/.${tool}" ] || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    CARGO_TARGET_DIR="$LUSTRE_CACHE/tools-target" \
      cargo install --quiet --locked --root "$tools" "${missing[@]}" >&2
    for tool in "${missing[@]}"; do touch "$tools/.${tool}"; done
  fi
  PATH="$tools/bin:$PATH"
  export PATH
}

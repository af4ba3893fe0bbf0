#!/bin/bash
# The project's test command, for a fresh Debian 12 machine:  sudo bash tests/run.sh
# Installs what the tests need, builds the workspace, runs the unit tests, then the
# integration tests (real QEMU guests attached to vnf), one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root (sudo bash tests/run.sh): it installs packages and runs QEMU" >&2
  exit 1
fi

# Under sudo, root's PATH lacks the invoking user's rustup toolchain; use it if that
# is where cargo is.
if ! command -v cargo >/dev/null; then
  for home in "${HOME:-/root}" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)"; do
    if [ -x "$home/.cargo/bin/cargo" ]; then
      export PATH="$home/.cargo/bin:$PATH" CARGO_HOME="$home/.cargo" RUSTUP_HOME="$home/.rustup"
      break
    fi
  done
fi
command -v cargo >/dev/null || { echo "tests/run.sh: cargo not found; install Rust (rustup) first" >&2; exit 1; }

bash tests/install-deps.sh

# No hugepages are set up: the harness runs testpmd with --no-huge, and vnf maps the
# guests' memfd-backed memory, which needs none.

cargo build --release --workspace
cargo test --release --workspace --exclude vnf-tests
cargo test --release -p vnf-tests -- --test-threads=1

#!/usr/bin/env bash
# Install what gatewatch needs on a fresh Debian/Ubuntu machine. Idempotent:
# packages already present are not touched, and nothing is fetched then.
set -euo pipefail
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# libpcap-dev: live capture (gatewatch run); build-essential/pkg-config: C parts
# of dependencies (bundled SQLite, libpcap bindings).
need=()
for p in build-essential pkg-config libpcap-dev ca-certificates curl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# Rust 1.85 or newer (edition 2024). Debian's own cargo is too old; use rustup.
if ! command -v cargo >/dev/null 2>&1; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  echo "Rust installed: run 'source \$HOME/.cargo/env' (or open a new shell) before cargo."
fi

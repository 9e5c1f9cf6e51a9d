#!/usr/bin/env bash
# Install what building gatewatch and running `cargo test` need on a fresh
# Debian/Ubuntu machine. Idempotent and quiet: what is already there is not
# touched, nothing is fetched and nothing is printed when all of it is present.
set -euo pipefail
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

need=()
# Build: a C toolchain and pkg-config for the C parts of dependencies (bundled
# SQLite, libpcap bindings); libpcap-dev for live capture (gatewatch run);
# ca-certificates and curl for rustup below.
for p in build-essential pkg-config libpcap-dev ca-certificates; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# tests/central.rs runs a real PostgreSQL server (initdb, pg_ctl) as the
# unprivileged postgres user.
dpkg -s postgresql >/dev/null 2>&1 || need+=(postgresql)
# Tests (tests/live*.rs): curl queries the metrics endpoint, `ip` (iproute2)
# makes the network namespaces, tcpreplay sends the captures, prometheus and
# promtool scrape the sensor and check deploy/prometheus.
# tests/console_browser.rs drives headless Chromium through chromedriver.
for pair in curl:curl ip:iproute2 tcpreplay:tcpreplay prometheus:prometheus promtool:prometheus chromium:chromium chromedriver:chromium-driver; do
  cmd="${pair%%:*}" pkg="${pair#*:}"
  if ! command -v "$cmd" >/dev/null 2>&1; then
    case " ${need[*]-} " in *" $pkg "*) ;; *) need+=("$pkg") ;; esac
  fi
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-debian.sh: installing ${need[*]}"
  $sudo apt-get update -qq
  # --no-install-recommends: prometheus would otherwise pull in
  # prometheus-node-exporter and its collectors.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Rust 1.85 or newer (edition 2024). Debian's own cargo is too old; use rustup.
if ! command -v cargo >/dev/null 2>&1; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  echo "Rust installed: run 'source \$HOME/.cargo/env' (or open a new shell) before cargo."
fi

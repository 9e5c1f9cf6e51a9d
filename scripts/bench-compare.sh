#!/usr/bin/env bash
# Compare two gatewatch builds on the same inputs, alternated, on one machine
# in one session (the only fair comparison on a noisy VM).
#
#   scripts/bench-compare.sh OLD_BIN NEW_BIN GATEWAY_DIR DNS_DIR [ROUNDS]
#
# GATEWAY_DIR: gen-gateway-pcap.py output with a feeds.toml (e.g. a copy of
# tests/corpus/gateway-small/feeds.toml); DNS_DIR: target/bench-data/dns-mix-2m
# (written by `cargo bench --bench pipeline`). Prints the floor and pipeline
# rows of `gatewatch bench` and the wall time of `gatewatch replay`, per round.
set -euo pipefail
old=$1 new=$2 gw=$3 dns=$4 rounds=${5:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
  for who in old new; do
    bin=$old
    [ "$who" = new ] && bin=$new
    for dir in "$gw" "$dns"; do
      echo "### round $round, $who, bench $(basename "$dir")"
      "$bin" bench --feeds "$dir/feeds.toml" --units "$dir/units.csv" \
        --workers 1 --workers 2 "$dir/traffic.pcap" 2>/dev/null | grep -E "floor|pipeline"
    done
    echo "### round $round, $who, replay $(basename "$gw")"
    /usr/bin/time -f "%e s wall, %M KiB peak" "$bin" replay --feeds "$gw/feeds.toml" \
      --units "$gw/units.csv" --alerts "$out/alerts-$who.jsonl" "$gw/traffic.pcap" 2>&1 >/dev/null | tail -1
  done
  cmp -s "$out/alerts-old.jsonl" "$out/alerts-new.jsonl" && echo "alert logs identical" || echo "alert logs differ"
done

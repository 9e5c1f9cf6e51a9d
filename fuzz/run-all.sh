#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 180) on one core, with
# overflow checks and debug assertions on (-a), from the seeds of seed.sh,
# and print one line per target: time, executions, coverage, crashes.
# Crashes land in fuzz/artifacts/<target>/; logs in fuzz/logs/. TARGETS="a b"
# runs only those; NO_BUILD=1 runs the binaries already built.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-180}
mkdir -p logs
targets=$(sed -n 's/^    ("\([a-z_]*\)", [a-z_]*),$/\1/p' ../src/testkit/fuzz/mod.rs)
[ -n "${NO_BUILD:-}" ] || cargo +nightly fuzz build -a -O >/dev/null 2>&1 || {
    echo "build failed"
    exit 1
}
# The built binaries are run directly: `cargo fuzz run` would rebuild first,
# so a run could not go on while the source changes.
bin=target/x86_64-unknown-linux-gnu/release
for t in ${TARGETS:-$targets}; do
    mkdir -p "corpus/$t" "artifacts/$t"
    # Small inputs run fastest and find most; captures and frame sequences
    # need room for several packets.
    case $t in
    capture* | engine_sequence) len=65536 ;;
    feed_stix | feed_misp | feed_annex) len=16384 ;;
    # A snapshot file holds the 2 MiB IPv4 /24 map however few its entries.
    snapshot_read) len=2200000 ;;
    *) len=8192 ;;
    esac
    "$bin/$t" -artifact_prefix="artifacts/$t/" "corpus/$t" \
        -max_total_time="$secs" -max_len="$len" -rss_limit_mb=4096 -timeout=10 \
        -print_final_stats=1 >"logs/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1)
    crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
    echo "$t: ${secs}s, ${execs:-?} executions, ${cov:-cov: ?}, exit $rc, $crashes artifact(s)"
done

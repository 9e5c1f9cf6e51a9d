#!/usr/bin/env bash
# Minimise each target's corpus (libFuzzer -merge=1: the fewest inputs that
# keep all coverage) into tests/corpus/fuzz/<target>/, which
# tests/fuzz_corpus.rs replays on stable. Inputs over 4 KiB are left out
# to keep the repository small, and only edge coverage counts (-use_counters=0);
# the crash reproducers found are kept whole.
set -euo pipefail
cd "$(dirname "$0")"
bin=target/x86_64-unknown-linux-gnu/release
out=../tests/corpus/fuzz
targets=$(sed -n 's/^    ("\([a-z_]*\)", [a-z_]*),$/\1/p' ../src/testkit/fuzz/mod.rs)
for t in ${TARGETS:-$targets}; do
    small=$(mktemp -d)
    find "corpus/$t" -type f -size -4k -exec cp {} "$small/" \;
    keep=$(mktemp -d)
    find "$out/$t" -name 'crash-*' -exec cp {} "$keep/" \; 2>/dev/null || true
    rm -rf "$out/$t"
    mkdir -p "$out/$t"
    "$bin/$t" -merge=1 -use_counters=0 -max_len=4096 "$out/$t" "$small" >/dev/null 2>&1
    cp "$keep"/* "$out/$t/" 2>/dev/null || true
    rm -rf "$small" "$keep"
    echo "$t: $(find "$out/$t" -type f | wc -l) inputs, $(du -sk "$out/$t" | cut -f1) KiB"
done

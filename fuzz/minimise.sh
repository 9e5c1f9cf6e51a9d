#!/usr/bin/env bash
# Minimise each target's corpus (libFuzzer -merge=1: the fewest inputs that
# keep all coverage) into tests/corpus/fuzz/<target>/, which
# tests/fuzz_corpus.rs replays on stable. Inputs over 16 KiB are left out
# to keep the repository small; the crash reproducers found are kept whole.
set -euo pipefail
cd "$(dirname "$0")"
bin=target/x86_64-unknown-linux-gnu/release
out=../tests/corpus/fuzz
targets=$(sed -n 's/^    ("\([a-z_]*\)", [a-z_]*),$/\1/p' ../src/testkit/fuzz/mod.rs)
for t in ${TARGETS:-$targets}; do
    small=$(mktemp -d)
    find "corpus/$t" -type f -size -16k -exec cp {} "$small/" \;
    rm -rf "$out/$t"
    mkdir -p "$out/$t"
    "$bin/$t" -merge=1 -max_len=16384 "$out/$t" "$small" >/dev/null 2>&1
    rm -rf "$small"
    echo "$t: $(find "$out/$t" -type f | wc -l) inputs, $(du -sk "$out/$t" | cut -f1) KiB"
done

#!/usr/bin/env bash
# Fill fuzz/corpus/<target>/ with seeds: the shipped minimised corpus
# (tests/corpus/fuzz), real feeds, configs and captures from tests/corpus and
# the shared data set ($GATEWATCH_SHARED_DATA, default ../shared/data), and
# the seeds the fixture kit builds (protocol messages, sealed QUIC inputs,
# hand-made pcapng files, frame sequences made from the corpus captures).
# Files over 64 KiB are cut to their first 64 KiB: libFuzzer's -max_len.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus
shared=${GATEWATCH_SHARED_DATA:-../shared/data}
mkdir -p "$out"
cp -r tests/corpus/fuzz/. "$out/" 2>/dev/null || true
rm -f "$out/README.md"

seed() {
    local t=$1
    shift
    mkdir -p "$out/$t"
    for f in "$@"; do
        [ -f "$f" ] || continue
        head -c 65536 "$f" >"$out/$t/$(echo "$f" | tr '/' '_')"
    done
}

seed feed_plain samples/demo-feeds/*.txt feeds/*.txt "$shared"/feeds/ipsum/ipsum.txt \
    $(ls "$shared"/feeds/maltrail/static/malware/*.txt 2>/dev/null | head -20)
seed feed_hosts samples/demo-feeds/domains.txt
seed feed_csv feeds/et-iprep-sample.csv feeds/units.csv
seed feed_zeek tests/corpus/feeds/zeek-intel/* "$shared"/feeds/zeek-intel/*.intel
seed feed_stix tests/corpus/feeds/stix2/* "$shared"/feeds/stix2/unit42-playbooks/*.json
seed feed_misp tests/corpus/feeds/misp/* "$shared"/feeds/misp/eset/*.json
seed feed_maltrail tests/corpus/feeds/fixtures/trails.csv
seed feed_annex tests/corpus/feeds/fixtures/annex-congvan.csv
mkdir -p "$out/feed_iprep"
cat tests/corpus/suricata-verify/scirius-iprep.list <(printf '\0') \
    tests/corpus/suricata-verify/scirius-categories.txt >"$out/feed_iprep/scirius"
seed config_sensor deploy/gatewatch.toml
seed config_feeds feeds/feeds.toml samples/demo-feeds.toml tests/corpus/gateway-small/feeds.toml
seed config_units feeds/units.csv tests/corpus/gateway-small/units.csv samples/gateway-synthetic.units.csv
small=$(find tests/corpus "$shared"/pcaps "$shared"/pcaps-tunnels -type f \
    \( -name '*.pcap' -o -name '*.pcapng' \) -size -64k 2>/dev/null | sort)
# shellcheck disable=SC2086
seed capture $small
# shellcheck disable=SC2086
seed capture_gzip $(echo "$small" | head -20)

GATEWATCH_WRITE_SEEDS="$PWD/$out" cargo test --locked --test fuzz_corpus built_seeds -q
for d in "$out"/*/; do
    echo "$(basename "$d"): $(find "$d" -type f | wc -l) seeds"
done

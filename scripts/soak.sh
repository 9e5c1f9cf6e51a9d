#!/usr/bin/env bash
# Soak test: `gatewatch run` capturing on a veth in a throw-away network
# namespace while tcpreplay loops the gateway mix into it, for SECONDS
# (default 600). Every INTERVAL seconds (default 30) it prints the sensor's
# resident memory, open files, threads, packets processed and drops; at the
# end it says whether RSS stayed flat after warm-up (the first fifth of the
# run) and whether anything was dropped.
#
# Needs root, iproute2, tcpreplay and curl (Debian: see scripts/setup-debian.sh).
#   scripts/soak.sh [SECONDS]        env: PCAP, FEEDS, UNITS, MBPS, INTERVAL
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
interval=${INTERVAL:-30}
pcap=${PCAP:-samples/gateway-synthetic.pcap}
feeds=${FEEDS:-samples/demo-feeds.toml}
units=${UNITS:-samples/gateway-synthetic.units.csv}
mbps=${MBPS:-100}
port=19577
ns=gwsoak$$
work=$(mktemp -d /tmp/gatewatch-soak.XXXXXX)

cargo build --release --locked -q
bin=$PWD/target/release/gatewatch

cleanup() {
    [ -n "${replay:-}" ] && kill "$replay" 2>/dev/null || true
    [ -n "${sensor:-}" ] && kill "$sensor" 2>/dev/null || true
    wait 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link add gw0 type veth peer name gw1
ip -n "$ns" link set lo up
ip -n "$ns" link set gw0 up
ip -n "$ns" link set gw1 up

ip netns exec "$ns" "$bin" run --interface gw1 --workers 2 \
    --feeds "$feeds" --units "$units" --alerts "$work/alerts.jsonl" \
    --metrics-listen "127.0.0.1:$port" --summary-interval 0 \
    >"$work/run.out" 2>"$work/run.err" &
sensor=$!
for _ in $(seq 60); do
    grep -q 'capturing on' "$work/run.err" 2>/dev/null && break
    kill -0 "$sensor" || { cat "$work/run.err"; exit 1; }
    sleep 0.5
done

ip netns exec "$ns" tcpreplay -q -i gw0 --mbps "$mbps" --loop 0 "$pcap" \
    >"$work/replay.out" 2>&1 &
replay=$!

metric() {
    ip netns exec "$ns" curl -s "http://127.0.0.1:$port/metrics" |
        awk -v m="$1" '$1 == m { s += $2 } END { printf "%d", s }'
}
drops() {
    ip netns exec "$ns" curl -s "http://127.0.0.1:$port/metrics" |
        awk '/^gatewatch_drops_total/ { s += $2 } END { printf "%d", s }'
}

echo "soak: $pcap at $mbps Mbit/s, looped, for $secs s; samples every $interval s"
printf '%8s %10s %6s %8s %14s %8s\n' seconds rss_mib fds threads packets drops
start=$(date +%s)
samples=()
while :; do
    now=$(($(date +%s) - start))
    kill -0 "$sensor" || { echo "gatewatch exited"; cat "$work/run.err"; exit 1; }
    rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$sensor/status")
    fds=$(find "/proc/$sensor/fd" -mindepth 1 -maxdepth 1 | wc -l)
    thr=$(awk '/^Threads/ { print $2 }' "/proc/$sensor/status")
    pk=$(metric gatewatch_packets_total)
    dr=$(drops)
    printf '%8d %10s %6d %8d %14d %8d\n' "$now" "$rss" "$fds" "$thr" "$pk" "$dr"
    samples+=("$now $rss $fds $dr")
    [ "$now" -ge "$secs" ] && break
    sleep "$interval"
done

printf '%s\n' "${samples[@]}" | awk -v warm=$((secs / 5)) '
    $1 >= warm && !w { w = $2; wf = $3 }
    { last = $2; lf = $3; d = $4; if ($2 > max) max = $2 }
    END {
        growth = w > 0 ? (last - w) / w * 100 : 0
        printf "RSS after warm-up %.1f MiB, at the end %.1f MiB (%+.1f%%), peak %.1f MiB\n", w, last, growth, max
        printf "open files %d after warm-up, %d at the end; %d packets dropped\n", wf, lf, d
        flat = (growth < 10 && lf <= wf + 2)
        print (flat ? "verdict: flat" : "verdict: GROWING (see the samples)")
        exit (flat && d == 0 ? 0 : 1)
    }'

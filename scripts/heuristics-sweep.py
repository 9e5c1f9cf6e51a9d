"""Lower one heuristic threshold at a time and count the clean hosts reported.

Usage: python3 scripts/heuristics-sweep.py SHARED_DATA GATEWAY_DIR [UNLISTED_DIR ...]

SHARED_DATA is ../shared/data (every capture under pcaps/ and pcaps-tunnels/ is replayed
with no indicators); each GATEWAY_DIR / UNLISTED_DIR is a gen-gateway-pcap.py output folder
with a feeds.toml (hosts planted by --unlisted, per truth.csv, are not counted as clean).
Needs target/release/gatewatch. Prints the Markdown tables of docs/HEURISTICS.md.
"""
import subprocess, json, csv, os, sys, glob, tempfile
GW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "gatewatch")
shared, dirs = sys.argv[1], sys.argv[2:]
real = sorted(glob.glob(f"{shared}/pcaps/**/*.pcap*", recursive=True) + glob.glob(f"{shared}/pcaps-tunnels/**/*.pcap*", recursive=True))
real = [p for p in real if not p.endswith(".txt")]
TMP = tempfile.mkdtemp(prefix="gw-sweep-")
open(f"{TMP}/empty.toml", "w").write("")
open(f"{TMP}/units.csv", "w").write("code,name,cidrs\n")
def run(files, feeds, units, htoml):
    out = f"{TMP}/a.jsonl"
    subprocess.run([GW, "replay", "--log", "error", "--feeds", feeds, "--units", units, "--heuristics", htoml, "--alerts", out] + files, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res = []
    for l in open(out):
        a = json.loads(l)
        if a.get("event_type") == "alert" and "heuristic" in a:
            res.append((a["host_ip"], a["heuristic"], a["indicator"]))
    return res
def toml(sec, kv):
    body = "\n".join(f"{k} = {v}" for k, v in kv.items())
    p = f"{TMP}/h.toml"
    open(p, "w").write(f"[heuristics.{sec}]\n{body}\n")
    return p
sets = [("real captures (%d files), no feeds" % len(real), "real", None)] + [(d, d, None) for d in dirs]
def clean_reports(name, kind, sec, kv):
    h = toml(sec, kv)
    if kind == "real":
        tot = 0
        for f in real:
            tot += len(run([f], f"{TMP}/empty.toml", f"{TMP}/units.csv", h))
        return tot
    d = kind
    planted = {r["host_ip"] for r in csv.DictReader(open(f"{d}/truth.csv")) if r["how"] in ("scan", "dga", "sinkhole_answer")}
    rep = run([f"{d}/traffic.pcap"], f"{d}/feeds.toml", f"{d}/units.csv", h)
    return len({(a, b) for a, b, c in rep if a not in planted})
grid = [
 ("scan", "min_addresses = min_ports", [{"min_addresses": n, "min_ports": n} for n in (4, 8, 16, 24, 32)]),
 ("dga", "min_domains", [{"min_domains": n} for n in (2, 3, 5, 10)]),
 ("tunnel", "min_names (min_bytes 0, min_span_s 0)", [{"min_names": n, "min_bytes": 0, "min_span_s": 0} for n in (2, 5, 10, 20, 40)]),
 ("beacon", "min_connections / max_jitter", [{"min_connections": c, "max_jitter": j} for c, j in ((4, 0.3), (6, 0.2), (10, 0.1))]),
]
for sec, label, kvs in grid:
    print(f"\n### {sec}: clean hosts reported, by {label}\n")
    print("| data | " + " | ".join(", ".join(f"{k}={v}" for k, v in kv.items() if k in ('min_addresses','min_domains','min_names','min_connections','max_jitter')) for kv in kvs) + " |")
    print("|---|" + "---|" * len(kvs))
    for name, kind, _ in sets:
        row = [clean_reports(name, kind, sec, kv) for kv in kvs]
        print(f"| {name} | " + " | ".join(map(str, row)) + " |")
    sys.stdout.flush()

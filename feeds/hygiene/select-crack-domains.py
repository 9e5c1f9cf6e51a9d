#!/usr/bin/env python3
"""Select cracked-software download domains from The Block List Project piracy list.

Usage:
    python3 select-crack-domains.py UPSTREAM_FILE [--commit SHA] > crack-domains.txt

UPSTREAM_FILE is blocklistproject/Lists `alt-version/piracy-nl.txt` (one domain per
line) or `piracy.txt` (hosts format, "0.0.0.0 domain"); both are accepted.

Only domains present in UPSTREAM_FILE can ever be written: the keyword rule and the
curated list below only *select* from the input, they never add names.  A curated
name that is missing from the input is reported on stderr and skipped.

Selection (documented in README.md):
  1. normalise: lowercase, strip a leading "www.", drop IPs / wildcards / junk;
  2. keep a name if it matches SOFTWARE_PIRACY_RE (crack, keygen, warez, serial,
     activator, patch, license key, nulled, ...) and is not in EXCLUDE;
  3. also keep the names in CURATED (well-known cracked-software / warez-software
     sites whose names carry no keyword), if they are in the input;
  4. drop a name when one of its parent domains is also kept (a domain matches
     its subdomains), then sort and deduplicate.
Torrent indexes, movie/TV/music streaming, e-book and generic file hosts are not
selected: they are piracy, but not evidence of cracked *software*.
"""
import argparse
import re
import sys

SOURCE_REPO = "blocklistproject/Lists"
SOURCE_PATH = "alt-version/piracy-nl.txt"
SOURCE_COMMIT = "0454c79caad45534f97d25734a61343ed899c90f"

# Name fragments that indicate cracked software, key generators, serial/licence
# keys, activators or warez (pirated software) distribution.
SOFTWARE_PIRACY_RE = re.compile(
    r"crack|crak|cracx|keygen|warez|varez|serial|activat|nulled|patch|license"
    r"|key|nod32|skidrow|fullversion|full-version|fullsoft|fullprogram|softwarez"
)

# Keyword matches that are dropped, with the reason.
EXCLUDE = {
    "serial4ik.ru": "Russian 'serial' means TV series: video streaming, not software",
    "serialfan.com": "ambiguous: TV-series naming, not clearly software serials",
    "cdkeysgames.com": "game-key reseller, not a crack/keygen site",
    "craftkeys.com": "ambiguous: key reseller naming",
    "mediakey.dk": "ambiguous: no software-piracy meaning in the name",
    "wareztuga.ws": "Portuguese movie/TV-series site despite the 'warez' name",
}

# Upstream-listed sites known for cracked software / warez software whose names
# carry no keyword.  Selected only if present in the upstream file.
CURATED = {
    "getintopc.com": "cracked/pre-activated software downloads",
    "karanpc.com": "cracked software downloads",
    "nsanedown.com": "warez software direct downloads",
    "free4pc.org": "cracked software downloads",
    "piratepc.me": "cracked software downloads",
    "abbaspc.net": "cracked software downloads",
    "ranapc.net": "cracked software downloads",
    "4allprograms.net": "full-version software with cracks",
    "free.appnee.com": "AppNee: cracked/unlocked software",
    "astalavista.ms": "serials/cracks search site",
    "at4re.com": "software cracking (reverse-engineering) team",
    "s0ft4pc.com": "warez software downloads",
    "softasm.com": "cracked software downloads",
    "thehotfix.net": "cracked software downloads",
    "rexdl.com": "cracked/modded Android apps (APK)",
    "revdl.com": "cracked/modded Android apps (APK)",
    "onhax.co": "cracked software and apps",
    "onhax.me": "cracked software and apps",
    "onhaxnet.com": "cracked software and apps",
    "reloaded-games.org": "cracked PC games (RELOADED releases)",
}

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$")
IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def read_upstream(path):
    names = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip().lower()
            if not line:
                continue
            parts = line.split()
            # hosts format: "0.0.0.0 example.com"
            name = parts[-1] if len(parts) > 1 and IPV4_RE.match(parts[0]) else parts[0]
            name = name.rstrip(".")
            if name.startswith("www."):
                name = name[4:]
            if IPV4_RE.match(name) or "*" in name or not DOMAIN_RE.match(name):
                continue
            names.add(name)
    return names


def select(names):
    kept = set()
    for name in names:
        if name in EXCLUDE:
            continue
        if SOFTWARE_PIRACY_RE.search(name) or name in CURATED:
            kept.add(name)
    for name in sorted(CURATED):
        if name not in names:
            print(f"note: curated {name} not in upstream, skipped", file=sys.stderr)

    def has_kept_parent(name):
        labels = name.split(".")
        return any(".".join(labels[i:]) in kept for i in range(1, len(labels) - 1))

    return sorted(n for n in kept if not has_kept_parent(n))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("upstream", help="piracy-nl.txt or piracy.txt from blocklistproject/Lists")
    ap.add_argument("--commit", default=SOURCE_COMMIT, help="upstream commit id for the header")
    ap.add_argument("--path", default=SOURCE_PATH, help="upstream path for the header")
    args = ap.parse_args()

    names = read_upstream(args.upstream)
    out = select(names)
    w = sys.stdout.write
    w("# gatewatch hygiene feed: cracked-software download domains\n")
    w("# One domain per line; a domain also matches all of its subdomains.\n")
    w(f"# Source: https://github.com/{SOURCE_REPO} file {args.path}\n")
    w(f"# Retrieved at commit {args.commit}\n")
    w("# Licence: The Unlicense (public domain), as stated in the upstream file header\n")
    w("#   (\"License: https://unlicense.org\"); see LICENSE-blocklistproject.txt.\n")
    w("# Selection: feeds/hygiene/select-crack-domains.py (keyword rule for crack/keygen/\n")
    w("#   warez/serial/activator/patch/licence-key/nulled names, minus a small exclusion\n")
    w("#   list, plus a curated list of upstream names of known cracked-software sites;\n")
    w("#   'www.' stripped; subdomains of kept parents folded). Torrent, movie/TV/music\n")
    w("#   streaming, e-book and generic file-host entries are deliberately not selected.\n")
    w(f"# {len(out)} domains. See feeds/hygiene/README.md.\n")
    for name in out:
        w(name + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A DNS-heavy gateway capture for the correlation benchmarks (issue 13):
internal hosts in 10.20.0.0/16 resolve names at an external resolver and
then connect to what they got. About 80% of the packets are DNS queries and
answers; the rest are TCP handshakes to the answered addresses, so a host
that resolved a listed name is seen connecting to an address on no list
(the case DNS correlation exists for).

    scripts/gen-dns-mix.py OUT.pcap [--packets N] [--listed FRACTION]
                           [--hosts N] [--heavy FRACTION] [--seed S]

--listed is the share of queries naming a domain on
samples/demo-feeds/domains.txt (0, 0.01, 0.1 in the README table; 1 is an
outbreak). --heavy gives one host that share of all packets (the balance
question of routing by internal host). Standard library only; fixed seed, so
a command line gives the same bytes on every machine.
"""
import argparse
import os
import random
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ETH = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00"


def checksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ipv4(src, dst, proto, body):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0, src, dst)
    return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + body


def udp(src, dst, sp, dp, payload):
    return ETH + ipv4(src, dst, 17, struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload)


def tcp(src, dst, sp, dp, flags, seq, ack):
    hdr = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0)
    return ETH + ipv4(src, dst, 6, hdr)


def qname(n):
    return b"".join(bytes([len(x)]) + x.encode() for x in n.split(".")) + b"\0"


def answer_addr(name):
    # A stable public-looking address per name (198.18.0.0/15 is benchmark
    # space, on no feed).
    h = sum(name.encode()) * 2654435761 + len(name) * 97
    return bytes([198, 18 + (h >> 16) % 2, (h >> 8) % 256, 1 + h % 254])


class Writer:
    def __init__(self, f, t):
        self.f, self.t, self.n = f, t, 0

    def put(self, fr):
        sec = int(self.t)
        self.f.write(struct.pack("<IIII", sec, int((self.t - sec) * 1e6), len(fr), len(fr)))
        self.f.write(fr)
        self.t += 0.00002
        self.n += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--listed", type=float, default=0.01)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--heavy", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with open(os.path.join(ROOT, "samples/demo-feeds/domains.txt")) as f:
        listed = [l.strip() for l in f if l.strip() and not l.startswith("#")][:500]
    benign = ["cdn%d.static%d.example-site%d.vn" % (i % 7, i % 13, i) for i in range(5000)]
    resolver = bytes([203, 113, 0, 53])
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        w = Writer(f, 1664582400.0)
        i = 0
        while w.n < a.packets:
            h = 0 if rng.random() < a.heavy else rng.randrange(a.hosts)
            host = bytes([10, 20, h // 250, 1 + h % 250])
            name = rng.choice(listed) if rng.random() < a.listed else rng.choice(benign)
            txid, sp = i & 0xFFFF, 1024 + (i % 60000)
            question = qname(name) + struct.pack("!HH", 1, 1)
            q = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + question
            addr = answer_addr(name)
            ans = (struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + question + b"\xc0\x0c"
                   + struct.pack("!HHIH", 1, 1, 300, 4) + addr)
            w.put(udp(host, resolver, sp, 53, q))
            w.put(udp(resolver, host, 53, sp, ans))
            # One connection per two lookups keeps DNS at 80% of packets.
            if i % 2 == 0:
                cp = 20000 + (i % 40000)
                w.put(tcp(host, addr, cp, 443, 0x02, i, 0))
                w.put(tcp(addr, host, 443, cp, 0x12, 7 * i, i + 1))
            i += 1


if __name__ == "__main__":
    main()

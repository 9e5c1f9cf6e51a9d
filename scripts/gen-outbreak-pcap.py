#!/usr/bin/env python3
"""An outbreak capture for the hit-heavy benchmark: DNS queries for names on
samples/demo-feeds/domains.txt from 2,000 hosts in 10.20.0.0/16, each with
its answer, so every query is a hit. Standard library only; fixed seed.

    scripts/gen-outbreak-pcap.py OUT.pcap [QUERIES]   (default 150000)
"""
import os
import random
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def checksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def qname(n):
    return b"".join(bytes([len(x)]) + x.encode() for x in n.split(".")) + b"\0"


def frame(src, dst, sp, dp, payload):
    udp = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00" + ip + udp


def main():
    out, queries = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 150000
    rng = random.Random(5)
    with open(os.path.join(ROOT, "samples/demo-feeds/domains.txt")) as f:
        names = [l.strip() for l in f if l.strip() and not l.startswith("#")][:50]
    resolver = bytes([8, 8, 8, 8])
    t = 1664582400.0
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(queries):
            h = rng.randrange(2000)
            host = bytes([10, 20, h // 240, 10 + h % 240])
            name, txid, sp = rng.choice(names), i & 0xFFFF, 1024 + (i % 60000)
            question = qname(name) + struct.pack("!HH", 1, 1)
            q = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + question
            a = (struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + question + b"\xc0\x0c"
                 + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([203, 0, 113, h % 250]))
            for payload, src, dst, a_port, b_port in ((q, host, resolver, sp, 53), (a, resolver, host, 53, sp)):
                fr = frame(src, dst, a_port, b_port, payload)
                sec = int(t)
                f.write(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(fr), len(fr)))
                f.write(fr)
                t += 0.0005


if __name__ == "__main__":
    main()

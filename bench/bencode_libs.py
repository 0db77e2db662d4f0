"""Bencode: our strict codec vs ``fastbencode`` and ``bencode.py``, in one run.

``python -m bench.bencode_libs [--seconds 0.5]``

Inputs: real-sized torrent files (a 4 GiB v1 torrent with 300 files, a 1 GiB
hybrid torrent with piece layers) and DHT-sized KRPC messages (ping,
get_peers reply with nodes and values, announce_peer).  Prints decode and
encode throughput of each library relative to ours, then which malformed or
non-canonical inputs each one accepts (strictness matters more than speed
for hostile input).  The libraries are optional: install them into the
virtual environment only for this benchmark (``uv sync --extra bench``).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from typing import Any

from servent.codec.bencode import decode as our_decode
from servent.codec.bencode import encode as our_encode

Codec = tuple[Callable[[bytes], Any], Callable[[Any], bytes]]


def codecs() -> dict[str, Codec]:
    found: dict[str, Codec] = {"servent": (our_decode, our_encode)}
    try:
        import fastbencode

        found["fastbencode"] = (fastbencode.bdecode, fastbencode.bencode)
    except ImportError:
        print("fastbencode not installed (uv sync --extra bench)")
    try:
        import bencodepy

        found["bencode.py"] = (bencodepy.decode, bencodepy.encode)
    except ImportError:
        print("bencode.py not installed (uv sync --extra bench)")
    return found


def sha(i: int, size: int = 20) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()[:size]


def inputs() -> dict[str, bytes]:
    v1_info = {
        b"name": b"big collection",
        b"piece length": 1 << 20,
        b"pieces": b"".join(sha(i) for i in range(4096)),
        b"files": [
            {b"length": 14_000_000 + i, b"path": [b"folder %d" % (i % 7), b"file %d.mkv" % i]}
            for i in range(300)
        ],
    }
    v1 = {b"announce": b"http://tracker.example/announce", b"creation date": 1700000000,
          b"info": v1_info}
    tree: dict[bytes, Any] = {}
    layers: dict[bytes, bytes] = {}
    for i in range(40):
        root = sha(i, 32)
        tree[b"part %02d.bin" % i] = {b"": {b"length": 25 << 20, b"pieces root": root}}
        layers[root] = b"".join(sha(i * 1000 + j, 32) for j in range(100))
    hybrid_info = {b"name": b"hybrid", b"piece length": 256 << 10, b"meta version": 2,
                   b"file tree": tree, b"pieces": b"".join(sha(i) for i in range(4000)),
                   b"files": [{b"length": 25 << 20, b"path": [b"part %02d.bin" % i]}
                              for i in range(40)]}
    hybrid = {b"info": hybrid_info, b"piece layers": layers}
    ping = {b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": {b"id": sha(1)}}
    nodes = {b"t": b"ab", b"y": b"r", b"r": {b"id": sha(2), b"token": b"12345678",
                                             b"nodes": b"".join(sha(i, 26) for i in range(8))}}
    values = {b"t": b"ac", b"y": b"r", b"r": {b"id": sha(3), b"token": b"12345678",
                                              b"values": [sha(i, 6) for i in range(50)]}}
    announce = {b"t": b"ad", b"y": b"q", b"q": b"announce_peer",
                b"a": {b"id": sha(4), b"info_hash": sha(5), b"port": 6881, b"token": b"abcd",
                       b"implied_port": 1}}
    return {
        "torrent v1 4 GiB/300 files": our_encode(v1),
        "torrent hybrid 1 GiB layers": our_encode(hybrid),
        "dht ping query": our_encode(ping),
        "dht get_peers nodes": our_encode(nodes),
        "dht get_peers values": our_encode(values),
        "dht announce_peer": our_encode(announce),
    }


MALFORMED = {
    "leading zero int i03e": b"i03e",
    "negative zero i-0e": b"i-0e",
    "leading zero length 03:abc": b"03:abc",
    "unsorted keys": b"d1:bi1e1:ai2ee",
    "duplicate keys": b"d1:ai1e1:ai2ee",
    "trailing bytes": b"i1eXYZ",
    "truncated string": b"5:ab",
    "deep nesting (100k lists)": b"l" * 100_000 + b"e" * 100_000,
}


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second, measured for about ``seconds``."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    batch = 1
    while True:
        for _ in range(batch):
            fn()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)
        batch = min(batch * 2, 10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = parser.parse_args()
    libs = codecs()
    names = list(libs)
    print(f"{'input':32} {'bytes':>8}  " + "  ".join(f"{n + ' dec/enc':>24}" for n in names))
    for label, data in inputs().items():
        cells = []
        base_dec = base_enc = 0.0
        for name in names:
            decode, encode = libs[name]
            value = decode(data)
            dec = rate(lambda d=decode, b=data: d(b), args.seconds)  # type: ignore[misc]
            enc = rate(lambda e=encode, v=value: e(v), args.seconds)  # type: ignore[misc]
            if name == "servent":
                base_dec, base_enc = dec, enc
                cells.append(f"{dec:>9.0f}/s {enc:>9.0f}/s")
            else:
                cells.append(f"{dec / base_dec:>10.2f}x {enc / base_enc:>10.2f}x")
        print(f"{label:32} {len(data):>8}  " + "  ".join(f"{c:>24}" for c in cells))
    print("(servent: calls per second; others: speed relative to servent, >1 is faster)")
    print()
    print(f"{'malformed input':32}  " + "  ".join(f"{n:>12}" for n in names))
    for label, data in MALFORMED.items():
        verdicts = []
        for name in names:
            decode, _ = libs[name]
            try:
                decode(data)
                verdicts.append("ACCEPTS")
            except RecursionError:
                verdicts.append("RecursionErr")
            except Exception as exc:  # libraries raise assorted types; we only classify
                verdicts.append("refuses" if name != "servent" else type(exc).__name__[:12])
        print(f"{label:32}  " + "  ".join(f"{v:>12}" for v in verdicts))


if __name__ == "__main__":
    main()

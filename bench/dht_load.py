"""Load benchmark: how many DHT queries per second a real node answers on loopback.

    python -m bench.dht_load [--seconds 10] [--window 256]

A child process runs the node under test on 127.0.0.1 (servent's
``DhtDriver``, then libtorrent's DHT for comparison); this process is the load
generator, blasting ping / find_node / get_peers queries from one socket with
a bounded number in flight. The child reports the CPU seconds it used and its
memory before and after, so the figure is *queries answered per CPU-second*
(per core) as well as per wall second. servent runs with its per-IP rate limit
off (the generator is one IP); libtorrent with its DHT rate limits raised.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import socket
import subprocess
import sys
import time
from typing import Any

# -- the node under test (child process) -------------------------------------------


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve_servent() -> None:
    import asyncio

    from servent.net.dht_driver import DhtDriver
    from servent.proto.dht import DhtConfig

    async def main() -> None:
        config = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0)
        async with DhtDriver(host="127.0.0.1", config=config) as driver:
            loop = asyncio.get_running_loop()
            print(driver.address[1], flush=True)
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
            )
            await reader.readline()  # "start"
            cpu0, rss0 = _cpu(), _rss_kib()
            await reader.readline()  # "stop"
            report = {
                "cpu": _cpu() - cpu0, "rss_before": rss0, "rss_after": _rss_kib(),
                "received": driver.datagrams_received, "sent": driver.datagrams_sent,
                "stats": driver.node.statistics(),
            }
            print(json.dumps(report), flush=True)

    asyncio.run(main())


def _serve_libtorrent() -> None:
    import libtorrent as lt

    session = lt.session({
        "listen_interfaces": "127.0.0.1:0", "listen_system_port_fallback": False,
        "enable_dht": True, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_block_ratelimit": 10_000_000, "dht_upload_rate_limit": 1_000_000_000,
        "alert_mask": 0,
    })
    print(session.listen_port(), flush=True)
    sys.stdin.readline()
    cpu0, rss0 = _cpu(), _rss_kib()
    sys.stdin.readline()
    print(json.dumps({"cpu": _cpu() - cpu0, "rss_before": rss0, "rss_after": _rss_kib()}),
          flush=True)


# -- the load generator (this process) ----------------------------------------------------


def _queries(count: int, rng: random.Random) -> list[bytes]:
    from servent.codec.bencode import encode

    out = []
    for index in range(count):
        tid = index.to_bytes(2, "big")
        own = rng.randbytes(20)
        kind = index % 3
        if kind == 0:
            message: dict[bytes, Any] = {b"q": b"ping", b"a": {b"id": own}}
        elif kind == 1:
            message = {b"q": b"find_node", b"a": {b"id": own, b"target": rng.randbytes(20)}}
        else:
            message = {b"q": b"get_peers", b"a": {b"id": own, b"info_hash": rng.randbytes(20)}}
        message.update({b"t": tid, b"y": b"q"})
        out.append(encode(message))
    return out


def _blast(port: int, seconds: float, window: int) -> tuple[int, int, float]:
    """Send queries for ``seconds`` with at most ``window`` unanswered; returns counts."""
    queries = _queries(4096, random.Random(1))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    sent = answered = in_flight = 0
    index = 0
    started = time.perf_counter()
    end = started + seconds
    last_answer = started
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        while in_flight < window:
            try:
                sock.send(queries[index])
            except BlockingIOError:
                break
            index = (index + 1) & 4095
            sent += 1
            in_flight += 1
        readable, _, _ = select.select([sock], [], [], 0.01)
        if readable:
            while True:
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    break
                answered += 1
                in_flight -= 1
            last_answer = time.perf_counter()
        elif time.perf_counter() - last_answer > 0.05:
            in_flight = 0  # those were dropped; keep the pressure on
    elapsed = time.perf_counter() - started
    sock.close()
    return sent, answered, elapsed


def _run(kind: str, seconds: float, window: int) -> dict[str, Any]:
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.dht_load", "--serve", kind],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        port = int(child.stdout.readline())
        _blast(port, 1.0, window)  # warm-up
        child.stdin.write("start\n")
        child.stdin.flush()
        sent, answered, elapsed = _blast(port, seconds, window)
        child.stdin.write("stop\n")
        child.stdin.flush()
        report: dict[str, Any] = json.loads(child.stdout.readline())
    finally:
        child.kill()
        child.wait(timeout=10)
    report.update(kind=kind, sent=sent, answered=answered, elapsed=elapsed)
    return report


def _print(report: dict[str, Any]) -> None:
    per_cpu = report["answered"] / report["cpu"] if report["cpu"] else 0.0
    print(f"  {report['kind']:<10} answered {report['answered']:>8} of {report['sent']:>8} "
          f"in {report['elapsed']:.1f}s = {report['answered'] / report['elapsed']:>8.0f}/s wall, "
          f"{per_cpu:>8.0f}/s per CPU-second (node used {report['cpu']:.1f} CPU-s); "
          f"RSS {report['rss_before'] / 1024:.0f} -> {report['rss_after'] / 1024:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dht_load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=256, help="queries in flight")
    parser.add_argument("--serve", choices=["servent", "libtorrent"], help=argparse.SUPPRESS)
    parser.add_argument("--only-servent", action="store_true")
    args = parser.parse_args(argv)
    if args.serve == "servent":
        _serve_servent()
        return 0
    if args.serve == "libtorrent":
        _serve_libtorrent()
        return 0
    print(f"DHT load on 127.0.0.1: {args.seconds:g}s, {args.window} queries in flight, "
          "mix of ping / find_node / get_peers from one generator process")
    servent = _run("servent", args.seconds, args.window)
    _print(servent)
    if not args.only_servent:
        reference = _run("libtorrent", args.seconds, args.window)
        _print(reference)
        ratio = servent["answered"] / reference["answered"] if reference["answered"] else 0.0
        print(f"  ratio servent/libtorrent (answered per wall second): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""LEDBAT friendliness: does uTP yield to a TCP flow on the same bottleneck?

Run (as root): ``.venv/bin/python -m bench.ledbat [--rate-mbit 16] [--seconds 10]
[--head-start 3] [--tcp cubic|reno|bbr]``.

Two network namespaces joined by a veth pair; the sender's side has a
``tbf`` bottleneck (rate ``--rate-mbit``, a 300 ms queue). Three phases: a
TCP flow alone, a uTP flow (servent) alone, then both: uTP runs alone for
``--head-start`` seconds (a background download), then TCP joins for
``--seconds``. The TCP flow uses ``--tcp`` congestion control (default
cubic, the loss-based kind LEDBAT was designed to yield to; bbr keeps the
queue short, so LEDBAT sees little delay to react to). Printed: each flow's
rate and the share of its solo rate TCP keeps next to uTP. Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from servent.net.utp_socket import UtpSocket

A_IP, B_IP = "10.78.1.1", "10.78.2.2"
CHUNK = 1 << 16
#: TCP congestion control of the competing flow (``--tcp``; the child reads it here).
TCP_CC = os.environ.get("LEDBAT_TCP_CC", "cubic")


class _Sink(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[tuple[int, float]]) -> None:
        self.size = 0
        self.first: float | None = None
        self.done = done

    def data_received(self, data: bytes) -> None:
        if self.first is None:
            self.first = time.monotonic()
        self.size += len(data)

    def eof_received(self) -> bool:
        if not self.done.done():
            self.done.set_result((self.size, time.monotonic() - (self.first or time.monotonic())))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof_received()


class _Source(asyncio.Protocol):
    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


async def sink(kind: str, host: str) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[int, float]] = loop.create_future()
    if kind == "utp":
        utp = UtpSocket(accept=lambda: _Sink(done))
        utp.bind(host)
        port = utp.port
    else:
        server = await loop.create_server(lambda: _Sink(done), host, 0)
        port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    size, seconds = await done
    print(f"RESULT {size} {seconds:.3f}", flush=True)
    await asyncio.sleep(1.0)  # final ACKs


async def source(kind: str, host: str, port: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    if kind == "utp":
        utp = UtpSocket()
        utp.bind("0.0.0.0")
        transport, protocol = await utp.create_connection(_Source, host, port)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, TCP_CC.encode())
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        transport, protocol = await loop.create_connection(_Source, sock=sock)  # type: ignore[assignment]
    assert isinstance(protocol, _Source)
    payload = os.urandom(CHUNK)
    end = time.monotonic() + seconds
    report = time.monotonic() + 1
    while time.monotonic() < end:
        if os.environ.get("LEDBAT_TRACE") and kind == "utp" and time.monotonic() > report:
            report += 1
            c = transport.conn  # type: ignore[attr-defined]
            print(
                f"cwnd={c.ledbat.window:.0f} delay={c.ledbat.last_delay_us} "
                f"base={c.ledbat.delays.base} fl={c.bytes_in_flight} rtt={c.rtt.srtt}",
                file=sys.stderr,
                flush=True,
            )
        await protocol.writable.wait()
        transport.write(payload)
        await asyncio.sleep(0)
    transport.close()
    await asyncio.sleep(2.0)


def _child(argv: list[str]) -> None:
    job: Any
    if argv[0] == "sink":
        job = sink(argv[1], argv[2])
    else:
        job = source(argv[1], argv[2], int(argv[3]), float(argv[4]))
    asyncio.run(asyncio.wait_for(job, 180))


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


def _in(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-m", "bench.ledbat", "_child", *args]


def _start_sink(ns: str, kind: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(_in(ns, "sink", kind, B_IP), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    if not first or first[0] != "PORT":
        proc.kill()
        raise RuntimeError(f"{kind} sink did not start")
    return proc, first[1]


def _phase(
    a: str, b: str, kinds: list[str], seconds: float, head_start: float = 0.0
) -> dict[str, float]:
    """One flow per kind, started in order, each after ``head_start`` seconds more; return
    each one's rate in Mbit/s (a later flow runs ``seconds``, the first one longer)."""
    sinks = {kind: _start_sink(b, kind) for kind in kinds}
    sources = []
    for number, (kind, (_, port)) in enumerate(sinks.items()):
        if number:
            time.sleep(head_start)  # a bench, not a test: the later flow joins a busy link
        lasts = seconds + head_start * (len(kinds) - 1 - number)
        sources.append(subprocess.Popen(_in(a, "source", kind, B_IP, port, str(lasts))))
    rates: dict[str, float] = {}
    try:
        for proc in sources:
            proc.wait(timeout=seconds + head_start * len(kinds) + 60)
        for kind, (proc, _) in sinks.items():
            out, _ = proc.communicate(timeout=60)
            result = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
            size, elapsed = result.split()[1:]
            rates[kind] = int(size) * 8 / 1e6 / max(float(elapsed), 1e-6)
    finally:
        for proc in [*sources, *(p for p, _ in sinks.values())]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return rates


def _build_path(a: str, r: str, b: str, tag: str, rate_mbit: float) -> None:
    """a -- r -- b, r routing between two /24s, a tbf bottleneck on r's side toward b.

    The queue sits in a router, not in the sender's own qdisc: a local qdisc
    would throttle TCP through TCP small queues, which a real path does not.
    """
    for left, right, net, number in ((a, r, "10.78.1", "1"), (r, b, "10.78.2", "2")):
        left_dev, right_dev = f"l{number}{tag}", f"r{number}{tag}"
        _ip("link", "add", left_dev, "netns", left, "type", "veth", "peer", "name", right_dev,
            "netns", right)  # fmt: skip
        left_ip, right_ip = (f"{net}.1", f"{net}.2")
        _ip("-n", left, "addr", "add", f"{left_ip}/24", "dev", left_dev)
        _ip("-n", right, "addr", "add", f"{right_ip}/24", "dev", right_dev)
        for ns, dev in ((left, left_dev), (right, right_dev)):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", a, "route", "add", "default", "via", "10.78.1.2")
    _ip("-n", b, "route", "add", "default", "via", "10.78.2.1")
    subprocess.run(["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                   check=True, timeout=10)  # fmt: skip
    subprocess.run(["ip", "netns", "exec", r, "tc", "qdisc", "add", "dev", f"l2{tag}", "root",
                    "tbf", "rate", f"{rate_mbit}mbit", "burst", "32kb", "latency", "300ms"],
                   check=True, timeout=10)  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="bench.ledbat", description=__doc__)
    parser.add_argument("--rate-mbit", type=float, default=16.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--head-start", type=float, default=3.0, help="uTP runs alone first")
    parser.add_argument("--tcp", default="cubic", help="TCP congestion control (cubic, reno, bbr)")
    args = parser.parse_args()
    os.environ["LEDBAT_TCP_CC"] = args.tcp
    tag = uuid.uuid4().hex[:6]
    a, r, b = f"lba{tag}", f"lbr{tag}", f"lbb{tag}"
    made: list[str] = []
    try:
        for ns in (a, r, b):
            _ip("netns", "add", ns)
            made.append(ns)
        _build_path(a, r, b, tag, args.rate_mbit)
        print(f"bottleneck: tbf {args.rate_mbit} Mbit/s, 300 ms queue; {args.seconds:.0f} s each; "
              f"TCP {args.tcp}")  # fmt: skip
        tcp_alone = _phase(a, b, ["tcp"], args.seconds)["tcp"]
        print(f"TCP alone: {tcp_alone:6.2f} Mbit/s", flush=True)
        utp_alone = _phase(a, b, ["utp"], args.seconds)["utp"]
        print(f"uTP alone: {utp_alone:6.2f} Mbit/s", flush=True)
        both = _phase(a, b, ["utp", "tcp"], args.seconds, head_start=args.head_start)
        print(f"together: TCP {both['tcp']:6.2f} Mbit/s, uTP {both['utp']:6.2f} Mbit/s")
        if args.json:
            figures = {"tcp_alone": tcp_alone, "utp_alone": utp_alone,
                       "tcp_together": both["tcp"], "utp_together": both["utp"]}  # fmt: skip
            Path(args.json).write_text(json.dumps(figures))
        print(f"TCP keeps {both['tcp'] / tcp_alone:.0%} of its solo rate; "
              f"uTP keeps {both['utp'] / utp_alone:.0%} of its own")  # fmt: skip
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)


if __name__ == "__main__":
    main()

"""Which TCP hole punches pass which Linux NATs: the measurements behind decision 0048.

Builds the two-NAT lab of ``tests/e2e/nat_lab.py`` (root and network
namespaces needed) for each NAT kind (cone: MASQUERADE; symmetric: SNAT
``--random-fully``) and each router firewall (``reset``: none, the router
answers a SYN for no mapping with a reset; ``drop``: new connections to the
router dropped, as a home router's firewall does), and tries two ways to
open one TCP connection between the two LAN hosts, each from a port that
also has a listener on it:

* ``simultaneous``: both ends run :class:`~servent.net.tcp_punch.TcpPuncher`
  (what servent does);
* ``ttl-primed``: one end sends a SYN with TTL 2 (it opens its NAT and dies
  in the hub), closes it, and lets its listener answer; the other dials
  0.3 s later (the uTP punch's way, decision 0042).

Prints one line per case.  Run: ``sudo python -m bench.tcp_punch_nat``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

from nat_lab import TWO_NAT_SIDES, two_nat_lab

PORTS = (40001, 40002)
END = r"""
import asyncio, socket, sys
from servent.net.tcp_punch import TcpPuncher
from servent.proto.tcp_punch import PunchSchedule
strategy, port, peer_host, peer_port, first = sys.argv[1:6]
port, peer_port, first = int(port), int(peer_port), first == "1"
async def main():
    accepted = asyncio.get_running_loop().create_future()
    def on_accept(reader, writer):
        if not accepted.done():
            accepted.set_result("accepted by the listener")
    server = await asyncio.start_server(on_accept, "0.0.0.0", port, reuse_address=True)
    for sock in server.sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    puncher = TcpPuncher("0.0.0.0", port, lambda: asyncio.Protocol(), PunchSchedule(window=6.0))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    async def dial():
        try:
            sock = await puncher.open((peer_host, peer_port))
            return "connected"
        except OSError as exc:
            return f"failed ({exc.strerror or type(exc).__name__})"
    if strategy == "simultaneous":
        outcome = await dial()
    elif first:  # ttl-primed, the priming end: one SYN with TTL 2, then the listener
        prime = puncher._bound_socket(peer_host)
        prime.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 2)
        prime.connect_ex((peer_host, peer_port))
        prime.close()
        try:
            outcome = await asyncio.wait_for(accepted, 6.0)
        except TimeoutError:
            outcome = "nothing accepted"
    else:
        await asyncio.sleep(0.3)
        outcome = await dial()
    if accepted.done() and strategy == "simultaneous":
        outcome += ", " + accepted.result()
    print(outcome, flush=True)
    server.close()
asyncio.run(main())
"""


def measure(strategy: str, *, symmetric: bool, drop: bool) -> list[str]:
    with two_nat_lab(symmetric=symmetric, drop_unsolicited=drop) as lab:
        ends = []
        for side in (0, 1):
            other = 1 - side
            ends.append(subprocess.Popen(
                ["ip", "netns", "exec", lab.lans[side], sys.executable, "-c", END, strategy,
                 str(PORTS[side]), TWO_NAT_SIDES[other][0], str(PORTS[other]), str(side)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            ))  # fmt: skip
        try:
            for end in ends:
                assert end.stdout is not None and end.stdout.readline().strip() == "ready"
            for end in ends:
                assert end.stdin is not None
                end.stdin.write("go\n")
                end.stdin.flush()
            return [end.communicate(timeout=30)[0].strip() for end in ends]
        finally:
            for end in ends:
                if end.poll() is None:
                    end.kill()
                    end.wait(10)


def main() -> None:
    for strategy in ("simultaneous", "ttl-primed"):
        for symmetric in (False, True):
            for drop in (False, True):
                outcomes = measure(strategy, symmetric=symmetric, drop=drop)
                nat = "symmetric" if symmetric else "cone"
                firewall = "drop" if drop else "reset"
                print(f"{strategy:12} nat={nat:9} firewall={firewall:5} "
                      f"lan0: {outcomes[0]:28} lan1: {outcomes[1]}")  # fmt: skip


if __name__ == "__main__":
    main()

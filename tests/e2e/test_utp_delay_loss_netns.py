"""uTP across a delayed, lossy path between two network namespaces made by the test.

The namespaces are joined by a veth pair. This kernel has no ``sch_netem``
(``tc qdisc add ... netem`` answers "unknown qdisc"), so the impairment is
netem's ``delay 50ms loss 2%`` applied in user space, in both directions, by
a datagram relay in the receiver's namespace: 100 ms RTT, 2 % loss each way.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PEER = Path(__file__).with_name("utp_stream_peer.py")
DEADLINE = 150.0
SIZE = 4 << 20
A_IP, B_IP = "10.77.0.1", "10.77.0.2"


def _run(*args: str) -> None:
    subprocess.run(args, check=True, timeout=10, capture_output=True)


@pytest.fixture
def namespace_pair() -> Iterator[tuple[str, str]]:
    """Namespaces (a, b) with a at 10.77.0.1 and b at 10.77.0.2 on one veth pair."""
    tag = uuid.uuid4().hex[:6]
    a, b = f"utpa{tag}", f"utpb{tag}"
    made: list[str] = []
    try:
        for ns in (a, b):
            _run("ip", "netns", "add", ns)
            made.append(ns)
        _run("ip", "link", "add", f"va{tag}", "netns", a, "type", "veth",
             "peer", "name", f"vb{tag}", "netns", b)  # fmt: skip
        for ns, dev, address in ((a, f"va{tag}", A_IP), (b, f"vb{tag}", B_IP)):
            _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)


def _start(ns: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start a peer mode in ``ns``; return it and the port it printed."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, str(PEER), *args,
         "--deadline", str(DEADLINE)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline().split()
    if not first or first[0] != "PORT":
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"{args[0]} did not start: {err}")
    return process, first[1]


def test_utp_stream_completes_over_delay_and_loss(namespace_pair: tuple[str, str]) -> None:
    a, b = namespace_pair
    processes: list[subprocess.Popen[str]] = []
    try:
        receiver, receiver_port = _start(b, "receive", B_IP)
        processes.append(receiver)
        relay, relay_port = _start(b, "relay", B_IP, B_IP, receiver_port, "0.05", "0.02")
        processes.append(relay)
        sender = subprocess.run(
            ["ip", "netns", "exec", a, sys.executable, str(PEER), "send", B_IP, relay_port,
             str(SIZE), "9", "--deadline", str(DEADLINE)],
            capture_output=True, text=True, timeout=DEADLINE + 10, check=False,
        )  # fmt: skip
        assert sender.returncode == 0, sender.stderr
        # The sender ends only after the receiver acknowledged the whole stream and its
        # FIN, so the receiver has printed DONE by now; it then waits (at most 5 s) for
        # its own FIN's ACK. The bound is generous for a loaded machine.
        out, err = receiver.communicate(timeout=60)
        assert receiver.returncode == 0, err
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    expected = hashlib.sha256(random.Random(9).randbytes(SIZE)).hexdigest()
    assert f"DONE {SIZE} {expected}" in out
    seconds = float(sender.stdout.split()[1])
    print(f"uTP, 100 ms RTT, 2 % loss each way: {SIZE / seconds / 1e6:.2f} MB/s in {seconds:.1f} s")

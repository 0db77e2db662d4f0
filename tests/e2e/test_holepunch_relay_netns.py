"""Two nodes behind two NATs talk through a public third node (``two_nat_lab``).

Cone-like NATs (MASQUERADE): the nodes' direct messages go over a uTP channel
that a hole punch opened, introduced by the public node.  Symmetric NATs
(SNAT --random-fully): the punch cannot work, and the messages go through the
public node as a relay, still end-to-end encrypted.  ``status`` reports
``reachable``, ``nat`` and ``relay`` for each case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nat_lab import HUB_IP, TWO_NAT_SIDES, TwoNatLab, run, two_nat_lab

from servent.cli.commands.status import _reachability as status_line

pytestmark = pytest.mark.e2e

WAIT = 120.0
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}
OBSERVER_IPS = ("11.77.0.3", "11.77.0.4")
"""DHT nodes beside the hub node's: three distinct voters on our external IP and port."""

HUB = r"""
import asyncio, sys
from pathlib import Path
from servent.net.dht_driver import DhtDriver
from servent.node.config import Config
from servent.node.node import Node
async def main():
    async with DhtDriver(host=sys.argv[3]) as one, DhtDriver(host=sys.argv[4]) as two:
        observers = [f"{ip}:{d.address[1]}" for ip, d in zip(sys.argv[3:], (one, two))]
        config = Config(data_dir=Path(sys.argv[1]), listen_host=sys.argv[2], listen_port=0,
                        dht_bootstrap=tuple(observers), lsd_enabled=False, relay_enabled=True)
        async with Node(config) as node:
            port = node.peer_address()[1]
            print(port, *observers, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
asyncio.run(main())
"""

NATTED = r"""
import asyncio, dataclasses, json, logging, sys
from pathlib import Path
from servent.node.config import Config
from servent.node.node import Node
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
def say(**fields):
    print(json.dumps(fields), flush=True)
async def keep_a_channel(node, hub):
    if not list(node.channels.connected()):  # a channel to check and reserve on
        try:
            await node.channels.dial(*hub)
        except Exception as exc:
            print("no channel to the hub yet:", exc, file=sys.stderr)
async def settle(node, hub):
    # Unreachable (the router maps nothing), the NAT kind known, the relay in the record.
    while node.reachability().reachable is None or node.reachability().nat == "unknown":
        await keep_a_channel(node, hub)
        await asyncio.sleep(0.1)  # polling the node's own state, bounded by the caller
    while not node._publisher or not node._publisher.published_relays:
        await keep_a_channel(node, hub)
        await asyncio.sleep(0.1)
async def live_channel(node, peer_id):
    # The channel that carried the message may give way to the kept one of a
    # simultaneous open (or a punched one) just after delivery: wait for it, bounded.
    async with asyncio.timeout(20):
        while True:
            for channel in node.channels.connected():
                if channel.peer_id == peer_id and channel.close_event is None:
                    return channel
            await asyncio.sleep(0.1)  # polling the node's own state
async def main():
    host, port = sys.argv[2].split(":")
    config = Config(data_dir=Path(sys.argv[1]), listen_host="0.0.0.0", listen_port=0,
                    dht_bootstrap=tuple(sys.argv[2:]), lsd_enabled=False, port_mapping=True)
    async with Node(config) as node:
        try:
            # 150 s: a record put that stores nowhere is tried again only after a minute
            # (seen: one of the two nodes published 62 s after it started, every run).
            async with asyncio.timeout(150):
                await settle(node, (host, int(port)))
        except TimeoutError:
            print("stuck:", node.reachability(), file=sys.stderr)
            raise
        say(id=node.identity_info()["id"], **dataclasses.asdict(node.status()))
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            words = line.split()
            if words[0] == "send":
                sent = await node.messenger.send(words[1], words[2])
                done = await node.messenger.wait_delivered(sent["id"], 60)
                channel = await live_channel(node, words[1])
                transport = channel.transport
                say(delivered=done.get("delivered") is not None,
                    transport=type(transport).__name__, relay=transport.get_extra_info("relay"))
            elif words[0] == "messages":
                say(texts=[m["text"] for m in node.messenger.messages()])
asyncio.run(main())
"""


class Lined:
    """A Python script in a namespace that answers one JSON line per request."""

    def __init__(self, ns: str, script: str, log: Path, *args: str) -> None:
        self.log = log
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-c", script, *args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=ENV,
            )  # fmt: skip

    def line(self) -> str:
        assert self.process.stdout is not None
        got = self.process.stdout.readline()  # each script bounds its own waits
        if not got:
            self.process.wait(30)
            raise AssertionError(f"script ended: {self.log.read_text()}")
        return got

    def ask(self, request: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return json.loads(self.line())

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.mark.parametrize("symmetric", [False, True], ids=["cone-punch", "symmetric-relay"])
def test_two_natted_nodes_exchange_messages(tmp_path: Path, symmetric: bool) -> None:
    with two_nat_lab(symmetric=symmetric) as lab:
        for extra in OBSERVER_IPS:
            run("ip", "-n", lab.hub, "addr", "add", f"{extra}/24", "dev", "h0")
        scripts: list[Lined] = []
        try:
            hub = Lined(
                lab.hub, HUB, tmp_path / "hub.log", str(tmp_path / "hub"), HUB_IP, *OBSERVER_IPS
            )
            scripts.append(hub)
            hub_port, *observers = hub.line().split()
            entry = f"{HUB_IP}:{hub_port}"
            nodes = [
                Lined(lab.lans[side], NATTED, tmp_path / f"n{side}.log",
                      str(tmp_path / f"n{side}"), entry, *observers)
                for side in (0, 1)
            ]  # fmt: skip
            scripts.extend(nodes)
            first, second = (json.loads(node.line()) for node in nodes)
            check_status(lab, first, 0, symmetric, hub_port)
            check_status(lab, second, 1, symmetric, hub_port)
            sent = nodes[0].ask(f"send {second['id']} hello-through-the-nat")
            assert sent["delivered"], sent
            if symmetric:  # no punch can pass: the relay carries the channel
                assert sent["transport"] == "StreamTransport" and sent["relay"], sent
            else:  # a hole punch, introduced by the hub node
                assert sent["transport"] == "UtpTransport" and sent["relay"] is None, sent
            answer = nodes[1].ask(f"send {first['id']} hello-back")
            assert answer["delivered"] and answer["transport"] == sent["transport"], answer
            assert "hello-through-the-nat" in nodes[1].ask("messages")["texts"]
            assert "hello-back" in nodes[0].ask("messages")["texts"]
        finally:
            for script in reversed(scripts):
                script.stop()


def check_status(
    lab: TwoNatLab, status: dict[str, Any], side: int, symmetric: bool, hub_port: str
) -> None:
    router_ip = TWO_NAT_SIDES[side][0]
    assert status["reachable"] is False, status
    assert status["nat"] == ("symmetric" if symmetric else "cone"), status
    assert status["external_address"][0] == router_ip, status
    assert status["relay"] == [HUB_IP, int(hub_port)], status
    kind = "symmetric" if symmetric else "cone"
    external = status["external_address"]
    line = f"no at {router_ip}:{external[1]} via relay {HUB_IP}:{hub_port} (nat: {kind})"
    assert status_line(status) == line  # what `servent status` prints

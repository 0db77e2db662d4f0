"""Two peers behind two NATs trade a torrent: a hole punch (cone), a relay (symmetric).

The seeder sits behind one NAT, the downloader behind the other; both know
only the public hub peer (which may fetch only a trickle itself: its
download rate is capped).  ``cone-punch``: the downloader learns the seeder
by PEX, fails to dial it, asks the hub for a BEP 55 rendezvous, and the two
meet over uTP.  ``symmetric-relay``: no punch can pass; the hub, a relay,
tells each servent peer the other's node key (BEP 10 ``sv_nodes``), and the
torrent runs over a ``servent/peerwire/1`` stream of a node channel relayed
by the hub (``docs/relay.md``).  Either way the file arrives byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from nat_lab import HUB_IP, TWO_NAT_SIDES, run, two_nat_lab
from test_holepunch_relay_netns import OBSERVER_IPS, Lined

from polling import poll
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

PEER = r"""
import asyncio, dataclasses, json, logging, sys
from pathlib import Path
from servent.node.config import Config
from servent.node.node import Node
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
async def main():
    folder, host, torrent, save, rate = sys.argv[1:6]
    peers = [(p.split(":")[0], int(p.split(":")[1])) for p in sys.argv[6:]]
    config = Config(data_dir=Path(folder), listen_host=host, listen_port=0, dht_enabled=False,
                    lsd_enabled=False, download_rate_limit=int(rate))
    async with Node(config) as node:
        torrent_id = await node.add(Path(torrent), save, peers=peers)
        print(json.dumps({"port": node.peer_address()[1]}), flush=True)
        seen = {}
        async def watch():  # every peer ever connected (a finished pair of seeds parts)
            while True:
                for peer in node.peers(torrent_id):
                    seen[f"{peer.host}:{peer.port} {peer.flags}"] = dataclasses.asdict(peer)
                await asyncio.sleep(0.02)
        watcher = asyncio.get_running_loop().create_task(watch())
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            status = node.torrent(torrent_id)
            print(json.dumps({"progress": status.progress, "peers": list(seen.values())}),
                  flush=True)
        watcher.cancel()
asyncio.run(main())
"""

HUB_RELAY = r"""
import asyncio, logging, sys
from pathlib import Path
from servent.net.dht_driver import DhtDriver
from servent.node.config import Config
from servent.node.node import Node
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
async def main():
    folder, host, torrent, save = sys.argv[1:5]
    async with DhtDriver(host=sys.argv[5]) as one, DhtDriver(host=sys.argv[6]) as two:
        observers = [f"{ip}:{d.address[1]}" for ip, d in zip(sys.argv[5:], (one, two))]
        config = Config(data_dir=Path(folder), listen_host=host, listen_port=0,
                        dht_bootstrap=tuple(observers), lsd_enabled=False, relay_enabled=True,
                        relay_max_rate=64 << 20, download_rate_limit=2048)
        async with Node(config) as node:
            await node.add(Path(torrent), save)
            print(node.peer_address()[1], *observers, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
asyncio.run(main())
"""

NATTED_PEER = r"""
import asyncio, json, logging, sys
from pathlib import Path
from servent.node.config import Config
from servent.node.node import Node
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
async def settle(node, hub):
    # Our NAT known to be symmetric and a reservation on the hub: our sv_node advert.
    while node.reachability().nat != "symmetric" or node.relaying.relay.reservation is None:
        if not list(node.channels.connected()):
            try:
                await node.channels.dial(*hub)
            except Exception as exc:
                print("no channel to the hub yet:", exc, file=sys.stderr)
        await asyncio.sleep(0.1)  # polling the node's own state, bounded by the caller
def peers(node, torrent_id):
    session = node._running(torrent_id).session
    for peer in [] if session is None else session.open_peers:
        transport = peer.session.transport
        yield {"host": peer.session.address[0], "port": peer.session.address[1],
               "transport": transport and transport.get_extra_info("transport"),
               "relay": bool(transport and transport.get_extra_info("relay")),
               "downloaded": peer.downloaded}
async def main():
    folder, torrent, save, hub = sys.argv[1:5]
    hub_address = (hub.split(":")[0], int(hub.split(":")[1]))
    config = Config(data_dir=Path(folder), listen_host="0.0.0.0", listen_port=0,
                    dht_bootstrap=tuple(sys.argv[4:]), lsd_enabled=False, port_mapping=True)
    async with Node(config) as node:
        async with asyncio.timeout(120):
            await settle(node, hub_address)
        torrent_id = await node.add(Path(torrent), save, peers=[hub_address])
        print(json.dumps({"port": node.peer_address()[1]}), flush=True)
        seen = {}
        async def watch():  # every peer ever connected (a finished pair of seeds parts)
            while True:
                for peer in peers(node, torrent_id):
                    seen[f"{peer['host']}:{peer['port']} {peer['transport']}"] = peer
                await asyncio.sleep(0.05)
        watcher = asyncio.get_running_loop().create_task(watch())
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            status = node.torrent(torrent_id)
            print(json.dumps({"progress": status.progress, "peers": list(seen.values())}),
                  flush=True)
        watcher.cancel()
asyncio.run(main())
"""

WAIT = 240.0


@pytest.mark.parametrize("symmetric", [False, True], ids=["cone-punch", "symmetric-relay"])
def test_a_torrent_crosses_two_nats(tmp_path: Path, symmetric: bool) -> None:
    size = 2 * 2**20 + 77 if symmetric else 4 * 2**20 + 77
    payload = tmp_path / "seed" / "payload.bin"
    payload.parent.mkdir()
    data = hashlib.shake_256(b"bep 55 lab").digest(size)
    payload.write_bytes(data)
    torrent = tmp_path / "payload.torrent"
    torrent.write_bytes(create_torrent(payload).to_bytes())
    if symmetric:
        through_a_relay(tmp_path, torrent)
    else:
        through_a_hole_punch(tmp_path, torrent)
    assert (tmp_path / "got" / "payload.bin").read_bytes() == data


def through_a_hole_punch(tmp_path: Path, torrent: Path) -> None:
    payload = tmp_path / "seed" / "payload.bin"
    seeder_router = TWO_NAT_SIDES[1][0]
    with two_nat_lab() as lab:
        scripts: list[Lined] = []
        try:
            hub = Lined(lab.hub, PEER, tmp_path / "hub.log", str(tmp_path / "hub"), HUB_IP,
                        str(torrent), str(tmp_path / "hub-got"), "2048")  # fmt: skip
            scripts.append(hub)
            entry = f"{HUB_IP}:{json.loads(hub.line())['port']}"
            seeder = Lined(lab.lans[1], PEER, tmp_path / "seed.log", str(tmp_path / "s"),
                           "0.0.0.0", str(torrent), str(payload.parent), "0", entry)  # fmt: skip
            scripts.append(seeder)
            seed_port = json.loads(seeder.line())["port"]
            wait_until(lambda: seeder.ask("status")["progress"] == 1.0, "the seeder's check")
            got = str(tmp_path / "got")
            downloader = Lined(lab.lans[0], PEER, tmp_path / "get.log", str(tmp_path / "d"),
                               "0.0.0.0", str(torrent), got, "0", entry)  # fmt: skip
            scripts.append(downloader)
            downloader.line()
            seeder_address = (seeder_router, seed_port)
            punched: list[dict[str, Any]] = []

            def finished() -> bool:
                status = downloader.ask("status")
                peers = status["peers"]
                punched.extend(p for p in peers if (p["host"], p["port"]) == seeder_address)
                return bool(status["progress"] == 1.0)

            wait_until(finished, "the download")
            assert any("P" in p["flags"] for p in punched), punched  # a uTP connection
        finally:
            for script in reversed(scripts):
                script.stop()
    log = (tmp_path / "get.log").read_text()
    assert f"for a rendezvous with {seeder_router}:{seed_port}" in log


def through_a_relay(tmp_path: Path, torrent: Path) -> None:
    seeder_router = TWO_NAT_SIDES[1][0]
    with two_nat_lab(symmetric=True) as lab:
        for extra in OBSERVER_IPS:
            run("ip", "-n", lab.hub, "addr", "add", f"{extra}/24", "dev", "h0")
        scripts: list[Lined] = []
        try:
            hub = Lined(lab.hub, HUB_RELAY, tmp_path / "hub.log", str(tmp_path / "hub"), HUB_IP,
                        str(torrent), str(tmp_path / "hub-got"), *OBSERVER_IPS)  # fmt: skip
            scripts.append(hub)
            hub_port, *observers = hub.line().split()
            entry = f"{HUB_IP}:{hub_port}"
            seeder = Lined(lab.lans[1], NATTED_PEER, tmp_path / "seed.log", str(tmp_path / "s"),
                           str(torrent), str(tmp_path / "seed"), entry, *observers)  # fmt: skip
            scripts.append(seeder)
            downloader = Lined(lab.lans[0], NATTED_PEER, tmp_path / "get.log",
                               str(tmp_path / "d"), str(torrent), str(tmp_path / "got"), entry,
                               *observers)  # fmt: skip
            scripts.append(downloader)
            seed_port = json.loads(seeder.line())["port"]
            downloader.line()
            wait_until(lambda: seeder.ask("status")["progress"] == 1.0, "the seeder's check")
            status = wait_until(lambda: done(downloader.ask("status")), "the download")
        finally:
            for script in reversed(scripts):
                script.stop()
    seeder_address = (seeder_router, seed_port)
    from_seeder = [p for p in status["peers"] if (p["host"], p["port"]) == seeder_address]
    assert any(p["transport"] == "channel" and p["relay"] for p in from_seeder), status
    assert sum(p["downloaded"] for p in from_seeder) > 0, status


def done(status: dict[str, Any]) -> dict[str, Any] | None:
    return status if status["progress"] == 1.0 else None


def wait_until(check: Any, what: str) -> Any:
    return poll(check, what, WAIT, every=0.5)

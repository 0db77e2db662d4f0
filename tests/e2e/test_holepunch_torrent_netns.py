"""BEP 55 in the NAT lab: two peers behind two cone NATs trade a torrent through a hole punch.

The seeder sits behind one NAT, the downloader behind the other; both know
only the public hub peer, which relays the rendezvous (and may fetch only a
trickle itself: its download rate is capped).  The downloader learns the
seeder by PEX, fails to dial it, asks the hub for a rendezvous, and the two
meet over uTP; the file arrives byte for byte, mostly from the seeder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from nat_lab import HUB_IP, TWO_NAT_SIDES, two_nat_lab
from test_holepunch_relay_netns import Lined

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

WAIT = 240.0


def test_a_torrent_crosses_two_cone_nats_through_a_hole_punch(tmp_path: Path) -> None:
    payload = tmp_path / "seed" / "payload.bin"
    payload.parent.mkdir()
    data = hashlib.shake_256(b"bep 55 lab").digest(4 * 2**20 + 77)
    payload.write_bytes(data)
    torrent = tmp_path / "payload.torrent"
    torrent.write_bytes(create_torrent(payload).to_bytes())
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
    assert (tmp_path / "got" / "payload.bin").read_bytes() == data
    log = (tmp_path / "get.log").read_text()
    assert f"for a rendezvous with {seeder_router}:{seed_port}" in log


def wait_until(check: Any, what: str) -> Any:
    import time

    deadline = time.monotonic() + WAIT
    while not (answer := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)  # polling another process, bounded
    return answer

"""BEP 55 over TCP alone: a torrent crosses two NATs by TCP simultaneous open.

Every peer runs with uTP off, so the only way the seeder (behind one NAT)
and the downloader (behind the other) can meet is a TCP punch through the
rendezvous of the public hub peer.  The routers drop unsolicited connections
(``drop_unsolicited``, a home router's firewall; a Linux router without it
answers the first SYN with a reset, and no TCP punch passes: decision 0048).
Cone NATs (MASQUERADE): both ends dial from their listening port, the SYNs
cross, the lower endpoint speaks first, and the file arrives byte for byte.
Symmetric NATs (SNAT --random-fully): the punch fails as expected; then the
hub's download cap is lifted and the file still arrives, through the hub.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from nat_lab import HUB_IP, TWO_NAT_SIDES, two_nat_lab
from test_holepunch_relay_netns import Lined
from test_holepunch_torrent_netns import PEER, wait_until

from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

TCP_ONLY = PEER.replace(
    "download_rate_limit=int(rate))", "download_rate_limit=int(rate), utp_enabled=False)"
).replace(  # "unlimit" lifts the hub's download cap (the symmetric case's fallback)
    "            status = node.torrent(torrent_id)\n",
    "            if line.strip() == 'unlimit':\n"
    "                await node.set_limits(download_rate_limit=0)\n"
    "            status = node.torrent(torrent_id)\n",
)
assert TCP_ONLY.count("utp_enabled=False") == TCP_ONLY.count("unlimit") == 1


@pytest.mark.parametrize("symmetric", [False, True], ids=["cone-tcp-punch", "symmetric-via-hub"])
def test_a_torrent_crosses_two_nats_with_utp_off(tmp_path: Path, symmetric: bool) -> None:
    payload = tmp_path / "seed" / "payload.bin"
    payload.parent.mkdir()
    data = hashlib.shake_256(b"bep 55 over tcp").digest(3 * 2**20 + 55)
    payload.write_bytes(data)
    torrent = tmp_path / "payload.torrent"
    torrent.write_bytes(create_torrent(payload).to_bytes())
    seeder_router = TWO_NAT_SIDES[1][0]
    with two_nat_lab(symmetric=symmetric, drop_unsolicited=True) as lab:
        scripts: list[Lined] = []
        try:
            hub = Lined(lab.hub, TCP_ONLY, tmp_path / "hub.log", str(tmp_path / "hub"), HUB_IP,
                        str(torrent), str(tmp_path / "hub-got"), "2048")  # fmt: skip
            scripts.append(hub)
            entry = f"{HUB_IP}:{json.loads(hub.line())['port']}"
            seeder = Lined(lab.lans[1], TCP_ONLY, tmp_path / "seed.log", str(tmp_path / "s"),
                           "0.0.0.0", str(torrent), str(payload.parent), "0", entry)  # fmt: skip
            scripts.append(seeder)
            seed_port = json.loads(seeder.line())["port"]
            wait_until(lambda: seeder.ask("status")["progress"] == 1.0, "the seeder's check")
            got = str(tmp_path / "got")
            downloader = Lined(lab.lans[0], TCP_ONLY, tmp_path / "get.log", str(tmp_path / "d"),
                               "0.0.0.0", str(torrent), got, "0", entry)  # fmt: skip
            scripts.append(downloader)
            downloader.line()
            seen: list[dict[str, Any]] = []
            if symmetric:  # the punch fails; then the hub may carry the file
                failed = f"TCP punch to {seeder_router}:{seed_port} failed"
                wait_until(lambda: failed in (tmp_path / "get.log").read_text(), "the punch")
                hub.ask("unlimit")

            def finished() -> bool:
                status = downloader.ask("status")
                seen.extend(status["peers"])
                return bool(status["progress"] == 1.0)

            wait_until(finished, "the download")
        finally:
            for script in reversed(scripts):
                script.stop()
    assert (tmp_path / "got" / "payload.bin").read_bytes() == data
    got_log, seed_log = (tmp_path / "get.log").read_text(), (tmp_path / "seed.log").read_text()
    assert f"for a rendezvous with {seeder_router}:{seed_port}" in got_log
    punch = f"TCP punch to {seeder_router}:{seed_port}"
    from_seeder = [p for p in seen if p["host"] == seeder_router]
    if symmetric:  # the seeder's SYNs leave from random ports: nothing passes
        assert f"{punch} failed" in got_log, got_log
        assert not from_seeder, from_seeder
        return
    # 11.77.0.1 < 11.78.0.1: the downloader initiates, the seeder answers.
    assert f"{punch} from port" in got_log and "(we are the initiator)" in got_log
    assert "(we are the responder)" in seed_log
    assert f"{punch} connected" in got_log, got_log
    assert any((p["host"], p["port"]) == (seeder_router, seed_port) for p in from_seeder)
    assert all("P" not in p["flags"] for p in seen)  # uTP is off: TCP only
    # The hub fetches at most 2 KiB/s: the file (3 MiB) came from the seeder.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nat_lab import HUB_IP, TWO_NAT_SIDES, two_nat_lab
from test_holepunch_relay_netns import Lined
from test_holepunch_torrent_netns import PEER, wait_until

from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

WITH_UNLIMIT = PEER.replace(  # "unlimit" lifts the hub's download cap (a fallback)
    "            status = node.torrent(torrent_id)\n",
    "            if line.strip() == 'unlimit':\n"
    "                await node.set_limits(download_rate_limit=0)\n"
    "            status = node.torrent(torrent_id)\n",
)
TCP_ONLY = WITH_UNLIMIT.replace(
    "download_rate_limit=int(rate))", "download_rate_limit=int(rate), utp_enabled=False)"
)
assert TCP_ONLY.count("utp_enabled=False") == TCP_ONLY.count("unlimit") == 1
SEEDER_ROUTER = TWO_NAT_SIDES[1][0]


@dataclass
class Outcome:
    data: bytes
    got: bytes
    seed_port: int
    seen: list[dict[str, Any]]
    got_log: str
    seed_log: str


def trade_across_nats(
    tmp_path: Path, script: str, *, symmetric: bool, download_rate: int = 0
) -> Outcome:
    """Hub (capped at 2 KiB/s), seeder behind NAT 1, downloader behind NAT 0; both
    routers drop unsolicited connections.  On a symmetric lab the hub's cap is lifted
    once the downloader's TCP punch to the seeder failed."""
    payload = tmp_path / "seed" / "payload.bin"
    payload.parent.mkdir()
    data = hashlib.shake_256(b"bep 55 over tcp").digest(3 * 2**20 + 55)
    payload.write_bytes(data)
    torrent = tmp_path / "payload.torrent"
    torrent.write_bytes(create_torrent(payload).to_bytes())
    seen: list[dict[str, Any]] = []
    with two_nat_lab(symmetric=symmetric, drop_unsolicited=True) as lab:
        scripts: list[Lined] = []
        try:
            hub = Lined(lab.hub, script, tmp_path / "hub.log", str(tmp_path / "hub"), HUB_IP,
                        str(torrent), str(tmp_path / "hub-got"), "2048")  # fmt: skip
            scripts.append(hub)
            entry = f"{HUB_IP}:{json.loads(hub.line())['port']}"
            seeder = Lined(lab.lans[1], script, tmp_path / "seed.log", str(tmp_path / "s"),
                           "0.0.0.0", str(torrent), str(payload.parent), "0", entry)  # fmt: skip
            scripts.append(seeder)
            seed_port = json.loads(seeder.line())["port"]
            wait_until(lambda: seeder.ask("status")["progress"] == 1.0, "the seeder's check")
            got = str(tmp_path / "got")
            downloader = Lined(lab.lans[0], script, tmp_path / "get.log", str(tmp_path / "d"),
                               "0.0.0.0", str(torrent), got, str(download_rate),
                               entry)  # fmt: skip
            scripts.append(downloader)
            downloader.line()
            if symmetric:  # the punch fails; then the hub may carry the file
                failed = f"TCP punch to {SEEDER_ROUTER}:{seed_port} failed"
                wait_until(lambda: failed in (tmp_path / "get.log").read_text(), "the punch")
                hub.ask("unlimit")

            def finished() -> bool:
                status = downloader.ask("status")
                seen.extend(status["peers"])
                return bool(status["progress"] == 1.0)

            wait_until(finished, "the download")
        finally:
            for script_process in reversed(scripts):
                script_process.stop()
    got_log, seed_log = (tmp_path / "get.log").read_text(), (tmp_path / "seed.log").read_text()
    assert f"for a rendezvous with {SEEDER_ROUTER}:{seed_port}" in got_log
    received = (tmp_path / "got" / "payload.bin").read_bytes()
    return Outcome(data, received, seed_port, seen, got_log, seed_log)


def test_with_utp_off_a_tcp_punch_crosses_two_cone_nats(tmp_path: Path) -> None:
    outcome = trade_across_nats(tmp_path, TCP_ONLY, symmetric=False)
    assert outcome.got == outcome.data
    punch = f"TCP punch to {SEEDER_ROUTER}:{outcome.seed_port}"
    # 11.77.0.1 < 11.78.0.1: the downloader initiates, the seeder answers.
    assert f"{punch} from port" in outcome.got_log
    assert "(we are the initiator)" in outcome.got_log
    assert "(we are the responder)" in outcome.seed_log
    assert f"{punch} connected" in outcome.got_log, outcome.got_log
    seeder = (SEEDER_ROUTER, outcome.seed_port)
    assert any((p["host"], p["port"]) == seeder for p in outcome.seen), outcome.seen
    assert all("P" not in p["flags"] for p in outcome.seen)  # uTP is off: TCP only
    # The hub fetches at most 2 KiB/s: the file (3 MiB) came from the seeder.


def test_with_utp_off_symmetric_nats_fail_the_punch_and_the_hub_carries_the_file(
    tmp_path: Path,
) -> None:
    outcome = trade_across_nats(tmp_path, TCP_ONLY, symmetric=True)
    assert outcome.got == outcome.data
    # The seeder's SYNs leave from random ports: nothing passed, not even once.
    assert not [p for p in outcome.seen if p["host"] == SEEDER_ROUTER], outcome.seen


def test_with_utp_on_the_first_punch_to_connect_is_the_only_connection(tmp_path: Path) -> None:
    """Both punches start on ``connect``: TCP at once, uTP 0.3 s later.  The TCP punch
    connects within milliseconds and holds the address at both ends, so neither end's
    uTP dial starts: one session, no duplicate, for the whole transfer (the downloader
    fetches at 1 MiB/s, so it lasts seconds; decision 0048)."""
    outcome = trade_across_nats(tmp_path, WITH_UNLIMIT, symmetric=False, download_rate=1 << 20)
    assert outcome.got == outcome.data
    assert f"TCP punch to {SEEDER_ROUTER}:{outcome.seed_port} connected" in outcome.got_log
    seeder = [p for p in outcome.seen if p["host"] == SEEDER_ROUTER]
    assert seeder, outcome.seen
    assert all("P" not in p["flags"] for p in seeder), seeder  # never a uTP session too
    assert {p["port"] for p in seeder} == {outcome.seed_port}

"""Supernodes found through a private loopback DHT (no search_bootstrap setting).

The supernode announces itself under the search rendezvous info-hash; leaves
find it with get_peers, register, and a share of one leaf is found by another.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from daemon_process import Daemon, start_daemon
from polling import poll

WAIT = 90.0
_until = functools.partial(poll, within=WAIT)
DHT_FLAGS = ("--dht-enabled", "true", "--dht-restrict-ips", "false")


def test_leaves_find_the_supernode_in_the_dht_and_search_works(tmp_path: Path) -> None:
    folder = tmp_path / "Radio_Days-Live"
    folder.mkdir()
    (folder / "side-a.ogg").write_bytes(os.urandom(100_000))
    daemons: list[Daemon] = []
    try:
        entry = start_daemon(tmp_path / "d0", *DHT_FLAGS, "--dht-bootstrap", "127.0.0.1:9")
        daemons.append(entry)
        host, port = entry.ok("GET", "/api/status")["dht_address"]
        boot = ("--dht-bootstrap", f"{host}:{port}")
        daemons.append(start_daemon(tmp_path / "sn", *DHT_FLAGS, *boot, "--supernode", "on"))
        for index in range(2):
            daemons.append(
                start_daemon(tmp_path / f"l{index}", *DHT_FLAGS, *boot, "--supernode", "off")
            )
        supernode, sharer, searcher = daemons[1], daemons[2], daemons[3]
        for daemon in (sharer, searcher):
            _until(
                lambda d=daemon: d.ok("GET", "/api/status")["search"]["registrars"] >= 1,
                "a leaf found the supernode through the DHT",
            )
        assert supernode.ok("GET", "/api/status")["search"]["role"] == "supernode"
        shared = sharer.ok("POST", "/api/shares", {"path": str(folder)})
        found = _until(
            lambda: searcher.ok("GET", "/api/search?q=radio+days&timeout=2"),
            "the share is found by name",
        )
        assert [r["infohash"] for r in found] == [shared["id"]]
    finally:
        for daemon in daemons:
            daemon.stop()

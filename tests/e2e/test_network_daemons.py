"""Issue 17's proof: five daemons on loopback, driven by the real CLI.

The admin creates a network and three daemons join it by invitation; members
share, search and message among themselves; a fifth daemon, never invited,
gets the magnet of a network torrent and every member's address and receives
no byte of it and no search result; an expired and a used-up invitation are
refused; after a member is revoked it cannot fetch what is shared afterwards
while the others still can.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_process import Daemon, start_daemon
from polling import poll

pytestmark = pytest.mark.e2e

WAIT = 90.0
_poll = functools.partial(poll, within=WAIT)
#: How long an outsider keeps trying while its attempts are watched for any byte.
OUTSIDER_WINDOW = 8.0


def _cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servent", *args, "--data-dir", str(daemon.data_dir)],
        capture_output=True, text=True, timeout=WAIT + 30,
    )  # fmt: skip


def _json(daemon: Daemon, *args: str) -> Any:
    result = _cli(daemon, *args, "--json")
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout)


def _address(daemon: Daemon) -> str:
    host, port = daemon.ok("GET", "/api/status")["listen_address"]
    return f"{host}:{port}"


def _node_id(daemon: Daemon) -> str:
    return str(daemon.ok("GET", "/api/identity")["id"])


def _folder(root: Path, name: str, size: int) -> Path:
    path = root / "shares" / name
    path.mkdir(parents=True)
    (path / f"{name}.bin").write_bytes(bytes((i * 31 + len(name)) % 253 for i in range(size)))
    return path


def _fetch(daemon: Daemon, magnet: str, peers: list[str]) -> str:
    added = daemon.ok("POST", "/api/torrents", {"magnet": magnet, "peers": peers})
    return str(added["id"])


def _complete(daemon: Daemon, torrent_id: str) -> bool:
    status = daemon.ok("GET", f"/api/torrents/{torrent_id}")
    return bool(status["size"] > 0 and status["progress"] >= 1.0)


def _assert_nothing_arrives(daemon: Daemon, torrent_id: str) -> None:
    """Watch an outsider's torrent for a while: no metadata, no payload byte, ever."""
    deadline = time.monotonic() + OUTSIDER_WINDOW
    while time.monotonic() < deadline:
        status = daemon.ok("GET", f"/api/torrents/{torrent_id}")
        assert status["size"] == 0 and status["downloaded"] == 0, status
        time.sleep(0.5)  # polling another process's API


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[dict[str, Daemon]]:
    started: dict[str, Daemon] = {}
    try:
        for name in ("ann", "ben", "cat", "dan", "eve"):
            started[name] = start_daemon(tmp_path / name, "--name", name)
        yield started
    finally:
        for daemon in started.values():
            if daemon.process.poll() is None:
                daemon.stop()


def test_five_daemons_invite_share_search_message_refuse_and_revoke(
    daemons: dict[str, Daemon], tmp_path: Path
) -> None:
    ann, ben, cat, dan, eve = (daemons[n] for n in ("ann", "ben", "cat", "dan", "eve"))
    created = _json(ann, "network", "create", "crew")
    assert created["name"] == "crew" and created["admin"] is True

    # three join by invitation; a used-up and an expired invitation are refused
    used: list[str] = []
    for member in (ben, cat, dan):
        invite = _json(ann, "network", "invite", "crew")["invite"]
        joined = _json(member, "network", "join", invite)
        assert joined["name"] == "crew" and joined["admin"] is False
        used.append(invite)
    refused = _cli(eve, "network", "join", used[0])
    assert refused.returncode != 0 and "used up" in refused.stderr
    short = _json(ann, "network", "invite", "crew", "--uses", "5", "--expires", "1s")
    _poll(lambda: time.time() >= short["expires"] + 1, "the invitation expires", within=10)
    refused = _cli(eve, "network", "join", short["invite"])
    assert refused.returncode != 0 and "expired" in refused.stderr
    assert _json(eve, "network", "list") == []
    members = {m["id"] for m in _json(ann, "network", "members", "crew")}
    assert members == {_node_id(d) for d in (ann, ben, cat, dan)}
    _poll(lambda: len(_json(dan, "network", "members", "crew")) == 4, "dan sees every member")

    # members share, search and fetch among themselves
    maps = _folder(tmp_path, "harbour-maps", 400_000)
    shared = _json(ben, "share", str(maps), "--network", "crew")
    found = _json(cat, "search", "harbour", "--network", "crew")
    assert [r["name"] for r in found] == ["harbour-maps"]
    assert found[0]["infohash"] in shared["magnet"]
    fetched = _fetch(cat, found[0]["magnet"], found[0]["peers"])
    _poll(lambda: _complete(cat, fetched), "cat fetches ben's network share")
    copy = Path(cat.ok("GET", f"/api/torrents/{fetched}")["save_path"]) / "harbour-maps"
    assert (copy / "harbour-maps.bin").read_bytes() == (maps / "harbour-maps.bin").read_bytes()

    # ... and message among themselves (channel network:crew)
    sent = _json(ben, "broadcast", "ship at dawn", "--network", "crew")
    assert sent["reached"] == 3
    for member in (ann, cat, dan):
        inbox = _json(member, "messages", "--channel", "network:crew")
        assert [m["text"] for m in inbox] == ["ship at dawn"]
    assert [m for m in _json(eve, "messages") if m["text"] == "ship at dawn"] == []

    # the outsider: the magnet and every member's address, and nothing comes
    every_member = [_address(d) for d in (ann, ben, cat, dan)]
    stolen = _fetch(eve, shared["magnet"], every_member)
    _assert_nothing_arrives(eve, stolen)
    assert _json(eve, "search", "harbour", "--timeout", "1") == []
    assert _cli(eve, "network", "members", "crew").returncode != 0

    # revoke dan: whatever is shared afterwards is out of its reach, not of the others'
    revoked = _cli(ann, "network", "revoke", "crew", _node_id(dan))
    assert revoked.returncode == 0, revoked.stderr
    _poll(lambda: _json(ben, "network", "list")[0]["epoch"] == 2, "ben learns epoch 2")
    _poll(lambda: _json(cat, "network", "list")[0]["epoch"] == 2, "cat learns epoch 2")
    logs = _folder(tmp_path, "after-logs", 300_000)
    later = _json(ben, "share", str(logs), "--network", "crew")
    assert _json(dan, "search", "logs", "--network", "crew") == []
    denied = _fetch(dan, later["magnet"], every_member)
    found = _poll(lambda: _json(cat, "search", "logs", "--network", "crew"), "cat finds it")
    allowed = _fetch(cat, found[0]["magnet"], found[0]["peers"])
    _poll(lambda: _complete(cat, allowed), "cat fetches what ben shared after the revocation")
    _assert_nothing_arrives(dan, denied)
    left = {m["id"] for m in _json(ann, "network", "members", "crew")}
    assert _node_id(dan) not in left

    # ann makes ben an admin: ben's invitation lets eve in; demoted, ben invites no one
    promoted = _json(ann, "network", "promote", "crew", _node_id(ben))
    assert promoted["admin"] is True
    _poll(lambda: _json(ben, "network", "list")[0]["admin"], "ben holds his promotion")
    joined = _json(eve, "network", "join", _json(ben, "network", "invite", "crew")["invite"])
    assert joined["name"] == "crew"
    _json(ann, "network", "demote", "crew", _node_id(ben))
    _poll(lambda: not _json(ben, "network", "list")[0]["admin"], "ben holds his demotion")
    refused = _cli(ben, "network", "invite", "crew")
    assert refused.returncode != 0 and "only an admin" in refused.stderr

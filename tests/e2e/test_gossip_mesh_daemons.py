"""A broadcast reaches every daemon of a network where nobody has a contact.

Six daemons on loopback share a private DHT (the first is its entry point; its
own bootstrap is a closed loopback port, so nothing leaves the machine). None
has a contact: each finds its gossip neighbours in the DHT rendezvous and by
peer exchange. ``servent broadcast`` from one must reach all the others, a
node started late must get the broadcasts sent after it joined, and a named
channel must reach the node following it (``servent messages --follow
--channel``) and not be kept by nodes that do not follow it.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_process import Daemon, start_daemon
from polling import poll

WAIT = 120.0
DHT_FLAGS = ("--dht-enabled", "true", "--dht-restrict-ips", "false")


def _cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servent", *args, "--data-dir", str(daemon.data_dir)],
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip


def _poll(check: Callable[[], Any], what: str, within: float = WAIT) -> Any:
    return poll(check, what, within, every=0.25)


class Mesh:
    """Daemons sharing one loopback DHT, with no contacts; all stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemons: dict[str, Daemon] = {}
        entry = self._start("entry", "--dht-bootstrap", "127.0.0.1:9")
        host, port = entry.ok("GET", "/api/status")["dht_address"]
        self.bootstrap = f"{host}:{port}"

    def _start(self, name: str, *extra: str) -> Daemon:
        daemon = start_daemon(self.root / name, *DHT_FLAGS, "--name", name, *extra)
        self.daemons[name] = daemon
        return daemon

    def start(self, name: str) -> Daemon:
        daemon = self._start(name, "--dht-bootstrap", self.bootstrap)
        _poll(lambda: daemon.ok("GET", "/api/status")["dht_nodes"] >= 1, f"{name} in the DHT")
        return daemon

    def ids(self) -> dict[str, str]:
        return {name: d.ok("GET", "/api/identity")["id"] for name, d in self.daemons.items()}

    def connected(self) -> bool:
        """Whether the neighbour graph joins every daemon (one connected component)."""
        ids = self.ids()
        names = {node_id: name for name, node_id in ids.items()}
        edges = {
            name: {names.get(n) for n in d.ok("GET", "/api/messaging")["neighbours"]}
            for name, d in self.daemons.items()
        }
        reached, frontier = {"entry"}, ["entry"]
        while frontier:
            for other in edges[frontier.pop()]:
                if other is not None and other not in reached:
                    reached.add(other)
                    frontier.append(other)
        return reached == set(self.daemons)

    def stop(self) -> None:
        for daemon in self.daemons.values():
            if daemon.process.poll() is None:
                daemon.stop()


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    running = Mesh(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _texts(daemon: Daemon, channel: str = "") -> list[str]:
    got = daemon.ok("GET", f"/api/messages?direction=in&channel={channel}")
    return [m["text"] for m in got]


def test_broadcasts_reach_every_daemon_with_no_contacts_and_a_late_joiner(mesh: Mesh) -> None:
    for number in range(5):
        mesh.start(f"n{number}")
    assert all(d.ok("GET", "/api/contacts") == [] for d in mesh.daemons.values())
    _poll(mesh.connected, "a gossip mesh joining all six daemons")

    sender = mesh.daemons["n2"]
    sent = _cli(sender, "broadcast", "hello, mesh", "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["channel"] == ""
    for name, daemon in mesh.daemons.items():
        if daemon is not sender:
            _poll(lambda d=daemon: "hello, mesh" in _texts(d), f"the broadcast at {name}")

    late = mesh.start("late")
    _poll(lambda: late.ok("GET", "/api/messaging")["neighbours"], "the late node's neighbours")
    later = _cli(mesh.daemons["n0"], "broadcast", "after you joined")
    assert later.returncode == 0, later.stderr
    for name, daemon in mesh.daemons.items():
        if name != "n0":
            _poll(lambda d=daemon: "after you joined" in _texts(d), f"the later one at {name}")
    # A new neighbour is offered the last 3 s of messages (docs/gossip.md), so on a
    # fast run the late node may get the first broadcast too; nothing else arrives.
    assert "after you joined" in _texts(late)
    assert set(_texts(late)) <= {"hello, mesh", "after you joined"}
    assert all(d.ok("GET", "/api/contacts") == [] for d in mesh.daemons.values())


def test_a_channel_reaches_its_follower_and_is_not_kept_by_others(mesh: Mesh) -> None:
    for number in range(4):
        mesh.start(f"n{number}")
    _poll(mesh.connected, "a gossip mesh joining all five daemons")
    follower_node, author = mesh.daemons["n3"], mesh.daemons["n1"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "servent", "messages", "--follow", "--channel", "club",
         "--json", "--data-dir", str(follower_node.data_dir)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _poll(lambda: "club" in follower_node.ok("GET", "/api/channels"), "n3 follows club")
        assert author.call("POST", "/api/channels", {"channel": "club"})[0] == 201
        _poll(
            lambda: author.ok("GET", "/api/messaging")["channel_neighbours"].get("club", 0) >= 1,
            "a neighbour of n1 keeping club",
        )
        sent = _cli(author, "broadcast", "club news", "--channel", "club", "--json")
        assert sent.returncode == 0, sent.stderr
        ready, _, _ = select.select([follower.stdout], [], [], WAIT)
        assert ready, "servent messages --follow --channel club printed nothing"
        assert follower.stdout is not None
        shown = json.loads(follower.stdout.readline())
        assert (shown["text"], shown["channel"]) == ("club news", "club")
        for name in ("entry", "n0", "n2"):
            assert _texts(mesh.daemons[name], "club") == [], name
            assert mesh.daemons[name].ok("GET", "/api/channels") == [""]
    finally:
        follower.kill()
        follower.wait(timeout=10)

"""Messages between real daemons on loopback, found by node ID through a private loopback DHT.

The first daemon of each test is the DHT's entry point (its own bootstrap is
a closed loopback port, so nothing leaves the machine).  Messages are sent
and read with the real CLI (``servent send/broadcast/messages/contacts``).
"""

from __future__ import annotations

import functools
import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_process import Daemon, start_daemon
from polling import poll
from servent.codec.node_id import NodeIdError, parse_node_id

WAIT = 90.0
_poll = functools.partial(poll, within=WAIT)
DHT_FLAGS = ("--dht-enabled", "true", "--dht-restrict-ips", "false")
MESSAGE_KEYS = {"from", "name", "to", "channel", "text", "time", "id", "verified"}


def _cli(
    daemon: Daemon | Path, *args: str, timeout: float = WAIT + 30
) -> subprocess.CompletedProcess[str]:
    data_dir = daemon if isinstance(daemon, Path) else daemon.data_dir
    return subprocess.run(
        [sys.executable, "-m", "servent", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ok(daemon: Daemon, *args: str) -> str:
    result = _cli(daemon, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


class Network:
    """A DHT entry daemon and the daemons started against it; all stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemons: list[Daemon] = []
        self.entry = self._start(root / "entry", "--dht-bootstrap", "127.0.0.1:9")
        host, port = self.entry.ok("GET", "/api/status")["dht_address"]
        self.bootstrap = f"{host}:{port}"

    def _start(self, data_dir: Path, *extra: str) -> Daemon:
        daemon = start_daemon(data_dir, *DHT_FLAGS, *extra)
        self.daemons.append(daemon)
        return daemon

    def start(self, name: str) -> Daemon:
        daemon = self._start(self.root / name, "--dht-bootstrap", self.bootstrap, "--name", name)
        _poll(lambda: daemon.ok("GET", "/api/status")["dht_nodes"] >= 1, f"{name} joined the DHT")
        return daemon

    def stop(self) -> None:
        for daemon in self.daemons:
            if daemon.process.poll() is None:
                daemon.stop()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    running = Network(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _typo(node_id: str) -> str:
    """``node_id`` with one character changed in the middle (not the last one, whose
    low bits are padding): a checksum error."""
    for letter in "abcd":
        typo = node_id[:20] + letter + node_id[21:]
        try:
            parse_node_id(typo)
        except NodeIdError as exc:
            if "checksum" in str(exc):
                return typo
    raise AssertionError("no typo found")


def _id(daemon: Daemon) -> str:
    return str(daemon.ok("GET", "/api/identity")["id"])


def _inbox(daemon: Daemon) -> list[dict[str, Any]]:
    return list(json.loads(_ok(daemon, "messages", "--json")))


def _received(daemon: Daemon, text: str) -> bool:
    return any(m["text"] == text for m in daemon.ok("GET", "/api/messages?direction=in"))


def test_a_direct_message_and_a_broadcast_reaching_five_daemons(network: Network) -> None:
    daemons = [network.start(f"n{i}") for i in range(5)]
    ids = [_id(d) for d in daemons]
    for index in range(1, 5):  # a chain: each knows the one before it
        _ok(daemons[index], "contacts", "add", ids[index - 1], f"node {index - 1}")
    for daemon in daemons:
        _poll(lambda d=daemon: d.ok("GET", "/api/messaging")["neighbours"], "a gossip neighbour")
    listed = json.loads(_ok(daemons[2], "contacts", "list", "--json"))
    assert listed == [{"id": ids[1], "name": "node 1"}]

    follower = subprocess.Popen(
        [sys.executable, "-m", "servent", "messages", "--follow", "--json",
         "--data-dir", str(daemons[1].data_dir)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        sent = _cli(daemons[4], "send", ids[0], "hello n0, from n4", "--wait", str(WAIT), "--json")
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["delivered"] is not None
        inbox = _inbox(daemons[0])
        assert [set(m) for m in inbox] == [MESSAGE_KEYS]
        assert inbox[0]["from"] == ids[4] and inbox[0]["to"] == ids[0]
        assert inbox[0]["text"] == "hello n0, from n4" and inbox[0]["verified"] is True
        assert inbox[0]["channel"] is None and inbox[0]["name"] is None

        broadcast = json.loads(_ok(daemons[0], "broadcast", "hello everyone", "--json"))
        for daemon in daemons[1:]:
            _poll(lambda d=daemon: _received(d, "hello everyone"), "the broadcast everywhere")
        at_n3 = [m for m in _inbox(daemons[3]) if m["channel"] == ""]
        assert at_n3 == [{**broadcast, "name": None, "time": at_n3[0]["time"]}]
        assert at_n3[0]["from"] == ids[0] and at_n3[0]["to"] is None

        ready, _, _ = select.select([follower.stdout], [], [], WAIT)
        assert ready, "servent messages --follow printed nothing"
        assert follower.stdout is not None
        followed = json.loads(follower.stdout.readline())
        assert followed["text"] == "hello everyone" and followed["name"] == "node 0"
    finally:
        follower.kill()
        follower.wait(timeout=10)


def test_clear_cli_errors(network: Network) -> None:
    daemon = network.start("solo")
    bad = _cli(daemon, "send", "not-an-id", "hi")
    assert bad.returncode == 1 and "a node ID is 55 characters" in bad.stderr
    typo = _typo(_id(daemon))
    assert "checksum" in _cli(daemon, "contacts", "add", typo).stderr
    other = _id(network.entry)
    big = _cli(daemon, "send", other, "x" * 65_537)
    assert big.returncode == 1 and "at most 65536 (64 KiB)" in big.stderr
    statuses = [
        daemon.call("POST", "/api/messages", {"broadcast": True, "text": f"burst {n}"})
        for n in range(30)
    ]  # far faster than 1 a second: the burst of 10 runs out
    limited = [body for status, body in statuses if status == 429]
    assert limited and "broadcast rate limit" in limited[0]["error"]
    assert 0 < limited[0]["retry_after"] <= 1.0
    assert _ok(daemon, "block", other).startswith("blocked")
    assert daemon.ok("GET", "/api/blocked") == [other]


def test_a_recipient_that_moves_to_a_new_port_is_found_by_its_id(network: Network) -> None:
    sender, recipient = network.start("sender"), network.start("recipient")
    recipient_id = _id(recipient)
    first = _cli(sender, "send", recipient_id, "before the move", "--wait", str(WAIT))
    assert first.returncode == 0, first.stderr
    old_port = recipient.ok("GET", "/api/status")["listen_address"][1]
    assert recipient.stop() == 0
    moved = network.start("recipient")
    assert moved.ok("GET", "/api/status")["listen_address"][1] != old_port
    second = _cli(sender, "send", recipient_id, "after the move", "--wait", str(WAIT))
    assert second.returncode == 0, (second.stdout, second.stderr)
    assert [m["text"] for m in _inbox(moved)] == ["before the move", "after the move"]


def test_a_queued_message_survives_kill_9_of_the_sender_and_reaches_a_late_recipient(
    network: Network,
) -> None:
    recipient = network.start("late")
    recipient_id = _id(recipient)
    assert recipient.stop() == 0
    sender = network.start("sender")
    waited = _cli(sender, "send", recipient_id, "are you there?", "--wait", "2")
    assert waited.returncode == 3 and "not delivered within 2 s" in waited.stderr
    outbox = json.loads(_ok(sender, "messages", "--outbox", "--json"))
    assert [m["text"] for m in outbox] == ["are you there?"]
    sender.stop(signal.SIGKILL)

    restarted = network.start("sender")
    again = json.loads(_ok(restarted, "messages", "--outbox", "--json"))
    assert [m["id"] for m in again] == [outbox[0]["id"]]
    late = network.start("late")
    _poll(lambda: _received(late, "are you there?"), "the queued message after both restarts")
    _poll(lambda: not restarted.ok("GET", "/api/messages/outbox"), "the outbox emptied")
    inbox = _inbox(late)
    assert [(m["text"], m["id"]) for m in inbox] == [("are you there?", outbox[0]["id"])]


def test_the_channel_to_a_contact_comes_back_after_it_moves(network: Network) -> None:
    keeper, contact = network.start("keeper"), network.start("contact")
    contact_id = _id(contact)
    _ok(keeper, "contacts", "add", contact_id, "Moving")

    def neighbours(daemon: Daemon) -> list[str]:
        return list(daemon.ok("GET", "/api/messaging")["neighbours"])

    # Other daemons of the module may be gossip neighbours too (the mesh finds them in
    # the DHT rendezvous): only the contact's channel is watched.
    _poll(lambda: contact_id in neighbours(keeper), "a channel to the contact")
    assert contact.stop() == 0
    _poll(lambda: contact_id not in neighbours(keeper), "the channel gone with the contact")
    moved = network.start("contact")
    _poll(lambda: contact_id in neighbours(keeper), "the channel again, to the new port")
    keeper_id = _id(keeper)
    _poll(lambda: keeper_id in neighbours(moved), "the moved node sees the keeper too")
    listed = json.loads(_ok(keeper, "contacts", "list", "--json"))
    assert listed == [{"id": contact_id, "name": "Moving"}]

"""The message database: outbox, de-duplicated inbox, contacts, blocks, counters, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from servent.node.message_store import MessageStore, StoredMessage

BOB = b"b" * 32
CAROL = b"c" * 32


def outgoing(ident: bytes, text: str = "hi", time: float = 1.0) -> StoredMessage:
    return StoredMessage(ident, "out", "direct", BOB, None, text, time, next_attempt=time)


def incoming(ident: bytes, peer: bytes = BOB, time: float = 1.0) -> StoredMessage:
    return StoredMessage(ident, "in", "direct", peer, None, "hello", time, received=time)


def test_the_outbox_holds_what_is_neither_delivered_nor_given_up(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    for ident in (b"1", b"2", b"3"):
        store.queue_outgoing(outgoing(ident))
    store.mark_delivered(b"1", 5.0)
    store.mark_failed(b"2", "given up after 7 days")
    store.record_attempt(b"3", 2, 40.0, "unreachable")
    (waiting,) = store.outbox()
    assert (waiting.id, waiting.attempts, waiting.next_attempt) == (b"3", 2, 40.0)
    assert waiting.last_error == "unreachable"
    assert store.get(b"1").delivered == 5.0  # type: ignore[union-attr]


def test_a_retried_message_is_stored_once(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    assert store.receive(incoming(b"m"))
    assert not store.receive(incoming(b"m"))
    assert len(store.messages(direction="in")) == 1


def test_unread_counts_per_sender_and_marking_read(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    store.receive(incoming(b"1"))
    store.receive(incoming(b"2"))
    store.receive(incoming(b"3", peer=CAROL))
    assert store.unread_counts() == {BOB: 2, CAROL: 1}
    store.mark_read(BOB)
    assert store.unread_counts() == {CAROL: 1}


def test_contacts_blocks_and_counters_persist(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    store.add_contact(BOB, "Bob", 1.0)
    store.add_contact(BOB, "Robert", 2.0)  # renaming keeps one entry
    store.block(CAROL, 1.0)
    assert [store.next_counter("gossip"), store.next_counter("gossip")] == [1, 2]
    store.close()
    again = MessageStore(tmp_path)
    assert [(c.id, c.name) for c in again.contacts()] == [(BOB, "Robert")]
    assert again.blocked() == {CAROL}
    assert again.next_counter("gossip") == 3
    assert again.remove_contact(BOB) and not again.remove_contact(BOB)
    assert again.unblock(CAROL) and again.blocked() == set()


def test_the_database_file_is_private(tmp_path: Path) -> None:
    MessageStore(tmp_path / "data")
    assert (tmp_path / "data" / "messages.sqlite3").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


def test_a_queued_message_survives_kill_9_right_after_the_call(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from servent.node.message_store import MessageStore, StoredMessage
        store = MessageStore(Path({str(tmp_path)!r}))
        store.queue_outgoing(StoredMessage(b"k", "out", "direct", b"b" * 32, None, "x", 1.0))
        sys.stdout.write("queued\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL and proc.stdout == "queued\n"
    assert [m.id for m in MessageStore(tmp_path).outbox()] == [b"k"]
    assert os.path.exists(tmp_path / "messages.sqlite3")


def test_listing_keeps_the_newest_by_conversation_and_channel(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    for n in range(5):
        store.receive(incoming(bytes([n]), BOB, time=float(n)))
    store.receive(incoming(b"carol", CAROL, time=9.0))
    for ident, channel in ((b"x", ""), (b"y", "news"), (b"z", "news")):
        store.receive(StoredMessage(ident, "in", "broadcast", CAROL, channel, "b", 10.0))
    newest = store.messages(limit=3)
    assert [m.id for m in newest] == [b"x", b"y", b"z"]  # the newest 3, oldest first
    assert [m.id for m in store.messages(peer=BOB, limit=2)] == [b"\x03", b"\x04"]
    assert [m.id for m in store.messages(peer=CAROL)] == [b"carol"]
    assert [m.id for m in store.messages(channel="news")] == [b"y", b"z"]
    assert store.unread_channels() == {"": 1, "news": 2}
    store.mark_read_channel("news")
    assert store.unread_channels() == {"": 1}
    assert store.unread_counts() == {BOB: 5, CAROL: 1}  # broadcasts are not conversations

"""Messages between in-process Nodes over real node channels on loopback (no DHT).

Channels are opened with known addresses, so these tests exercise the
messaging layer itself: outbox, acknowledgement, restart, gossip and limits.
The daemons-and-DHT version is ``test_messaging_daemons.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from network_nodes import loopback_node
from polling import wait_for as _until
from servent.codec.node_id import NodeIdError, format_node_id
from servent.node.events import MessageDelivered, MessageReceived
from servent.node.messaging import MessagingError, RateLimitedError
from servent.node.node import Node

DEADLINE = 30.0


def _node(tmp_path: Path, name: str) -> Node:
    return loopback_node(tmp_path / name, name=name.upper())


async def _link(a: Node, b: Node) -> None:
    """A node channel from ``a`` to ``b`` (b's address given: no DHT here)."""
    address = b.status().listen_address
    assert address is not None
    async with asyncio.timeout(DEADLINE):
        await a.channels.connect(b.identity.public_key, [tuple(address)])  # type: ignore[list-item]


async def test_a_direct_message_is_stored_acknowledged_and_shown_once(tmp_path: Path) -> None:
    async with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
        events = b.events()
        sender_events = a.events()
        await _link(a, b)
        sent = await a.messenger.send(b.identity.node_id, "hello B")
        assert sent["to"] == b.identity.node_id and sent["from"] == a.identity.node_id
        done = await a.messenger.wait_delivered(sent["id"], DEADLINE)
        assert done["delivered"] is not None
        received = b.messenger.messages(direction="in")
        assert [(m["from"], m["text"], m["verified"]) for m in received] == [
            (a.identity.node_id, "hello B", True)
        ]
        assert received[0]["id"] == sent["id"] and received[0]["channel"] is None
        async with asyncio.timeout(DEADLINE):
            async for event in events:
                if isinstance(event, MessageReceived):
                    assert event.message["text"] == "hello B"
                    assert event.to_json()["type"] == "message_received"
                    break
            async for event in sender_events:
                if isinstance(event, MessageDelivered):
                    assert event.id == sent["id"] and event.to == b.identity.node_id
                    break
        assert a.messenger.outbox() == []
        assert b.messenger.unread()["direct"] == {a.identity.node_id: 1}


async def test_contacts_names_and_blocks(tmp_path: Path) -> None:
    async with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
        b.messenger.add_contact(a.identity.node_id, "Alice")
        await _link(a, b)
        first = await a.messenger.send(b.identity.node_id, "from a friend")
        await a.messenger.wait_delivered(first["id"], DEADLINE)
        assert b.messenger.messages(direction="in")[0]["name"] == "Alice"
        assert [c["name"] for c in b.messenger.contacts()] == ["Alice"]

        b.messenger.block(a.identity.node_id)
        second = await a.messenger.send(b.identity.node_id, "not wanted")
        done = await a.messenger.wait_delivered(second["id"], DEADLINE)
        assert done["delivered"] is not None  # acknowledged, so A stops retrying...
        assert [m["text"] for m in b.messenger.messages(direction="in")] == ["from a friend"]
        assert b.messenger.blocked() == [a.identity.node_id]
        assert b.messenger.remove_contact(a.identity.node_id)
        assert b.messenger.contacts() == []


async def test_the_outbox_survives_a_restart_and_goes_when_the_recipient_appears(
    tmp_path: Path,
) -> None:
    b = _node(tmp_path, "b")
    async with b:
        b_id = b.identity.node_id
    async with _node(tmp_path, "a") as a:
        queued = await a.messenger.send(b_id, "while you were away")
        await _until(lambda: a.messenger.outbox()[0]["attempts"] >= 1, "a first failed attempt")
        assert "no address" in a.messenger.outbox()[0]["last_error"]
    async with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
        assert [m["id"] for m in a.messenger.outbox()] == [queued["id"]]
        await _link(b, a)  # B appears and dials A: A's waiting messages go at once
        done = await a.messenger.wait_delivered(queued["id"], DEADLINE)
        assert done["delivered"] is not None
        assert [m["text"] for m in b.messenger.messages(direction="in")] == ["while you were away"]


async def test_a_message_takes_a_channel_that_opens_while_its_own_dial_hangs(
    tmp_path: Path,
) -> None:
    """Regression: an attempt stuck dialling a stale address (it accepts, never answers)
    ignored the recipient's own channel opening meanwhile, so the message waited out the
    handshake timeout and a back-off before it went."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    stale = await asyncio.start_server(silent, "127.0.0.1", 0)
    stale_address = stale.sockets[0].getsockname()[:2]

    async def stale_record(_key: bytes) -> list[tuple[str, int]]:
        return [stale_address]

    try:
        async with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
            a.channels.resolver = stale_record
            started = time.monotonic()
            sent = await a.messenger.send(b.identity.node_id, "over the channel you opened")
            await _until(lambda: accepted, "the attempt dialling the stale address")
            await _link(b, a)  # B dials A while A's own dial hangs
            done = await a.messenger.wait_delivered(sent["id"], DEADLINE)
            took = time.monotonic() - started
            assert done["delivered"] is not None, done
            assert done["last_error"] is None  # the first attempt delivered it, no retry
            assert took < a.channels.config.handshake_timeout, took
            assert a.messenger.outbox() == []
    finally:
        for writer in accepted:
            writer.close()
        stale.close()
        await stale.wait_closed()


async def test_a_broadcast_crosses_a_chain_of_nodes_signed_and_once(tmp_path: Path) -> None:
    nodes = [_node(tmp_path, f"n{i}") for i in range(4)]
    for node in nodes:
        await node.start()
    try:
        for left, right in itertools.pairwise(nodes):
            await _link(right, left)
        for node in nodes:
            await _until(lambda n=node: len(n.messenger.broadcasts.neighbours) >= 1, "neighbours")
        for node in nodes[1:]:  # a node keeps and relays only the channels it follows
            await node.messenger.follow("topic")
        for left, right in itertools.pairwise(nodes):
            await _until(
                lambda a=left, b=right: b.identity.public_key
                in a.messenger.broadcasts.router.subscribers(b"topic"),
                "subscription heard",
            )
        sent = await nodes[3].messenger.broadcast("to everyone", channel="")
        on_topic = await nodes[0].messenger.broadcast("news", channel="topic")
        for node in nodes[:3]:
            await _until(
                lambda n=node: len(n.messenger.messages(direction="in")) >= 1,
                f"broadcast at {node.identity.node_id[:8]}",
            )
        for node in nodes[1:]:
            await _until(
                lambda n=node: len(n.messenger.messages(channel="topic")) == 1, "topic message"
            )
        for node in nodes[:3]:
            got = node.messenger.messages(channel="")
            assert [(m["id"], m["from"], m["text"], m["to"]) for m in got] == [
                (sent["id"], nodes[3].identity.node_id, "to everyone", None)
            ]
        assert nodes[3].messenger.messages(channel="topic")[0]["id"] == on_topic["id"]
        assert nodes[2].messenger.unread()["channels"] == {"": 1, "topic": 1}
        nodes[2].messenger.mark_read(channel="topic")
        assert nodes[2].messenger.unread()["channels"] == {"": 1}
    finally:
        for node in nodes:
            await node.close()


async def test_clear_errors_for_bad_ids_sizes_and_rates(tmp_path: Path) -> None:
    async with _node(tmp_path, "a") as a:
        messenger = a.messenger
        with pytest.raises(NodeIdError, match="55 characters"):
            await messenger.send("abc", "hi")
        other = format_node_id(bytes(range(32)))
        with pytest.raises(MessagingError, match="at most 65536"):
            await messenger.send(other, "x" * 65_537)
        with pytest.raises(MessagingError, match="itself"):
            await messenger.send(a.identity.node_id, "me")
        with pytest.raises(MessagingError, match="empty"):
            await messenger.broadcast("")
        with pytest.raises(MessagingError, match="channel name"):
            await messenger.broadcast("hi", channel="c" * 65)
        big = await messenger.send(other, "y" * 65_536)  # exactly 64 KiB is fine
        assert len(big["text"]) == 65_536
        with pytest.raises(RateLimitedError, match="broadcast rate limit"):
            for _ in range(20):
                await messenger.broadcast("spam")


async def test_messages_of_the_largest_size_fit_one_channel_frame(tmp_path: Path) -> None:
    async with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
        await _link(a, b)
        await _until(lambda: len(b.messenger.broadcasts.neighbours) == 1, "neighbour")
        text = "é" * 32_768  # 65,536 UTF-8 bytes
        sent = await a.messenger.send(b.identity.node_id, text)
        assert (await a.messenger.wait_delivered(sent["id"], DEADLINE))["delivered"]
        await a.messenger.broadcast(text)
        await _until(lambda: len(b.messenger.messages(direction="in")) == 2, "both arrived")
        assert {m["text"] for m in b.messenger.messages(direction="in")} == {text}


async def test_hostile_frames_are_refused_and_floods_limited(tmp_path: Path) -> None:
    """A raw channel host plays a hostile node: garbage, forged broadcasts, a flood."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from servent.net.channel_host import ChannelHost
    from servent.proto.channel import LocalKeys
    from servent.proto.gossip import GossipMessage, Publish
    from servent.proto.gossip.frames import encode_frame
    from servent.proto.message_frames import (
        Ack,
        DirectMessage,
        decode_message_frame,
        encode_message_frame,
    )

    attacker = ChannelHost(LocalKeys.create(Ed25519PrivateKey.generate()))
    async with _node(tmp_path, "a") as a:
        address = a.status().listen_address
        assert address is not None
        async with asyncio.timeout(DEADLINE):
            channel = await attacker.connect(a.identity.public_key, [tuple(address)])  # type: ignore[list-item]
            garbage = channel.open_stream("servent/message/1")
            garbage.send(b"this is not bencode")
            assert await garbage.receive() is None and garbage.reset_by_peer is not None

            flood = channel.open_stream("servent/message/1")
            started = time.monotonic()
            for n in range(200):
                flood.send(encode_message_frame(DirectMessage(n.to_bytes(16, "big"), 0, b"spam")))
            flood.close()  # A's handler ends after the last one, and so does the stream
            acks = []
            while (data := await flood.receive()) is not None:
                acks.append(decode_message_frame(data))
            elapsed = time.monotonic() - started
        assert all(isinstance(ack, Ack) for ack in acks)
        # The burst of 50, plus 5 a second while the flood lasted; never all 200.
        assert 50 <= len(acks) <= 50 + 5 * elapsed + 1 and len(acks) < 200
        assert len(a.messenger.messages(direction="in")) == len(acks)

        # Claims to be A's own broadcast, signed by the attacker's key instead.
        # (Not a low-order key such as 32 zero bytes: OpenSSL accepts some
        # signatures "by" those, which impersonate no real node.)
        claimed = GossipMessage(a.identity.public_key, 1, int(time.time()), b"", b"forged")
        signature = Ed25519PrivateKey.generate().sign(claimed.signed_bytes())
        forged = GossipMessage(
            claimed.author, claimed.sequence, claimed.time, claimed.channel, claimed.payload,
            signature,
        )  # fmt: skip
        gossip = channel.open_stream("servent/gossip/1")
        gossip.send(encode_frame(Publish(forged)))
        for _ in range(10):
            gossip.send(b"not a gossip frame")
        async with asyncio.timeout(DEADLINE):
            await channel.wait_closed()  # ten strikes: A closed the channel
        assert a.messenger.broadcasts.router.statistics.invalid == 1
        assert all(m["text"] != "forged" for m in a.messenger.messages())
    await attacker.close()

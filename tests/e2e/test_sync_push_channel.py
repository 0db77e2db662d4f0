"""Version pushes over real node channels on loopback (docs/sync.md section 8).

A signed version item pushed by one node reaches the other's handler; a
tampered, replayed-under-another-number or garbage frame is refused with a
stream reset and the channel keeps working; an address that is no servent
node costs a bounded wait and nothing else.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from loopback_dht import start_loopback_dht

from polling import wait_for
from servent.codec.share_key import SYNC_SALT, public_key_of
from servent.net.channel_host import ChannelHost
from servent.net.engine import EngineConfig, SwarmEngine
from servent.node.sync_push import SYNC_PROTOCOL, SyncPush, push_frame
from servent.proto.channel import LocalKeys
from servent.proto.sync_plan import PushedVersion, encode_push, encode_version_value

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
DEADLINE = 20.0


@asynccontextmanager
async def pushing_node(
    identity: Ed25519PrivateKey | None = None,
) -> AsyncIterator[tuple[SwarmEngine, SyncPush, list[PushedVersion]]]:
    """A swarm engine on loopback whose port also takes node channels and sync pushes."""
    heard: list[PushedVersion] = []
    host = ChannelHost(LocalKeys.create(identity or Ed25519PrivateKey.generate()))
    push = SyncPush(SYNC_SALT, heard.append)
    push.start(host)
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
        assert engine.listener is not None
        engine.listener.channel_acceptor = host
        try:
            yield engine, push, heard
        finally:
            await push.close()
            await host.close()


async def _send_raw(push: SyncPush, port: int, frame: bytes) -> tuple[int, str] | None:
    """Send one frame on a new stream; the reset the receiver answered with, if any."""
    host = push._host
    assert host is not None
    channel = await host.dial(LOOPBACK, port)
    stream = channel.open_stream(SYNC_PROTOCOL)
    stream.send(frame)
    stream.close()
    async with asyncio.timeout(DEADLINE):
        while await stream.receive() is not None:
            pass
    return stream.reset_by_peer


async def test_a_signed_version_is_pushed_and_hostile_frames_are_refused() -> None:
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    value = encode_version_value(b"v" * 20)
    async with pushing_node() as (_, sender, _), pushing_node() as (engine, _, heard):
        assert engine.port is not None
        assert await sender.push(push_frame(seed, 3, value), [(LOOPBACK, engine.port)]) == 1
        assert heard == [PushedVersion(public_key_of(seed), 3, b"v" * 20)]

        signature = Ed25519PrivateKey.generate().sign(b"something else")
        hostile = [
            b"not bencode at all",
            b"d1:ki1ee",
            encode_push(public_key_of(seed), 4, value, signature),  # a forged signature
            push_frame(seed, 3, value).replace(b"3:seqi3e", b"3:seqi9e"),  # another number
            b"x" * 4096,
        ]
        for frame in hostile:
            reset = await _send_raw(sender, engine.port, frame)
            assert reset is not None, frame[:20]
        assert len(heard) == 1  # nothing hostile reached the shares
        assert await sender.push(push_frame(seed, 5, value), [(LOOPBACK, engine.port)]) == 1
        assert [h.seq for h in heard] == [3, 5]


async def test_an_address_that_is_no_servent_node_is_skipped() -> None:
    silent = socket.create_server((LOOPBACK, 0))  # accepts, never answers
    closed = socket.create_server((LOOPBACK, 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there any more
    try:
        async with pushing_node() as (_, sender, _):
            seed = Ed25519PrivateKey.generate().private_bytes_raw()
            frame = push_frame(seed, 1, encode_version_value(b"w" * 20))
            async with asyncio.timeout(60):
                targets = [(LOOPBACK, silent.getsockname()[1]), (LOOPBACK, closed_port)]
                assert await sender.push(frame, targets) == 0
    finally:
        silent.close()


async def test_a_holder_that_announces_after_another_took_the_push_still_hears_it() -> None:
    """Regression: the push stopped once one holder took it, so a holder whose announce
    was not in the DHT yet was left to its poll."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    info_hash = b"h" * 20
    drivers = await start_loopback_dht(4, seed=29)
    try:
        async with (
            pushing_node() as (_, sender, _),
            pushing_node() as (early, _, early_heard),
            pushing_node() as (late, _, late_heard),
        ):
            assert early.port is not None and late.port is not None
            await drivers[1].announce(info_hash, early.port)
            frame = push_frame(seed, 2, encode_version_value(info_hash))
            sender.push_later(frame, drivers[0], [info_hash], own=None)
            await wait_for(lambda: early_heard, "the early holder heard the push", DEADLINE)
            await drivers[2].announce(info_hash, late.port)  # after the first round
            await wait_for(lambda: late_heard, "the late holder heard the push", 2 * DEADLINE)
            assert [h.seq for h in early_heard + late_heard] == [2, 2]
    finally:
        for driver in drivers:
            await driver.close()


def _by_public_key(count: int) -> list[Ed25519PrivateKey]:
    """``count`` node identities, the smallest public key first."""
    keys = [Ed25519PrivateKey.generate() for _ in range(count)]
    return sorted(keys, key=lambda k: LocalKeys.create(k).public_key)


async def test_a_push_to_a_node_that_opened_the_kept_channel_goes_over_it() -> None:
    """Regression (test_sync_roles failed with "a push reached the owner or the reader",
    pushed 0): the holder had a channel open to the writer already, initiated by the
    smaller key, so the writer's new dial was the duplicate both ends close.  The push
    went out on that closing channel and was lost, three rounds in a row."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    value = encode_version_value(b"k" * 20)
    smaller, larger = _by_public_key(2)
    async with (
        pushing_node(larger) as (sender_engine, sender, _),
        pushing_node(smaller) as (holder_engine, holder, heard),
    ):
        holder_host = holder._host
        assert holder_host is not None and sender_engine.port and holder_engine.port
        kept = await holder_host.dial(LOOPBACK, sender_engine.port)  # the one both ends keep
        pushed = await sender.push(push_frame(seed, 5, value), [(LOOPBACK, holder_engine.port)])
        assert pushed == 1
        assert heard == [PushedVersion(public_key_of(seed), 5, b"k" * 20)]
        assert kept.close_event is None  # the kept channel carried it and stays open

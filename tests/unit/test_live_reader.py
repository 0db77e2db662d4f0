"""A live reader: starts at the live edge, follows, skips a hole only after a while, ends."""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.net.live_session import SKIP_AFTER, LiveSession
from servent.proto.live import live_topic


def broadcast(clock: list[float]) -> LiveSession:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    return LiveSession(live_topic(public), public, key=key, clock=lambda: clock[0])


async def test_a_reader_starts_at_the_newest_piece_and_follows_to_the_end() -> None:
    session = broadcast([0.0])
    for data in (b"old", b"older news", b"edge"):
        session.publish(data)
    reader = session.reader()
    async with asyncio.timeout(5):
        assert await reader.next_chunk() == b"edge"  # not the past
        waiting = asyncio.get_running_loop().create_task(reader.next_chunk())
        await asyncio.sleep(0)  # let it wait for the next piece
        session.publish(b"new")
        assert await waiting == b"new"
        session.publish(b"")  # the signed end
        assert await reader.next_chunk() is None
    assert session.ended and session.bytes_written == len(b"oldolder newsedgenew")


async def test_a_hole_is_waited_for_then_skipped() -> None:
    clock = [0.0]
    session = broadcast(clock)
    session.publish(b"zero")
    reader = session.reader()
    async with asyncio.timeout(10):
        assert await reader.next_chunk() == b"zero"
        session.publish(b"one")
        session.publish(b"two")
        del session.pieces[1]  # a piece that never came
        waiting = asyncio.get_running_loop().create_task(reader.next_chunk())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # newer pieces alone do not skip it at once
        clock[0] = SKIP_AFTER + 1
        assert await waiting == b"two"  # within the reader's one-second recheck
    assert reader.skipped == 1


async def test_a_reader_the_client_left_stops() -> None:
    session = broadcast([0.0])
    reader = session.reader()
    async with asyncio.timeout(5):
        assert await reader.next_chunk(still_wanted=lambda: False) is None

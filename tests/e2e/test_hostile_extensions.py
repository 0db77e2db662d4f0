"""Hostile extension traffic against a servent seeder: PEX floods, malformed
``ut_pex``, oversized and endless ``ut_metadata`` requests.

Each misbehaving peer (a raw TCP connection whose side the test plays on top
of a sans-IO :class:`PeerConnection`) is disconnected with a clear log line,
and afterwards a servent leecher still downloads the whole torrent from the
same seeder, which never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import pytest

from interop.reference_clients import LOOPBACK, create_torrent_with_libtorrent, write_payload
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.errors import PeerWireError
from servent.net.engine import EngineConfig, SwarmEngine
from servent.proto.metadata_exchange import encode_request
from servent.proto.peerwire import (
    Event,
    ExtensionHandshake,
    ExtensionHandshakeReceived,
    ExtensionRegistry,
    HandshakeReceived,
    PeerConnection,
)
from servent.proto.pex import PexMessage, encode_pex
from servent.proto.session_extensions import UT_METADATA, UT_PEX

pytestmark = pytest.mark.e2e

SIZE = 1024 * 1024 + 333
DEADLINE = 20.0


def _registry() -> ExtensionRegistry:
    """The extensions a hostile peer claims to speak."""
    registry = ExtensionRegistry()
    registry.register(UT_PEX)
    registry.register(UT_METADATA)
    registry.register("ut_holepunch")
    return registry


class RawExtensionPeer:
    """A connection that completes both handshakes, then sends what we script."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn: PeerConnection | None = None
        self.remote: ExtensionHandshake | None = None

    @classmethod
    async def open(cls, port: int, meta: Metainfo) -> RawExtensionPeer:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        peer = cls(reader, writer)
        peer.conn = PeerConnection(
            peer_id=b"-XX0009-" + os.urandom(6).hex().encode(),
            info_hash=meta.wire_info_hash,
            num_pieces=meta.num_pieces,
            initiator=True,
            now=0.0,
            extensions=_registry(),
        )
        peer.flush()
        await peer.wait_event(HandshakeReceived)
        peer.conn.send_extension_handshake({"v": "hostile"})
        peer.flush()
        event = await peer.wait_event(ExtensionHandshakeReceived)
        assert isinstance(event, ExtensionHandshakeReceived)
        peer.remote = event.handshake
        return peer

    def flush(self) -> None:
        assert self.conn is not None
        self.writer.write(self.conn.data_to_send())

    def send_extension(self, name: str, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.send_extension(name, payload)
        self.flush()

    async def wait_event(self, kind: type) -> Event:
        assert self.conn is not None
        async with asyncio.timeout(DEADLINE):
            while True:
                while (event := self.conn.next_event()) is not None:
                    if isinstance(event, kind):
                        return event
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed by servent")
                self.conn.receive_data(data)

    async def closed_by_remote(self) -> bool:
        """Read (and discard) until servent closes; False if it is still open at the deadline."""
        try:
            async with asyncio.timeout(DEADLINE):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except (ConnectionError, PeerWireError):
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def pex_message(count: int) -> bytes:
    added = tuple(((f"10.0.{n // 250}.{n % 250 + 1}", 6881), 0) for n in range(count))
    return encode_pex(PexMessage(added=added))


def misbehave(peer: RawExtensionPeer, behaviour: str) -> None:
    if behaviour == "pex flood":
        for _ in range(5):
            peer.send_extension(UT_PEX, pex_message(50))
    elif behaviour == "malformed pex":
        peer.send_extension(UT_PEX, b"d5:added3:abce")  # not a multiple of 6 bytes
    elif behaviour == "oversized metadata request":
        peer.send_extension(UT_METADATA, encode_request(0) + b"x" * 40_000)
    elif behaviour == "metadata request flood":
        for _ in range(500):
            peer.send_extension(UT_METADATA, encode_request(0))
    elif behaviour == "metadata request for a huge piece":
        peer.send_extension(UT_METADATA, b"d8:msg_typei0e5:piecei99999999999ee")
    elif behaviour == "malformed holepunch":
        peer.send_extension("ut_holepunch", bytes([7, 0]) + bytes(10))  # unknown type


EXPECTED_LOG = {
    "pex flood": "refused ut_pex message",
    "malformed pex": "refused ut_pex message",
    "oversized metadata request": "bad ut_metadata message",
    "metadata request flood": "ut_metadata request flood",
    "metadata request for a huge piece": "bad ut_metadata message",
    "malformed holepunch": "refused ut_holepunch message",
}


@pytest.mark.parametrize("behaviour", list(EXPECTED_LOG))
async def test_hostile_extension_traffic_is_contained(
    tmp_path: Path, behaviour: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=11)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "payload.bin", version="hybrid", piece_length=64 * 1024
    )
    meta = parse_torrent(torrent)
    caplog.set_level(logging.WARNING, logger="servent.net.peer_extensions")
    config = EngineConfig(listen_host=LOOPBACK)
    async with SwarmEngine(config) as seeder, SwarmEngine(config) as leecher:
        seeding = await seeder.add_torrent(meta, tmp_path / "seed")
        hostile = await RawExtensionPeer.open(seeder.port, meta)
        try:
            misbehave(hostile, behaviour)
            assert await hostile.closed_by_remote(), f"servent kept a peer after {behaviour}"
        finally:
            await hostile.close()
        assert EXPECTED_LOG[behaviour] in caplog.text
        assert len(seeding.known) == 0, "addresses from a refused PEX message were kept"
        session = await leecher.add_torrent(meta, tmp_path / "out", peers=[(LOOPBACK, seeder.port)])
        await asyncio.wait_for(session.wait_complete(), DEADLINE)
        assert seeding.error is None
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data


async def test_extension_handshake_offers_metadata_pex_and_yourip(tmp_path: Path) -> None:
    write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=12)
    meta = parse_torrent(
        create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v2")
    )
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as seeder:
        await seeder.add_torrent(meta, tmp_path / "seed")
        peer = await RawExtensionPeer.open(seeder.port, meta)
        try:
            remote = peer.remote
            assert remote is not None
            assert {UT_METADATA, UT_PEX} <= set(remote.extensions)
            assert remote.metadata_size == len(meta.info_bytes)
            assert remote.fields[b"yourip"] == bytes([127, 0, 0, 1])
            assert remote.listen_port == seeder.port
        finally:
            await peer.close()

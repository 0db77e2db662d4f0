"""Hostile peers against a servent leecher and a servent seeder.

Leecher side: a peer that serves corrupt blocks is banned and the download
completes from an honest (slower) libtorrent seeder; a peer that handshakes,
unchokes and then never answers is worked around and disconnected.

Seeder side: a wrong info-hash, an oversized message, a request beyond the
torrent's end, a request flood, and a peer that never sends its handshake
are each disconnected, and afterwards libtorrent still downloads the whole
torrent from the same servent seeder.

The misbehaving peers are written here on top of the sans-IO
:class:`PeerConnection` (to parse what servent sends) plus raw bytes (to send
what no honest connection would).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interop.reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    write_payload,
)
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.errors import PeerWireError
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentConfig
from servent.node.events import EventHub, PeerBanned, TorrentCompleted
from servent.node.torrent_spec import TorrentWatcher
from servent.proto.peerwire import (
    ConnectionConfig,
    Event,
    HandshakeReceived,
    HaveAll,
    Interested,
    PeerConnection,
    Piece,
    Request,
    Unchoke,
)

pytestmark = pytest.mark.e2e

SIZE = 3 * 1024 * 1024 + 777
PIECE = 64 * 1024
DEADLINE = 30.0
SHORT_TIMEOUTS = ConnectionConfig(
    handshake_timeout=1.5, request_timeout=1.0, idle_timeout=3.0, keepalive_interval=1.0
)


def make_torrent(tmp_path: Path) -> tuple[bytes, Metainfo, bytes]:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=5)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "payload.bin", version="v1", piece_length=PIECE
    )
    return torrent, parse_torrent(torrent), data


# ------------------------------------------------------------ a scripted peer


class ScriptedPeer:
    """One TCP connection whose side we play by hand."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: PeerConnection
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = conn

    @classmethod
    async def dial(
        cls, port: int, meta: Metainfo, *, info_hash: bytes | None = None
    ) -> ScriptedPeer:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        conn = PeerConnection(
            peer_id=b"-XX0001-" + os.urandom(6).hex().encode(),
            info_hash=info_hash or meta.wire_info_hash,
            num_pieces=meta.num_pieces,
            initiator=True,
            now=0.0,
        )
        peer = cls(reader, writer, conn)
        peer.flush()
        return peer

    def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())

    def send(self, message: object) -> None:
        self.conn.send(message)  # type: ignore[arg-type]
        self.flush()

    async def next_event(self) -> Event:
        while (event := self.conn.next_event()) is None:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("closed by servent")
            self.conn.receive_data(data)
        return event

    async def wait_event(self, kind: type) -> Event:
        async with asyncio.timeout(DEADLINE):
            while not isinstance(event := await self.next_event(), kind):
                pass
            return event

    async def closed_by_remote(self) -> bool:
        """Read (and discard) until servent closes the connection; False on the deadline."""
        try:
            async with asyncio.timeout(DEADLINE):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


# ------------------------------------------------------------ leecher side


@contextlib.asynccontextmanager
async def fake_seeder(meta: Metainfo, behaviour: str) -> AsyncIterator[asyncio.Server]:
    """A peer that claims every piece: ``corrupt`` answers with junk, ``silent`` never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        conn = PeerConnection(
            peer_id=b"-XX0002-" + os.urandom(6).hex().encode(),
            info_hash=meta.wire_info_hash,
            num_pieces=meta.num_pieces,
            initiator=False,
            now=0.0,
        )
        try:
            while data := await reader.read(65536):
                conn.receive_data(data)
                while (event := conn.next_event()) is not None:
                    if isinstance(event, HandshakeReceived):
                        conn.send(HaveAll())
                        conn.send(Unchoke())
                    elif isinstance(event, Request) and behaviour == "corrupt":
                        conn.send(Piece(event.index, event.begin, os.urandom(event.length)))
                writer.write(conn.data_to_send())
        except (PeerWireError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    try:
        yield server
    finally:
        server.close()
        for writer in connections:
            writer.close()


async def test_corrupt_peer_is_banned_and_download_completes(tmp_path: Path) -> None:
    torrent, meta, data = make_torrent(tmp_path)
    with libtorrent_peer() as honest:
        await libtorrent_seeder(honest, torrent, tmp_path / "seed", upload_limit=1024 * 1024)
        async with (
            fake_seeder(meta, "corrupt") as corrupt,
            SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine,
        ):
            corrupt_port = corrupt.sockets[0].getsockname()[1]
            hub = EventHub()
            events = hub.subscribe()
            session = await engine.add_torrent(
                meta,
                tmp_path / "out",
                peers=[(LOOPBACK, corrupt_port), honest.address],
                watcher=TorrentWatcher("t", meta.name, hub.emit),  # as the node watches it
            )
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            stats = session.statistics()
            assert session.bans.is_banned(LOOPBACK, corrupt_port)
            assert not session.bans.is_banned(*honest.address)
            told = [events.get_nowait() for _ in range(events.pending)]
            banned = [e for e in told if isinstance(e, PeerBanned)]
            assert banned and {(e.host, e.port) for e in banned} == {(LOOPBACK, corrupt_port)}
            assert isinstance(told[-1], TorrentCompleted)  # pushed when it happened
    assert stats.hash_failures >= 1 and stats.banned >= 1
    assert stats.downloaded_from[f"{LOOPBACK}:{corrupt_port}"] > 0  # it did take part
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data


async def test_silent_seeder_is_worked_around_and_disconnected(tmp_path: Path) -> None:
    torrent, meta, data = make_torrent(tmp_path)
    with libtorrent_peer() as honest:
        await libtorrent_seeder(honest, torrent, tmp_path / "seed", upload_limit=2 * 1024 * 1024)
        async with (
            fake_seeder(meta, "silent") as silent,
            SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine,
        ):
            silent_port = silent.sockets[0].getsockname()[1]
            config = TorrentConfig(connection=SHORT_TIMEOUTS, max_dial_failures=1)
            session = await engine.add_torrent(
                meta, tmp_path / "out", config=config,
                peers=[(LOOPBACK, silent_port), honest.address],
            )  # fmt: skip
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            labels = {peer.label for peer in session.peers.values()}
            assert f"{LOOPBACK}:{silent_port}" not in labels
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data


# ------------------------------------------------------------ seeder side


def oversized_frame() -> bytes:
    return struct.pack(">IB", 16 * 1024 * 1024, 7) + b"\0" * 1024


async def misbehave(behaviour: str, port: int, meta: Metainfo) -> ScriptedPeer:
    """Open a connection to the seeder and break the protocol as ``behaviour`` says."""
    if behaviour == "wrong info-hash":
        return await ScriptedPeer.dial(port, meta, info_hash=os.urandom(20))
    if behaviour == "silent before handshake":
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        return ScriptedPeer(reader, writer, PeerConnection(
            peer_id=b"-XX0003-abcdefghijkl", info_hash=meta.wire_info_hash,
            initiator=True, now=0.0,
        ))  # fmt: skip
    peer = await ScriptedPeer.dial(port, meta)
    await peer.wait_event(HandshakeReceived)
    if behaviour == "oversized message":
        peer.writer.write(oversized_frame())
    elif behaviour == "request flood":
        for number in range(6000):  # choked: every request is refused, then too many
            peer.send(Request(number % meta.num_pieces, 0, 16384))
    elif behaviour == "request beyond the end":
        peer.send(Interested())
        await peer.wait_event(Unchoke)
        last = meta.num_pieces - 1
        peer.send(Request(last, meta.piece_size(last) // 2, 16384))  # past the last byte
    return peer


@pytest.mark.parametrize(
    "behaviour",
    [
        "wrong info-hash",
        "oversized message",
        "request beyond the end",
        "request flood",
        "silent before handshake",
    ],
)
async def test_hostile_client_is_disconnected_and_seeding_goes_on(
    tmp_path: Path, behaviour: str
) -> None:
    torrent, meta, data = make_torrent(tmp_path)
    config = EngineConfig(listen_host=LOOPBACK, connection=SHORT_TIMEOUTS)
    async with SwarmEngine(config) as engine:
        session = await engine.add_torrent(
            meta, tmp_path / "seed", config=TorrentConfig(connection=SHORT_TIMEOUTS)
        )
        assert session.complete
        hostile = await misbehave(behaviour, engine.port, meta)
        try:
            assert await hostile.closed_by_remote(), f"servent kept a peer that sent {behaviour}"
        finally:
            await hostile.close()
        with libtorrent_peer() as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            leecher.connect(handle, LOOPBACK, engine.port)
            await leecher.wait_complete(handle, DEADLINE)
        assert session.error is None
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data

"""Magnet links to files between servent engines on loopback (BEP 9).

A seeding engine serves its info dictionary; another engine, given only the
magnet link (with ``x.pe``), fetches it, verifies it against the info-hash
(and, for v2-only, fetches the piece layers with hash requests) and
downloads the payload.  A liar that sends metadata failing the hash is
dropped and the fetch completes from the honest seeder.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
from pathlib import Path

import pytest

from interop.reference_clients import wait_until, write_payload
from servent.codec.magnet import parse_magnet
from servent.codec.metainfo.build import TorrentVersion
from servent.errors import MetadataFetchError
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.metadata_fetch import MetadataFetch
from servent.proto.metadata_exchange import MetadataServer
from servent.proto.peerwire import (
    ExtensionHandshakeReceived,
    ExtensionMessage,
    ExtensionRegistry,
    HandshakeReceived,
    PeerConnection,
)
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
DEADLINE = 30.0


def make_share(root: Path, version: str = "hybrid") -> tuple[Path, dict[str, bytes]]:
    folder = root / "album"
    files = {"a.bin": 300_001, "sub/b.bin": 70_000}
    expected = {n: write_payload(folder / n, s, seed=i) for i, (n, s) in enumerate(files.items())}
    return folder, expected


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_engine_fetches_metadata_by_magnet_and_downloads(
    tmp_path: Path, version: str
) -> None:
    folder, expected = make_share(tmp_path / "seed")
    meta = create_torrent(folder, version=TorrentVersion(version), piece_length=32 * 1024)
    async with (
        SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as seeder,
        SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as leecher,
    ):
        await seeder.add_torrent(meta, tmp_path / "seed")
        magnet = dataclasses.replace(meta.to_magnet(), peers=((LOOPBACK, seeder.port),))
        fetched = await leecher.fetch_metadata(parse_magnet(magnet.to_uri()), timeout=DEADLINE)
        assert fetched.info_bytes == meta.info_bytes
        assert fetched.wire_info_hash == meta.wire_info_hash
        torrent = await leecher.add_torrent(fetched, tmp_path / "down")  # peers remembered
        async with asyncio.timeout(DEADLINE):
            await torrent.wait_complete()
    for name, data in expected.items():
        assert (tmp_path / "down" / "album" / name).read_bytes() == data


async def test_fetch_metadata_times_out_with_a_clear_error(tmp_path: Path) -> None:
    folder, _ = make_share(tmp_path / "seed")
    meta = create_torrent(folder)
    dead_tracker = "http://127.0.0.1:1/announce"  # a source that never answers
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as leecher:
        with pytest.raises(MetadataFetchError, match=r"no metadata .* within 1 s"):
            await leecher.fetch_metadata(
                dataclasses.replace(meta.to_magnet(), trackers=(dead_tracker,)), timeout=1.0
            )


async def test_fetch_metadata_gives_up_at_once_when_its_only_peers_are_unreachable(
    tmp_path: Path,
) -> None:
    folder, _ = make_share(tmp_path / "seed")
    meta = create_torrent(folder)
    magnet = dataclasses.replace(meta.to_magnet(), peers=((LOOPBACK, 1),))
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as leecher:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(MetadataFetchError, match=r"no source is left.*unreachable: 1"):
            await leecher.fetch_metadata(magnet, timeout=DEADLINE)
        assert loop.time() - started < DEADLINE / 2


class LyingMetadataPeer:
    """A listener that completes the handshake and serves wrong metadata of the right size."""

    def __init__(self, info_hash: bytes, size: int, *, hang_up: bool = False) -> None:
        self.info_hash = info_hash
        self.server = MetadataServer(bytes(size))  # zeros: fails the hash
        #: Announce the size, then close at the first request (a false size, no data).
        self.hang_up = hang_up
        self.port = 0
        self.served = 0
        self.hung_up = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        registry = ExtensionRegistry()
        registry.register("ut_metadata")
        conn = PeerConnection(
            peer_id=b"-XX0000-liarliarliar", info_hash=self.info_hash, initiator=False,
            extensions=registry, now=loop.time(),
        )  # fmt: skip
        try:
            async with asyncio.timeout(DEADLINE):
                while data := await reader.read(65536):
                    conn.receive_data(data, loop.time())
                    while (event := conn.next_event()) is not None:
                        if isinstance(event, HandshakeReceived):
                            conn.send_extension_handshake(
                                {"metadata_size": self.server.metadata_size}
                            )
                        elif isinstance(event, ExtensionMessage) and event.name == "ut_metadata":
                            if self.hang_up:
                                self.hung_up += 1
                                return
                            reply = self.server.handle(event.payload)
                            if reply is not None:
                                self.served += 1
                                conn.send_extension("ut_metadata", reply)
                        elif isinstance(event, ExtensionHandshakeReceived):
                            pass
                    writer.write(conn.data_to_send())
                    await writer.drain()
        except (OSError, TimeoutError, Exception):
            pass
        finally:
            writer.close()


async def test_liar_sending_bad_metadata_is_dropped_and_fetch_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, _ = make_share(tmp_path / "seed")
    meta = create_torrent(folder, version=TorrentVersion("v1"), piece_length=32 * 1024)
    liar = LyingMetadataPeer(meta.wire_info_hash, len(meta.info_bytes))
    await liar.start()
    caplog.set_level(logging.WARNING, logger="servent.net.metadata_fetch")
    try:
        async with (
            SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as seeder,
            SwarmEngine(EngineConfig(listen_host=LOOPBACK, metadata_parallel=1)) as leecher,
        ):
            await seeder.add_torrent(meta, tmp_path / "seed")
            # The liar first (one dial at a time), then the honest seeder.
            magnet = dataclasses.replace(
                meta.to_magnet(), peers=((LOOPBACK, liar.port), (LOOPBACK, seeder.port))
            )
            fetched = await leecher.fetch_metadata(magnet, timeout=DEADLINE)
            limits = leecher.limits
            assert limits is not None
            # Every dial took a slot of the node's connection budget and gave it back.
            await wait_until(lambda: limits.connections == 0, "slots to be released", 5.0)
    finally:
        await liar.close()
    assert fetched.info_bytes == meta.info_bytes
    assert liar.served >= 1, "the liar was never asked"
    assert any("fails the info-hash" in r.getMessage() for r in caplog.records)


async def test_multi_piece_metadata_from_a_liar_and_an_honest_peer_blames_only_the_liar(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "seed" / "many"
    for number in range(500):  # a long file list: metadata of several 16 KiB pieces
        write_payload(folder / f"track-{number:03d}-with-a-rather-long-descriptive-name.bin", 10)
    meta = create_torrent(folder, version=TorrentVersion("v1"), piece_length=16 * 1024)
    assert len(meta.info_bytes) > 2 * 16 * 1024
    caplog.set_level(logging.WARNING, logger="servent.net.metadata_fetch")
    for attempt in range(3):  # who answers first varies; each run must blame only the liar
        liar = LyingMetadataPeer(meta.wire_info_hash, len(meta.info_bytes))
        await liar.start()
        try:
            async with (
                SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as seeder,
                SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as leecher,
            ):
                await seeder.add_torrent(meta, tmp_path / "seed")
                peers = [(LOOPBACK, liar.port), (LOOPBACK, seeder.port)]
                magnet = dataclasses.replace(
                    meta.to_magnet(), peers=tuple(peers[::-1] if attempt % 2 else peers)
                )
                fetched = await leecher.fetch_metadata(magnet, timeout=DEADLINE)
                honest = f"{LOOPBACK}:{seeder.port}"
        finally:
            await liar.close()
        assert fetched.info_bytes == meta.info_bytes
        blamed = [r.getMessage() for r in caplog.records if "fails the info-hash" in r.getMessage()]
        assert not any(honest in message for message in blamed), blamed


async def test_a_false_metadata_size_then_silence_does_not_lock_honest_peers_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, _ = make_share(tmp_path / "seed")
    meta = create_torrent(folder, version=TorrentVersion("v1"), piece_length=32 * 1024)
    liar = LyingMetadataPeer(meta.wire_info_hash, len(meta.info_bytes) + 7, hang_up=True)
    await liar.start()
    caplog.set_level(logging.INFO, logger="servent.net.metadata_fetch")
    try:
        async with (
            SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as seeder,
            SwarmEngine(EngineConfig(listen_host=LOOPBACK, metadata_parallel=1)) as leecher,
        ):
            await seeder.add_torrent(meta, tmp_path / "seed")
            # The liar first: its size is the one the fetch starts with.
            magnet = dataclasses.replace(
                meta.to_magnet(), peers=((LOOPBACK, liar.port), (LOOPBACK, seeder.port))
            )
            fetched = await leecher.fetch_metadata(magnet, timeout=DEADLINE)
    finally:
        await liar.close()
    assert fetched.info_bytes == meta.info_bytes
    assert liar.hung_up == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("no peer left with the first metadata_size" in m for m in messages), messages


async def _stop_turns_after_a_candidate(turns: int) -> str:
    """Cancel a running fetch ``turns`` loop turns after a candidate wakes its pump."""
    magnet = parse_magnet("magnet:?xt=urn:btih:" + "ab" * 20)
    with socket.socket() as closed:  # bound, never listening: a dial to it is refused
        closed.bind((LOOPBACK, 0))
        fetch = MetadataFetch(magnet, peer_id=b"-SV0000-" + b"x" * 12)
        task = asyncio.get_running_loop().create_task(fetch.run())
        await wait_until(lambda: _pump_of_fetch() is not None, "the fetch pump", 5.0)
        await asyncio.sleep(0)  # the pump's first pass: now waiting for a wake
        fetch.add_peers([closed.getsockname()[:2]])
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait([task], timeout=2.0)  # waits without cancelling it again
        if task.done():
            return "stopped" if task.cancelled() else f"ended by itself: {task.exception()!r}"
        pump = _pump_of_fetch()  # the pump that ignored its cancellation
        if pump is not None:
            pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return "cancellation lost"


def _pump_of_fetch() -> asyncio.Task[object] | None:
    return next((t for t in asyncio.all_tasks() if t.get_name() == "metadata fetch pump"), None)


async def test_fetch_stopped_as_a_candidate_arrives_stops() -> None:
    """Regression: on Python 3.11 ``wait_for`` lost a cancellation that came in the turns
    where a candidate woke the pump; the pump dialled on into its closing task group and
    the fetch ended in a RuntimeError instead of stopping."""
    outcomes = [await _stop_turns_after_a_candidate(turns) for turns in range(8)]
    assert outcomes == ["stopped"] * 8

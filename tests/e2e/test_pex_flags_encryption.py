"""A peer that PEX flags as preferring encryption is dialled with MSE only.

Two servent seeders with encryption ``enabled`` (which, like libtorrent, pick
plaintext when the dialler offers both).  A downloader, also ``enabled``,
knows both as PEX addresses, one flagged "prefers encryption" (BEP 11, 0x01):
it offers that one RC4 alone and gets an encrypted stream, and the other one
the usual choice and gets plaintext.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from interop.reference_clients import LOOPBACK, write_payload
from servent.net.encrypted_transport import EncryptedTransport
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentConfig
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

SIZE = 2 * 1024 * 1024
DEADLINE = 20.0


async def test_peer_flagged_as_preferring_encryption_gets_an_rc4_stream(tmp_path: Path) -> None:
    write_payload(tmp_path / "a" / "payload.bin", SIZE, seed=12)
    meta = create_torrent(tmp_path / "a" / "payload.bin", piece_length=64 * 1024)
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "payload.bin", tmp_path / "b")
    config = EngineConfig(listen_host=LOOPBACK, trackers=False, encryption="enabled")
    async with (
        SwarmEngine(config) as prefers,
        SwarmEngine(config) as plain,
        SwarmEngine(config) as downloader,
    ):
        await prefers.add_torrent(meta, tmp_path / "a")
        await plain.add_torrent(meta, tmp_path / "b")
        session = await downloader.add_torrent(
            meta, tmp_path / "out", config=TorrentConfig(download_rate=32 * 1024)
        )
        encrypted, plaintext = (LOOPBACK, prefers.port), (LOOPBACK, plain.port)
        session.add_peers([encrypted, plaintext], source="pex")
        session.known.note_flags(encrypted, seed=True, prefers_encryption=True)
        session.known.note_flags(plaintext, seed=True, prefers_encryption=False)
        deadline = time.monotonic() + DEADLINE
        while {p.dialled for p in session.open_peers} != {encrypted, plaintext}:
            assert time.monotonic() < deadline, "the downloader did not dial both seeders"
            await asyncio.sleep(0.05)  # polling a condition under a bounded deadline
        transports = {p.dialled: p.session.transport for p in session.open_peers}
        assert isinstance(transports[encrypted], EncryptedTransport)
        assert not isinstance(transports[plaintext], EncryptedTransport)
        assert not session.complete

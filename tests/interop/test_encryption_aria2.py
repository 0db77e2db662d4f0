"""Encrypted transfers with aria2: both sides require MSE with RC4.

aria2 runs with ``--bt-require-crypto=true --bt-min-crypto-level=arc4`` (it
refuses plaintext peers and the plaintext crypto method), servent with
``encryption="required"``.  servent downloads from an aria2 seeder it dials,
and an aria2 leecher (finding servent through a loopback tracker) downloads
from servent; files byte-identical.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from reference_clients import (
    LOOPBACK,
    aria2_leecher_args,
    aria2_seeder_args,
    aria2c,
    create_torrent_with_libtorrent,
    free_port,
    loopback_tracker,
    write_payload,
)

from servent.codec.metainfo import parse_torrent
from servent.net import encrypted_transport
from servent.net.engine import EngineConfig, SwarmEngine

pytestmark = pytest.mark.interop

DEADLINE = 60.0
SIZE = 1_500_001
ARIA2_CRYPTO = ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]
REQUIRED = EngineConfig(listen_host=LOOPBACK, encryption="required")


def with_crypto(args: list[str]) -> list[str]:
    """aria2's arguments with the crypto options before the torrent file (the last one)."""
    return [*args[:-1], *ARIA2_CRYPTO, args[-1]]


def make_torrent(tmp_path: Path) -> tuple[Path, bytes]:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=17)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "payload.bin", version="v1", piece_length=32 * 1024
    )
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent)
    return torrent_file, data


async def test_servent_downloads_from_aria2_with_encryption_required(tmp_path: Path) -> None:
    torrent_file, data = make_torrent(tmp_path)
    before = encrypted_transport.handshake_outcomes["rc4"]
    port = free_port()
    args = with_crypto(aria2_seeder_args(torrent_file, tmp_path / "seed", port))
    async with aria2c(args, port) as aria2:
        await aria2.wait_listening()
        async with SwarmEngine(REQUIRED) as engine:
            session = await engine.add_torrent(
                parse_torrent(torrent_file.read_bytes()), tmp_path / "out", peers=[aria2.address]
            )
            try:
                await asyncio.wait_for(session.wait_complete(), DEADLINE)
            except TimeoutError:
                pytest.fail(f"no download from aria2: {session.statistics()} {aria2.log_tail()}")
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
    assert encrypted_transport.handshake_outcomes["rc4"] > before


async def test_aria2_downloads_from_servent_with_encryption_required(tmp_path: Path) -> None:
    torrent_file, data = make_torrent(tmp_path)
    meta = parse_torrent(torrent_file.read_bytes())
    before = encrypted_transport.handshake_outcomes["rc4"]
    async with loopback_tracker() as tracker, SwarmEngine(REQUIRED) as engine:
        session = await engine.add_torrent(meta, tmp_path / "seed")
        assert session.complete
        tracker.add_peer(meta.wire_info_hash, LOOPBACK, engine.port)
        port = free_port()
        args = with_crypto(aria2_leecher_args(torrent_file, tmp_path / "out", port, tracker.url))
        async with aria2c(args, port) as aria2:
            code = await aria2.wait(DEADLINE)
            assert code == 0, aria2.log_tail()
        assert session.statistics().uploaded >= SIZE
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
    assert encrypted_transport.handshake_outcomes["rc4"] > before

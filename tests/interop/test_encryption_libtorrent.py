"""Message stream encryption in whole transfers: servent and libtorrent with
encryption REQUIRED on both sides (RC4 only), in both directions, and
servent against servent.  Files must arrive byte-identical, and the streams
must really have been RC4 (a forced libtorrent refuses anything else; the
handshake counters of :mod:`servent.net.encrypted_transport` confirm it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    wait_until,
    write_payload,
)

from servent.codec.metainfo import parse_torrent
from servent.net import encrypted_transport
from servent.net.engine import EngineConfig, SwarmEngine

pytestmark = pytest.mark.interop

DEADLINE = 60.0
SIZE = 2 * 1024 * 1024 + 12_345
#: libtorrent: pe_forced in and out, RC4 only.
FORCED_RC4 = {"in_enc_policy": 0, "out_enc_policy": 0, "allowed_enc_level": 2}
REQUIRED = EngineConfig(listen_host=LOOPBACK, encryption="required")


def make_torrent(tmp_path: Path, version: str = "hybrid") -> tuple[bytes, bytes]:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=3)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "payload.bin", version=version, piece_length=64 * 1024
    )
    return torrent, data


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_servent_downloads_from_libtorrent_with_encryption_required(
    tmp_path: Path, version: str
) -> None:
    torrent, data = make_torrent(tmp_path, version)
    before = encrypted_transport.handshake_outcomes["rc4"]
    with libtorrent_peer(**FORCED_RC4) as seeder:
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        async with SwarmEngine(REQUIRED) as engine:
            session = await engine.add_torrent(
                parse_torrent(torrent), tmp_path / "out", peers=[seeder.address]
            )
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
    assert encrypted_transport.handshake_outcomes["rc4"] > before


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_libtorrent_downloads_from_servent_with_encryption_required(
    tmp_path: Path, version: str
) -> None:
    torrent, data = make_torrent(tmp_path, version)
    before = encrypted_transport.handshake_outcomes["rc4"]
    async with SwarmEngine(REQUIRED) as engine:
        session = await engine.add_torrent(parse_torrent(torrent), tmp_path / "seed")
        assert session.complete
        with libtorrent_peer(**FORCED_RC4) as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            leecher.connect(handle, LOOPBACK, engine.port)
            await leecher.wait_complete(handle, DEADLINE)
        assert session.statistics().uploaded >= SIZE
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
    assert encrypted_transport.handshake_outcomes["rc4"] > before


@pytest.mark.parametrize(
    ("seeder_setting", "leecher_setting", "outcome"),
    [
        ("required", "required", "rc4"),
        ("enabled", "required", "rc4"),
        ("enabled", "enabled", "obfuscated"),
        ("enabled", "off", "plain"),
        ("off", "enabled", "plain fallback"),
    ],
)
async def test_servent_to_servent_encryption_settings(
    tmp_path: Path, seeder_setting: str, leecher_setting: str, outcome: str
) -> None:
    torrent, data = make_torrent(tmp_path)
    meta = parse_torrent(torrent)
    before = encrypted_transport.handshake_outcomes[outcome]
    async with (
        SwarmEngine(EngineConfig(listen_host=LOOPBACK, encryption=seeder_setting)) as seeder,
        SwarmEngine(EngineConfig(listen_host=LOOPBACK, encryption=leecher_setting)) as leecher,
    ):
        await seeder.add_torrent(meta, tmp_path / "seed")
        session = await leecher.add_torrent(meta, tmp_path / "out", peers=[(LOOPBACK, seeder.port)])
        await asyncio.wait_for(session.wait_complete(), DEADLINE)
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
    assert encrypted_transport.handshake_outcomes[outcome] > before


async def test_required_refuses_a_plain_peer_and_off_refuses_an_encrypted_one(
    tmp_path: Path,
) -> None:
    torrent, _data = make_torrent(tmp_path)
    meta = parse_torrent(torrent)
    for seeder_setting, leecher_setting in (("required", "off"), ("off", "required")):
        async with (
            SwarmEngine(EngineConfig(listen_host=LOOPBACK, encryption=seeder_setting)) as seeder,
            SwarmEngine(EngineConfig(listen_host=LOOPBACK, encryption=leecher_setting)) as leecher,
        ):
            await seeder.add_torrent(meta, tmp_path / "seed")
            session = await leecher.add_torrent(
                meta, tmp_path / "out", peers=[(LOOPBACK, seeder.port)]
            )
            entry = session.known.get((LOOPBACK, seeder.port))
            assert entry is not None
            await wait_until(
                lambda entry=entry: entry.failures >= 2,  # type: ignore[misc]
                "two refused dials",
                DEADLINE,
            )
            assert session.have_bytes == 0 and not session.open_peers

"""uTP interop with libtorrent on loopback: libtorrent's TCP is off, so only uTP can carry data.

Both directions transfer a multi-file torrent byte for byte; each test also
proves the connection was uTP, on both sides: libtorrent flags the peer with
``utp_socket`` and servent's peer session runs on a uTP transport.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    wait_until,
    write_content,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentSession

pytestmark = pytest.mark.interop

DEADLINE = 90.0
FILES = {"a.bin": 3_000_000, "sub/b.bin": 1_200_001, "sub/c.bin": 16_384 * 3 + 5}
#: libtorrent's ``peer_info::utp_socket`` flag (bit 17; the bindings do not name it).
LT_UTP_SOCKET = 1 << 17
RC4_ENCRYPTED = 1 << 19  # peer_info::rc4_encrypted
UTP_ONLY: dict[str, Any] = {
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
}


def _assert_identical(folder: Path, expected: dict[str, bytes]) -> None:
    for name, data in expected.items():
        assert (folder / name).read_bytes() == data, f"{name} differs"


def _utp_peers(session: TorrentSession) -> int:
    return sum(
        1
        for peer in session.open_peers
        if peer.session.transport is not None
        and peer.session.transport.get_extra_info("transport") == "utp"
    )


def _utp_datagram_sizes(session: TorrentSession, seen: set[int]) -> set[int]:
    """Add the current datagram size of each uTP peer connection to ``seen``."""
    for peer in session.open_peers:
        transport = peer.session.transport
        if transport is not None and transport.get_extra_info("transport") == "utp":
            seen.add(transport.get_extra_info("utp_connection").mtu.size)
    return seen


def _lt_flags(handle: Any) -> list[int]:
    return [int(p.flags) for p in handle.get_peer_info()]


@pytest.mark.parametrize("encryption", ["off", "enabled"])
async def test_servent_downloads_from_libtorrent_over_utp(tmp_path: Path, encryption: str) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    meta = parse_torrent(torrent)
    config = EngineConfig(
        listen_host=LOOPBACK, utp=True, utp_preference="prefer-utp", encryption=encryption
    )
    with libtorrent_peer(**UTP_ONLY) as seeder:
        handle = await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        async with SwarmEngine(config) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out", peers=[seeder.address])
            await wait_until(lambda: _utp_peers(session) > 0, "a uTP peer", DEADLINE)
            lt_flags = _lt_flags(handle)
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            stats = session.statistics()
            assert engine.dialer.outcomes["utp"] >= 1
    assert stats.complete and stats.hash_failures == 0
    assert lt_flags and all(flags & LT_UTP_SOCKET for flags in lt_flags)
    _assert_identical(tmp_path / "out" / "content", expected)


async def test_libtorrent_downloads_from_servent_over_utp(tmp_path: Path) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="hybrid")
    meta = parse_torrent(torrent)
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK, utp=True)) as engine:
        session = await engine.add_torrent(meta, tmp_path / "seed")
        assert session.complete
        assert engine.utp is not None
        with libtorrent_peer(**UTP_ONLY) as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            handle.connect_peer((LOOPBACK, engine.port), 0, 0)  # default flags: uTP allowed
            await leecher.wait_for(lambda: _lt_flags(handle), "libtorrent to connect", DEADLINE)
            lt_flags = _lt_flags(handle)
            # libtorrent lists a peer as soon as it dials; servent opens its side only
            # after the BitTorrent handshake, so wait for that instead of sampling once.
            await leecher.wait_for(lambda: _utp_peers(session), "servent's uTP peer", DEADLINE)
            utp_peers = _utp_peers(session)
            # servent's path MTU search climbs to the Ethernet ceiling on loopback, and
            # libtorrent takes 1,472-byte datagrams (a cut one would fail its hash checks).
            sizes: set[int] = set()
            await leecher.wait_for(
                lambda: 1472 in _utp_datagram_sizes(session, sizes), "1,472-byte uTP", DEADLINE
            )
            await leecher.wait_complete(handle, DEADLINE)
        assert engine.utp.accepted >= 1
        assert session.statistics().uploaded >= sum(FILES.values())
    assert all(flags & LT_UTP_SOCKET for flags in lt_flags)
    assert utp_peers >= 1
    _assert_identical(tmp_path / "out" / "content", expected)


async def test_download_rate_limit_applies_over_utp(tmp_path: Path) -> None:
    """The engine's global download limit holds on a uTP connection (reading pauses,
    which closes the uTP receive window)."""
    expected = write_content(tmp_path / "seed", {"a.bin": 2_000_000})
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    meta = parse_torrent(torrent)
    rate = 500_000
    config = EngineConfig(
        listen_host=LOOPBACK, utp=True, utp_preference="prefer-utp", download_rate=rate
    )
    with libtorrent_peer(**UTP_ONLY) as seeder:
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        async with SwarmEngine(config) as engine:
            loop = asyncio.get_running_loop()
            started = loop.time()
            session = await engine.add_torrent(meta, tmp_path / "out", peers=[seeder.address])
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            elapsed = loop.time() - started
            assert engine.dialer.outcomes["utp"] >= 1 and not engine.dialer.outcomes["tcp"]
    # 2 MB at 0.5 MB/s: about 4 s; the bucket's initial burst allows a little less.
    assert elapsed >= 2.5, elapsed
    _assert_identical(tmp_path / "out" / "content", expected)


async def test_upload_rate_limit_applies_over_utp(tmp_path: Path) -> None:
    expected = write_content(tmp_path / "seed", {"a.bin": 2_000_000})
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    meta = parse_torrent(torrent)
    config = EngineConfig(listen_host=LOOPBACK, utp=True, upload_rate=500_000)
    async with SwarmEngine(config) as engine:
        await engine.add_torrent(meta, tmp_path / "seed")
        with libtorrent_peer(**UTP_ONLY) as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            loop = asyncio.get_running_loop()
            started = loop.time()
            handle.connect_peer((LOOPBACK, engine.port), 0, 0)
            await leecher.wait_complete(handle, DEADLINE)
            elapsed = loop.time() - started
        assert engine.utp is not None and engine.utp.accepted >= 1
    assert elapsed >= 2.5, elapsed  # 2 MB at 0.5 MB/s: about 4 s
    _assert_identical(tmp_path / "out" / "content", expected)


async def test_prefer_utp_falls_back_to_tcp_for_a_peer_without_utp(tmp_path: Path) -> None:
    expected = write_content(tmp_path / "seed", {"a.bin": 300_000})
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    meta = parse_torrent(torrent)
    config = EngineConfig(listen_host=LOOPBACK, utp=True, utp_preference="prefer-utp")
    with libtorrent_peer() as seeder:  # the reference settings: TCP only
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        async with SwarmEngine(config) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out", peers=[seeder.address])
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            outcomes = dict(engine.dialer.outcomes)
    assert outcomes.get("utp failed", 0) >= 1 and outcomes.get("tcp", 0) >= 1, outcomes
    _assert_identical(tmp_path / "out" / "content", expected)


async def test_libtorrent_with_forced_rc4_downloads_from_servent_over_utp(tmp_path: Path) -> None:
    """libtorrent dials with MSE forced to RC4: the MSE layer runs on the uTP transport."""
    expected = write_content(tmp_path / "seed", {"a.bin": 700_000})
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    config = EngineConfig(listen_host=LOOPBACK, utp=True, encryption="required")
    forced_rc4 = {"in_enc_policy": 0, "out_enc_policy": 0, "allowed_enc_level": 2}
    async with SwarmEngine(config) as engine:
        session = await engine.add_torrent(parse_torrent(torrent), tmp_path / "seed")
        with libtorrent_peer(**UTP_ONLY, **forced_rc4) as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            handle.connect_peer((LOOPBACK, engine.port), 0, 0)
            await leecher.wait_for(
                lambda: any(f & RC4_ENCRYPTED for f in _lt_flags(handle)),
                "libtorrent's RC4 connection",
                DEADLINE,
            )
            lt_flags = _lt_flags(handle)
            await leecher.wait_for(lambda: _utp_peers(session), "servent's uTP peer", DEADLINE)
            utp_peers = _utp_peers(session)
            await leecher.wait_complete(handle, DEADLINE)
    assert all(flags & LT_UTP_SOCKET and flags & RC4_ENCRYPTED for flags in lt_flags), lt_flags
    assert utp_peers >= 1
    _assert_identical(tmp_path / "out" / "content", expected)

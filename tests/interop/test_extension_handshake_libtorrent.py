"""libtorrent and a BEP 10 handshake sent again on an open connection (``docs/relay.md``).

servent sends its changed advert only to servent peers; this checks that a
second (whole) handshake would not cost the connection with libtorrent either.
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
    write_content,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine

pytestmark = pytest.mark.interop

DEADLINE = 60.0
SIZE = 2 * 1024 * 1024 + 77


async def test_libtorrent_keeps_the_connection_after_a_repeated_extension_handshake(
    tmp_path: Path,
) -> None:
    expected = write_content(tmp_path / "seed", {"a.bin": SIZE})
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", piece_length=32 * 1024)
    meta = parse_torrent(torrent)
    with libtorrent_peer() as seeder:  # slow enough that the transfer outlasts the handshakes
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed", upload_limit=512 * 1024)
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out", peers=[seeder.address])
            await wait_until(lambda: session.open_peers, "a connection to libtorrent")
            (peer,) = session.open_peers
            await wait_until(lambda: peer.session.conn.remote_extensions, "its BEP 10 handshake")
            for _ in range(3):
                session._send_extension_handshake(peer)
                peer.session.schedule_flush()
            await asyncio.wait_for(session.wait_have(SIZE // 2), DEADLINE)
            assert not peer.session.is_closed  # the same connection carried on
            assert session.open_peers == [peer]
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            stats = session.statistics()
    assert stats.complete and stats.hash_failures == 0
    assert (tmp_path / "out" / "content" / "a.bin").read_bytes() == expected["a.bin"]

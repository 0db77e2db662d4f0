"""libtorrent fetches the info dictionary of a servent-seeded torrent (BEP 9).

libtorrent is given nothing but a magnet link whose ``x.pe`` names servent's
listening address: the metadata must come from servent's ``ut_metadata``
answers (v1, v2 and hybrid torrents), the v2 piece layers from its answers
to BEP 52 hash requests, and then the payload, byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import libtorrent as lt
import pytest
from reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    write_payload,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine

pytestmark = pytest.mark.interop

DEADLINE = 60.0
FILES = {"a.bin": 700_001, "sub/b.bin": 16_384 * 5 + 3}


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_libtorrent_fetches_metadata_from_servent_by_magnet(
    tmp_path: Path, version: str
) -> None:
    expected = {
        name: write_payload(tmp_path / "seed" / "content" / name, size, seed=number)
        for number, (name, size) in enumerate(FILES.items(), start=1)
    }
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "content", version=version, piece_length=32 * 1024
    )
    meta = parse_torrent(torrent)
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
        session = await engine.add_torrent(meta, tmp_path / "seed")
        assert session.complete
        magnet = f"{meta.magnet()}&x.pe={LOOPBACK}:{engine.port}"
        with libtorrent_peer() as leecher:
            params = lt.parse_magnet_uri(magnet)
            params.save_path = str(tmp_path / "out")
            handle = leecher.session.add_torrent(params)
            await leecher.wait_for(
                lambda: handle.status().has_metadata, "libtorrent to receive the metadata"
            )
            info = handle.torrent_file()
            assert info is not None
            assert bytes(info.info_section()) == meta.info_bytes
            await leecher.wait_complete(handle, DEADLINE)
            served = session.extensions.metadata_pieces_served
            answered, rejected = session.hash_server.answered, session.hash_server.rejected
        assert served >= 1, "the metadata did not come from servent"
        if version != "v1":
            # the piece layers are not in the info dictionary: BEP 52 hash requests fetch them
            assert answered >= 1 and rejected == 0, (answered, rejected)
    for name, data in expected.items():
        assert (tmp_path / "out" / "content" / name).read_bytes() == data

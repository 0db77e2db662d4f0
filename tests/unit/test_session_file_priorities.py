"""TorrentSession.set_file_priorities on a session without peers: figures and completion."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from servent.codec.metainfo import parse_torrent
from servent.net.torrent_session import TorrentSession
from servent.storage import MemoryResumeStore, TorrentStorage
from servent.storage.torrent_creator import create_torrent


async def test_skipping_the_missing_file_completes_and_raising_it_reopens(tmp_path: Path) -> None:
    source = tmp_path / "source" / "pair"
    source.mkdir(parents=True)
    (source / "here.bin").write_bytes(os.urandom(200_000))
    (source / "later.bin").write_bytes(os.urandom(100_000))
    metainfo = parse_torrent(create_torrent(source).to_bytes())
    save = tmp_path / "save"
    (save / "pair").mkdir(parents=True)
    shutil.copy(source / "here.bin", save / "pair" / "here.bin")  # one file already there
    later = next(i for i, f in enumerate(metainfo.files) if f.path[-1] == "later.bin")
    everything = tuple(1 for _ in metainfo.files)
    skip_later = tuple(0 if i == later else 1 for i in range(len(metainfo.files)))

    async with TorrentStorage(metainfo, save, resume_store=MemoryResumeStore()) as storage:
        session = TorrentSession(metainfo, storage, peer_id=b"-SV0000-" + b"0" * 12)
        assert not session.complete
        full = session.wanted_bytes
        have = session.have_bytes  # here.bin's pieces (the last one padded, BEP 47)
        assert 200_000 <= have < full

        session.set_file_priorities(skip_later)
        assert session.complete and session.picker.is_complete()
        assert session.have_bytes == session.wanted_bytes == have
        async with asyncio.timeout(5):
            await session.wait_complete()
        assert storage.file_priorities[later] == 0

        session.set_file_priorities(everything)
        assert not session.complete
        assert (session.wanted_bytes, session.have_bytes) == (full, have)
        assert storage.file_priorities == everything
        assert not session.picker.is_complete()
        session.stop()

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


async def test_file_priority_levels_order_the_pieces(tmp_path: Path) -> None:
    """Levels, not just on/off: a piece takes the highest priority of its files."""
    source = tmp_path / "source" / "trio"
    source.mkdir(parents=True)
    for name, size in (("a.bin", 100_000), ("b.bin", 100_000), ("c.bin", 100_000)):
        (source / name).write_bytes(os.urandom(size))
    metainfo = parse_torrent(create_torrent(source, piece_length=16_384).to_bytes())
    index = {f.path[-1]: i for i, f in enumerate(metainfo.files) if not f.pad}
    levels = {"a.bin": 1, "b.bin": 7, "c.bin": 0}
    priorities = tuple(levels.get(f.path[-1], 0) for f in metainfo.files)

    def pieces_of(name: str) -> range:
        entry = metainfo.files[index[name]]
        first = entry.offset // metainfo.piece_length
        return range(first, (entry.offset + entry.length - 1) // metainfo.piece_length + 1)

    async with TorrentStorage(
        metainfo, tmp_path / "save", resume_store=MemoryResumeStore(), file_priorities=priorities
    ) as storage:
        by_piece = storage.piece_priorities()
        assert {by_piece[i] for i in pieces_of("b.bin")} == {7}
        assert {by_piece[i] for i in pieces_of("c.bin")} == {0}
        assert {by_piece[i] for i in pieces_of("a.bin")} == {1}
        session = TorrentSession(metainfo, storage, peer_id=b"-SV0000-" + b"0" * 12)
        assert [session.picker.priority(i) for i in range(metainfo.num_pieces)] == by_piece
        session.set_file_priorities(tuple(7 - p if p else 0 for p in priorities))  # swap a, b
        assert {session.picker.priority(i) for i in pieces_of("a.bin")} == {6}
        assert {session.picker.priority(i) for i in pieces_of("b.bin")} == {0}
        session.stop()

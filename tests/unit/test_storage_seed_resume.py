"""Seeding a freshly created torrent opens storage without hashing the files again."""

from __future__ import annotations

import os
from pathlib import Path

from servent.storage import MemoryResumeStore, TorrentStorage
from servent.storage.seed_resume import create_seeding_torrent, resume_key


def _folder(root: Path) -> Path:
    folder = root / "share"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (folder / "sub" / "b.bin").write_bytes(os.urandom(1024 * 1024 + 5))
    (folder / "empty").write_bytes(b"")
    return folder


async def test_created_torrent_seeds_without_a_recheck(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    metainfo, record = create_seeding_torrent(folder)
    store = MemoryResumeStore()
    store.save(resume_key(metainfo), record.encode())
    async with TorrentStorage(metainfo, tmp_path, resume_store=store) as storage:
        assert storage.is_seed()
        assert storage.statistics()["pieces_checked_from_disk"] == 0
        assert storage.file_path(0).name == "a.bin"  # real names: complete
        assert await storage.read_block(0, 0, 16) == (folder / "a.bin").read_bytes()[:16]


async def test_without_the_record_storage_rechecks_every_piece(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    metainfo, _ = create_seeding_torrent(folder)
    async with TorrentStorage(metainfo, tmp_path, resume_store=MemoryResumeStore()) as storage:
        assert storage.is_seed()
        assert storage.statistics()["pieces_checked_from_disk"] == metainfo.num_pieces


async def test_file_changed_after_creation_is_verified_again(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    metainfo, record = create_seeding_torrent(folder)
    store = MemoryResumeStore()
    store.save(resume_key(metainfo), record.encode())
    changed = folder / "sub" / "b.bin"
    data = bytearray(changed.read_bytes())
    data[0] ^= 0xFF
    changed.write_bytes(bytes(data))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    async with TorrentStorage(metainfo, tmp_path, resume_store=store) as storage:
        checked = storage.statistics()["pieces_checked_from_disk"]
        index = next(i for i, f in enumerate(metainfo.files) if f.path[-1] == "b.bin")
        entry = metainfo.files[index]
        first = entry.offset // metainfo.piece_length
        assert 0 < checked < metainfo.num_pieces  # only b.bin's pieces
        assert first not in storage.have  # its corrupted first piece is not trusted
        assert not storage.is_seed()
        assert storage.file_path(index).name == "b.bin.part"

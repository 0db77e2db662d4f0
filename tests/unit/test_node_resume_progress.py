"""Progress of a stopped torrent from its resume record, without its files."""

from __future__ import annotations

import os
from pathlib import Path

from servent.codec.bitfield import Bitfield
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.node.resume_progress import stored_progress
from servent.storage import MemoryResumeStore
from servent.storage.resume import ResumeRecord
from servent.storage.seed_resume import create_seeding_torrent, resume_key


def _torrent(tmp_path: Path) -> tuple[Metainfo, bytes]:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "a").write_bytes(os.urandom(100_000))
    (folder / "b").write_bytes(os.urandom(50_000))
    created, record = create_seeding_torrent(folder)
    return parse_torrent(created.to_bytes()), record.encode()


def test_no_record_means_nothing_verified_and_everything_wanted(tmp_path: Path) -> None:
    metainfo, _ = _torrent(tmp_path)
    progress = stored_progress(MemoryResumeStore(), metainfo)
    assert progress.have_bytes == 0
    assert progress.wanted_bytes == metainfo.total_length
    expected = tuple(1.0 if f.pad else 0.0 for f in metainfo.files)  # pad files: nothing to get
    assert progress.file_progress == expected


def test_a_full_record_with_one_file_skipped(tmp_path: Path) -> None:
    metainfo, data = _torrent(tmp_path)
    store = MemoryResumeStore()
    store.save(resume_key(metainfo), data)
    priorities = [0 if f.path[-1] == "b" else 1 for f in metainfo.files]
    progress = stored_progress(store, metainfo, priorities)
    assert progress.have_bytes == progress.wanted_bytes
    assert 100_000 <= progress.wanted_bytes < metainfo.total_length
    assert set(progress.file_progress) == {1.0}


def test_hostile_record_is_ignored(tmp_path: Path) -> None:
    metainfo, _ = _torrent(tmp_path)
    store = MemoryResumeStore()
    for junk in (b"not bencode", b"d7:versioni1ee", b"de"):
        store.save(resume_key(metainfo), junk)
        assert stored_progress(store, metainfo).have_bytes == 0
    wrong_length = Bitfield(metainfo.num_pieces + 9, all_set=True).to_bytes()
    record = ResumeRecord(
        bytes.fromhex(resume_key(metainfo)),
        metainfo.piece_length,
        metainfo.num_pieces,
        wrong_length,
        ((0, 0),) * len(metainfo.files),
        (1,) * len(metainfo.files),
    )
    store.save(resume_key(metainfo), record.encode())
    assert stored_progress(store, metainfo).have_bytes == 0

"""``servent seed FOLDER`` hashes the folder once: storage opens from the creation's record."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from servent.cli.commands.get import resume_store
from servent.cli.commands.seed import _torrent_and_folder
from servent.storage import TorrentStorage


@pytest.mark.parametrize("single_file", [False, True])
async def test_seeding_a_new_torrent_checks_no_piece_from_disk(
    tmp_path: Path, single_file: bool
) -> None:
    if single_file:
        target = tmp_path / "share" / "movie.bin"
        target.parent.mkdir()
        target.write_bytes(os.urandom(2 * 1024 * 1024 + 3))
    else:
        target = tmp_path / "share" / "album"
        (target / "cd1").mkdir(parents=True)
        (target / "cd1" / "a.bin").write_bytes(os.urandom(1024 * 1024 + 7))
        (target / "b.bin").write_bytes(os.urandom(300_000))
    args = argparse.Namespace(data_dir=tmp_path / "data")
    meta, data_dir = _torrent_and_folder(args, target, None)
    assert data_dir == target.resolve().parent
    assert not (data_dir / ".servent").exists()  # nothing of servent's in the user's folder
    store = resume_store(args, data_dir, meta)
    async with TorrentStorage(meta, data_dir, resume_store=store) as storage:
        assert storage.is_seed()
        assert storage.statistics()["pieces_checked_from_disk"] == 0

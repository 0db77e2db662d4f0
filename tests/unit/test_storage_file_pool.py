"""FilePool: positional I/O on real files, bounded descriptors, clear errors."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from servent.errors import DiskFullError, StorageError, StoragePermissionError
from servent.storage.file_pool import FilePool, storage_error


def test_write_then_read_back_at_offsets(tmp_path: Path) -> None:
    pool = FilePool()
    path = tmp_path / "a"
    pool.pwrite(path, 5, b"hello")
    pool.pwrite(path, 0, b"12345")
    assert pool.pread(path, 0, 10) == b"12345hello"
    pool.close_all()
    assert path.read_bytes() == b"12345hello"


def test_read_past_end_of_file_gives_zeros(tmp_path: Path) -> None:
    pool = FilePool()
    path = tmp_path / "a"
    pool.pwrite(path, 0, b"ab")
    assert pool.pread(path, 0, 5) == b"ab\0\0\0"


def test_allocate_is_sparse(tmp_path: Path) -> None:
    pool = FilePool()
    path = tmp_path / "big"
    pool.allocate(path, 64 * 1024 * 1024)
    stat = path.stat()
    assert stat.st_size == 64 * 1024 * 1024
    assert stat.st_blocks * 512 < 1024 * 1024


def test_open_descriptors_are_bounded(tmp_path: Path) -> None:
    pool = FilePool(max_open=3)
    for i in range(10):
        pool.pwrite(tmp_path / str(i), 0, bytes([i]))
    assert pool.open_count() == 3
    for i in range(10):
        assert pool.pread(tmp_path / str(i), 0, 1) == bytes([i])
    pool.close_all()
    assert pool.open_count() == 0


def test_threads_share_descriptors_without_losing_writes(tmp_path: Path) -> None:
    pool = FilePool(max_open=2)
    paths = [tmp_path / f"f{i}" for i in range(4)]

    def writer(k: int) -> None:
        for j in range(200):
            pool.pwrite(paths[j % 4], (k * 200 + j) * 4, (k * 200 + j).to_bytes(4, "big"))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    pool.close_all()
    for k in range(4):
        for j in range(200):
            n = k * 200 + j
            assert paths[j % 4].read_bytes()[n * 4 : n * 4 + 4] == n.to_bytes(4, "big")


def test_rename_keeps_the_open_descriptor_usable(tmp_path: Path) -> None:
    pool = FilePool(max_open=1)
    part, final = tmp_path / "x.part", tmp_path / "x"
    pool.set_path(7, part)
    pool.pwrite(7, 0, b"abc")
    pool.rename(7, final)
    assert not part.exists()
    assert pool.pread(7, 0, 3) == b"abc"
    pool.pwrite(tmp_path / "other", 0, b"evicts key 7")
    assert pool.pread(7, 0, 3) == b"abc"
    assert pool.path_of(7) == final
    assert not part.exists()


def test_symlink_at_payload_path_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    link = tmp_path / "link"
    link.symlink_to(outside)
    with pytest.raises(StorageError, match="symlink"):
        FilePool().pwrite(link, 0, b"x")
    assert outside.read_bytes() == b"secret"


def test_full_disk_becomes_disk_full_error() -> None:
    # /dev/full answers every write with ENOSPC: a real full device.
    with pytest.raises(DiskFullError, match="disk full"):
        FilePool().pwrite(Path("/dev/full"), 0, b"x" * 100)


def test_permission_errors_become_storage_permission_error(tmp_path: Path) -> None:
    import errno

    err = storage_error(OSError(errno.EROFS, os.strerror(errno.EROFS)), "writing", tmp_path)
    assert isinstance(err, StoragePermissionError)
    assert str(tmp_path) in str(err)


def test_opening_in_a_missing_folder_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        FilePool().pwrite(tmp_path / "no" / "such", 0, b"x")

"""TorrentStorage on real files with real (parsed) v1, v2 and hybrid torrents."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from servent.codec.metainfo import Metainfo
from servent.errors import StorageError, StoragePermissionError, UnsafeStoragePathError
from servent.storage.resume import MemoryResumeStore
from servent.storage.torrent_storage import TorrentStorage
from storage_torrents import Files, make_metainfo, piece_bytes, random_files

PIECE = 32768


def payload(root: Path, meta: Metainfo, index: int) -> Path:
    return root.joinpath(*meta.files[index].path)


def real_indices(meta: Metainfo) -> list[int]:
    return [i for i, f in enumerate(meta.files) if not f.pad and f.length]


async def write_all(storage: TorrentStorage, meta: Metainfo, files: Files, seed: int = 0) -> None:
    order = list(range(meta.num_pieces))
    random.Random(seed).shuffle(order)
    for index in order:
        assert await storage.write_piece(index, piece_bytes(meta, files, index))


def part_files(root: Path) -> list[Path]:
    return list(root.rglob("*.part"))


def assert_payload_identical(root: Path, meta: Metainfo, files: Files) -> None:
    contents = {("payload", *p.split("/")): d for p, d in files}
    for entry in meta.files:
        if entry.pad:
            continue
        assert root.joinpath(*entry.path).read_bytes() == contents[entry.path]


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_download_in_random_order_gives_identical_files(tmp_path: Path, version: str) -> None:
    files = random_files(random.Random(1), [40000, 5, 70000, 0, 16384, 1])
    meta = make_metainfo(files, PIECE, version)
    async with TorrentStorage(meta, tmp_path, verify_both=True) as storage:
        await write_all(storage, meta, files)
        assert storage.is_complete() and storage.is_seed()
    assert_payload_identical(tmp_path, meta, files)
    assert not part_files(tmp_path)
    assert not (tmp_path / "payload" / ".pad").exists(), "pad files are never created"
    assert (tmp_path / ".servent" / f"{storage.resume_key}.resume").exists()


async def test_corrupt_piece_is_refused_and_not_written(tmp_path: Path) -> None:
    files = random_files(random.Random(2), [3 * PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path) as storage:
        good = piece_bytes(meta, files, 1)
        bad = good[:-1] + bytes([good[-1] ^ 1])
        assert await storage.write_piece(1, bad) is False
        assert not storage.have_piece(1)
        assert storage.statistics()["hash_failures"] == 1
        part = payload(tmp_path, meta, 0).with_name("file0.bin.part")
        assert part.read_bytes()[PIECE : 2 * PIECE] == bytes(PIECE)
        assert await storage.write_piece(1, good) is True


async def test_partial_files_carry_part_suffix_until_complete(tmp_path: Path) -> None:
    files = random_files(random.Random(3), [PIECE, PIECE + 10])
    meta = make_metainfo(files, PIECE)
    final0, final1 = payload(tmp_path, meta, 0), payload(tmp_path, meta, 1)
    async with TorrentStorage(meta, tmp_path) as storage:
        assert final0.with_name(final0.name + ".part").exists()
        assert not final0.exists()
        assert await storage.write_piece(0, piece_bytes(meta, files, 0))
        assert final0.read_bytes() == files[0][1]
        assert not final1.exists()
        assert storage.file_path(1).name == "file1.bin.part"
        assert await storage.write_piece(1, piece_bytes(meta, files, 1))
        assert not final1.exists()
        assert await storage.write_piece(2, piece_bytes(meta, files, 2))
        assert final1.read_bytes() == files[1][1]


async def test_read_block_serves_verified_pieces_across_file_boundaries(tmp_path: Path) -> None:
    files = random_files(random.Random(4), [1000, 50000, 30000])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path) as storage:
        with pytest.raises(StorageError):
            await storage.read_block(0, 0, 16)
        await write_all(storage, meta, files)
        whole = b"".join(d for _, d in files)
        assert await storage.read_block(0, 900, 200) == whole[900:1100]
        assert await storage.read_block(1, 0, 16384) == whole[PIECE : PIECE + 16384]
        assert await storage.read_block(1, 0, 16384) == whole[PIECE : PIECE + 16384]
        last = meta.num_pieces - 1
        assert await storage.read_piece(last) == whole[last * PIECE :]
        with pytest.raises(StorageError):
            await storage.read_block(last, 0, PIECE)


async def test_reopen_trusts_resume_data_without_hashing(tmp_path: Path) -> None:
    files = random_files(random.Random(5), [50000, 50000])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path) as storage:
        for index in (0, 2):
            assert await storage.write_piece(index, piece_bytes(meta, files, index))
    async with TorrentStorage(meta, tmp_path) as again:
        assert list(again.have) == [0, 2]
        assert again.statistics()["pieces_checked_from_disk"] == 0


async def test_file_changed_behind_our_back_reverifies_only_its_pieces(tmp_path: Path) -> None:
    files = random_files(random.Random(6), [2 * PIECE, 2 * PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path) as storage:
        await write_all(storage, meta, files)
    target = payload(tmp_path, meta, 1)
    with target.open("r+b") as handle:
        handle.seek(PIECE + 7)
        handle.write(b"\xff")
    os.utime(target, ns=(1, 1))
    async with TorrentStorage(meta, tmp_path) as again:
        assert again.statistics()["pieces_checked_from_disk"] == 2
        assert list(again.have) == [0, 1, 2]
        assert again.file_complete(0)
        assert not target.exists(), "a file that no longer verifies loses its real name"
        assert target.with_name("file1.bin.part").exists()


async def test_existing_complete_data_is_found_for_seeding(tmp_path: Path) -> None:
    files = random_files(random.Random(7), [70000, 3])
    meta = make_metainfo(files, PIECE)
    for entry, (_, data) in zip(meta.files, files, strict=True):
        path = tmp_path.joinpath(*entry.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    progress: list[tuple[int, int]] = []
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        assert storage.is_seed()
        assert await storage.recheck(lambda done, total: progress.append((done, total)))
        assert storage.is_seed()
    assert progress[-1] == (meta.num_pieces, meta.num_pieces)


async def test_unwanted_file_is_not_created_except_for_boundary_bytes(tmp_path: Path) -> None:
    files = random_files(random.Random(8), [PIECE // 2, 3 * PIECE, PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path, file_priorities=[1, 0, 1]) as storage:
        wanted = list(storage.wanted_pieces())
        assert wanted == [0, 3, 4]
        part1 = payload(tmp_path, meta, 1).with_name("file1.bin.part")
        assert not part1.exists()
        for index in wanted:
            assert await storage.write_piece(index, piece_bytes(meta, files, index))
        assert storage.is_complete() and not storage.is_seed()
        assert part1.exists(), "boundary bytes of piece 0 are kept in the sparse .part file"
        assert part1.stat().st_blocks * 512 < 3 * PIECE
        assert not payload(tmp_path, meta, 1).exists()
    async with TorrentStorage(meta, tmp_path) as again:
        assert again.file_priorities == (1, 0, 1)
        assert again.is_complete()


async def test_unwanted_file_never_touched_is_not_created(tmp_path: Path) -> None:
    files = random_files(random.Random(9), [PIECE, PIECE])
    meta = make_metainfo(files, PIECE)
    store = MemoryResumeStore()
    async with TorrentStorage(meta, tmp_path, resume_store=store, file_priorities=[1, 0]):
        pass
    async with TorrentStorage(meta, tmp_path, resume_store=store) as storage:
        assert await storage.write_piece(0, piece_bytes(meta, files, 0))
    assert not list(payload(tmp_path, meta, 1).parent.glob("file1*"))


async def test_symlinked_folder_pointing_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "payload").symlink_to(outside)
    files = random_files(random.Random(10), [100])
    meta = make_metainfo(files, PIECE)
    storage = TorrentStorage(meta, root)
    with pytest.raises(UnsafeStoragePathError):
        await storage.open()
    await storage.close()
    assert list(outside.iterdir()) == []


async def test_unwritable_download_folder_gives_a_clear_error(tmp_path: Path) -> None:
    meta = make_metainfo(random_files(random.Random(11), [100]), PIECE)
    storage = TorrentStorage(meta, Path("/sys/servent-cannot-write-here"))
    with pytest.raises(StoragePermissionError, match="servent-cannot-write-here"):
        await storage.open()
    await storage.close()


async def test_v2_single_piece_files_verify_against_pieces_root(tmp_path: Path) -> None:
    files = [("a", os.urandom(100)), ("b", os.urandom(PIECE))]
    meta = make_metainfo(files, PIECE, "v2")
    async with TorrentStorage(meta, tmp_path) as storage:
        assert not await storage.write_piece(0, bytes(100))
        await write_all(storage, meta, files)
        assert storage.is_seed()


async def test_concurrent_and_duplicate_writes_hash_in_parallel_and_write_once(
    tmp_path: Path,
) -> None:
    import asyncio

    files = random_files(random.Random(12), [10 * PIECE + 5, 7 * PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path) as storage:
        jobs = [
            storage.write_piece(i, piece_bytes(meta, files, i))
            for i in list(range(meta.num_pieces)) * 2
        ]
        assert all(await asyncio.gather(*jobs))
        assert storage.statistics()["pieces_written"] == meta.num_pieces
        assert storage.is_seed()
    assert_payload_identical(tmp_path, meta, files)


async def test_symlink_planted_at_a_part_file_is_refused(tmp_path: Path) -> None:
    files = random_files(random.Random(13), [100])
    meta = make_metainfo(files, PIECE)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    part = tmp_path.joinpath("root", *meta.files[0].path)
    part = part.with_name(part.name + ".part")
    part.parent.mkdir(parents=True)
    part.symlink_to(outside)
    storage = TorrentStorage(meta, tmp_path / "root")
    with pytest.raises(UnsafeStoragePathError):
        await storage.open()
    await storage.close()
    assert outside.read_bytes() == b"precious"


CHILD_FILE_SIZE_LIMIT = r"""
import asyncio, resource, signal, sys
from pathlib import Path
from servent.codec.metainfo import parse_torrent
from servent.errors import DiskFullError
from servent.storage import TorrentStorage

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

async def main() -> None:
    storage = TorrentStorage(parse_torrent(Path(sys.argv[1]).read_bytes()), sys.argv[2])
    try:
        await storage.open()
    except DiskFullError as exc:
        print("DiskFullError:", exc)
    finally:
        await storage.close()

asyncio.run(main())
"""


def test_file_too_large_for_the_disk_is_a_disk_full_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    from storage_torrents import make_torrent

    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(random_files(random.Random(14), [10000]), PIECE))
    result = subprocess.run(
        [sys.executable, "-c", CHILD_FILE_SIZE_LIMIT, str(torrent), str(tmp_path / "dl")],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert "DiskFullError: disk full while allocating" in result.stdout, result.stderr
    assert "file0.bin.part" in result.stdout


async def test_v2_piece_layers_received_later_are_checked_then_used(tmp_path: Path) -> None:
    from servent.codec.metainfo import parse_info

    files = [("big", os.urandom(3 * PIECE + 9))]
    full = make_metainfo(files, PIECE, "v2")
    bare = parse_info(full.info_bytes)  # as fetched from peers: no piece layers yet
    root = full.files[0].pieces_root
    assert root is not None
    async with TorrentStorage(bare, tmp_path) as storage:
        with pytest.raises(StorageError, match="piece layer"):
            await storage.write_piece(0, piece_bytes(full, files, 0))
        layer = full.piece_layers[root]
        assert not storage.add_piece_layer(root, layer[:-1] + bytes([layer[-1] ^ 1]))
        assert not storage.add_piece_layer(b"\x00" * 32, layer)
        assert storage.add_piece_layer(root, layer)
        await write_all(storage, full, files)
        assert storage.is_seed()


async def test_recheck_updates_the_have_object_callers_hold(tmp_path: Path) -> None:
    files = random_files(random.Random(15), [2 * PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path) as storage:
        held = storage.have
        await write_all(storage, meta, files)
        path = storage.file_path(0)
        with path.open("r+b") as handle:
            handle.write(b"corrupt")
        await storage.recheck()
        assert held is storage.have
        assert list(held) == [1]
        assert storage.file_path(0).name.endswith(".part")


async def test_file_wanted_after_open_is_created_in_its_missing_folder(tmp_path: Path) -> None:
    files = random_files(random.Random(16), [PIECE, 2 * PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path, file_priorities=[1, 0]) as storage:
        assert not payload(tmp_path, meta, 1).parent.exists()
        storage.set_file_priority(1, 1)
        assert list(storage.wanted_pieces()) == [0, 1, 2]
        await write_all(storage, meta, files)
    assert_payload_identical(tmp_path, meta, files)

"""Piece writes through io_uring: real rings, real files, the pool fallback, hostile cases."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from servent.errors import StorageError
from servent.storage.resume import MemoryResumeStore
from servent.storage.torrent_storage import TorrentStorage
from servent.storage.uring import open_ring
from servent.storage.uring_writer import UringWriter, open_writer
from storage_torrents import make_metainfo, make_torrent, piece_bytes, random_files

PIECE = 32768


def new_writer(entries: int = 128) -> UringWriter:
    ring = open_ring(entries)
    assert ring is not None, "io_uring is usable on the machines this project runs on"
    return UringWriter(ring, asyncio.get_running_loop())


async def test_writes_land_at_their_offsets(tmp_path: Path) -> None:
    writer = new_writer()
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        whole = bytearray(random.Random(1).randbytes(200_000))
        await writer.pwrite(fd, 0, whole)
        await writer.pwrite(fd, 300_000, memoryview(whole)[1000:5000])
        await writer.pwrite(fd, 250_000, b"read-only buffer")  # copied, then written
        data = (tmp_path / "f").read_bytes()
        assert data[:200_000] == whole
        assert data[250_000:250_016] == b"read-only buffer"
        assert data[300_000:] == whole[1000:5000]
        assert writer.busy == 0
    finally:
        writer.close()
        os.close(fd)


async def test_more_writes_than_ring_slots_all_land(tmp_path: Path) -> None:
    writer = new_writer(entries=4)  # 4 submission slots, 8 completion slots: most writes wait
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        chunks = [bytearray([i]) * 4096 for i in range(60)]
        await asyncio.gather(*(writer.pwrite(fd, i * 4096, c) for i, c in enumerate(chunks)))
        assert (tmp_path / "f").read_bytes() == b"".join(chunks)
        assert writer.busy == 0
    finally:
        writer.close()
        os.close(fd)


async def test_a_failed_write_raises_the_kernels_error(tmp_path: Path) -> None:
    writer = new_writer()
    (tmp_path / "f").write_bytes(b"original")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        with pytest.raises(OSError) as caught:
            await writer.pwrite(fd, 0, bytearray(b"overwrite"))
        assert caught.value.errno == errno.EBADF
        assert (tmp_path / "f").read_bytes() == b"original"
    finally:
        writer.close()
        os.close(fd)


async def test_a_ring_the_kernel_stops_taking_fails_the_write_without_hanging(
    tmp_path: Path,
) -> None:
    writer = new_writer()
    ring_fd = writer._ring.fd
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, ring_fd)  # the ring's descriptor now names /dev/null: io_uring_enter fails
    os.close(null)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with pytest.raises(OSError, match="io_uring refused the write"):
            await asyncio.wait_for(writer.pwrite(fd, 0, bytearray(b"data")), 60)
        assert writer.busy == 0
        assert (tmp_path / "f").read_bytes() == b""
    finally:
        writer.close()
        os.close(fd)


async def test_a_cancelled_write_returns_only_when_the_kernel_let_go_of_the_buffer(
    tmp_path: Path,
) -> None:
    writer = new_writer()
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        data = bytearray(random.Random(2).randbytes(8 * 1024 * 1024))
        task = asyncio.create_task(writer.pwrite(fd, 0, data))
        await asyncio.sleep(0)  # let it submit
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
        assert writer.busy == 0
        assert (tmp_path / "f").read_bytes() == data  # the write was not torn
    finally:
        writer.close()
        os.close(fd)


async def test_a_buffer_stays_put_until_its_write_is_reaped(tmp_path: Path) -> None:
    writer = new_writer()
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        data = bytearray(random.Random(14).randbytes(1024 * 1024))
        task = asyncio.create_task(writer.pwrite(fd, 0, data))
        await asyncio.sleep(0)  # submitted; its completion is read in a later loop turn
        with pytest.raises(BufferError):
            data.extend(b"x")  # pinned: the kernel may be reading it
        await task
        data.extend(b"x")  # let go once the write is done
        assert (tmp_path / "f").read_bytes() == data[:-1]
    finally:
        writer.close()
        os.close(fd)


async def test_drain_waits_for_every_running_write(tmp_path: Path) -> None:
    writer = new_writer()
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        data = bytearray(random.Random(3).randbytes(4 * 1024 * 1024))
        tasks = [asyncio.create_task(writer.pwrite(fd, i << 22, data)) for i in range(6)]
        await asyncio.sleep(0)
        assert writer.busy == 6
        assert await writer.drain(60)
        assert writer.busy == 0
        await asyncio.gather(*tasks)
        assert (tmp_path / "f").read_bytes() == bytes(data) * 6
    finally:
        writer.close()
        os.close(fd)


async def test_writes_of_one_call_report_the_first_failure_and_the_rest_land(
    tmp_path: Path,
) -> None:
    writer = new_writer()
    (tmp_path / "ro").write_bytes(b"original")
    good = os.open(tmp_path / "rw", os.O_RDWR | os.O_CREAT, 0o644)
    readonly = os.open(tmp_path / "ro", os.O_RDONLY)
    try:
        data = bytearray(random.Random(11).randbytes(3 * 65536))
        view = memoryview(data)
        parts = [
            (good, 0, view[:65536]),
            (readonly, 0, view[65536:131072]),  # fails: EBADF
            (good, 65536, b""),  # nothing to write: skipped
            (good, 65536, view[131072:]),
        ]
        failed = await writer.pwrite_all(parts)
        assert failed is not None
        position, error = failed
        assert position == 1 and error.errno == errno.EBADF
        assert (tmp_path / "rw").read_bytes() == data[:65536] + data[131072:]
        assert (tmp_path / "ro").read_bytes() == b"original"
        assert writer.busy == 0
        assert await writer.pwrite_all([(good, 0, b""), (good, 9, bytearray())]) is None
    finally:
        writer.close()
        os.close(good)
        os.close(readonly)


async def test_a_cancelled_call_of_several_writes_returns_when_all_are_done(
    tmp_path: Path,
) -> None:
    writer = new_writer(entries=2)  # some of the parts wait for ring slots
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        data = bytearray(random.Random(12).randbytes(8 * 1024 * 1024))
        view = memoryview(data)
        parts = [(fd, i << 20, view[i << 20 : (i + 1) << 20]) for i in range(8)]
        task = asyncio.create_task(writer.pwrite_all(parts))
        await asyncio.sleep(0)  # let it submit
        assert writer.busy == 8
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
        assert writer.busy == 0  # every buffer is back from the kernel
        assert (tmp_path / "f").read_bytes() == data
        assert await writer.drain(0)  # nothing running: at once
    finally:
        writer.close()
        os.close(fd)


async def test_a_span_failing_in_a_piece_across_files_names_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = random_files(random.Random(13), [PIECE + 100, PIECE - 100, PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        assert await storage.write_piece(0, bytearray(piece_bytes(meta, files, 0)))
        assert storage.writes_through_uring
        real_hold_open = storage._pool.hold_open
        readonly = os.open(storage.file_path(1), os.O_RDONLY)

        opened: list[object] = []

        def hold_open(key: object) -> tuple[int, Path, object] | None:
            opened.append(key)
            held = real_hold_open(key)
            if held is not None and key == 1:  # file 1's descriptor cannot write
                return readonly, held[1], held[2]
            return held

        monkeypatch.setattr(storage._pool, "hold_open", hold_open)
        try:
            piece = bytearray(piece_bytes(meta, files, 1))
            first, waiter = await asyncio.gather(
                storage.write_piece(1, piece), storage.write_piece(1, piece), return_exceptions=True
            )  # the second waits for the first's outcome: it gets the same error
        finally:
            os.close(readonly)
        assert opened.count(1) == 1  # one write of the piece, not two
        for outcome in (first, waiter):
            assert isinstance(outcome, StorageError)
            assert re.search(r"writing .*file1\.bin\.part", str(outcome))
        assert not storage.have_piece(1)
        part0 = storage.file_path(0).read_bytes()
        assert part0[PIECE:] == files[0][1][PIECE:]  # file 0's span of piece 1 was written
        monkeypatch.undo()
        assert await storage.write_piece(1, bytearray(piece_bytes(meta, files, 1)))
        assert storage.file_complete(0) and storage.file_complete(1)
        assert not storage.file_complete(2)


@pytest.mark.parametrize("version", ["v1", "hybrid"])
async def test_download_through_io_uring_is_byte_for_byte(tmp_path: Path, version: str) -> None:
    files = random_files(random.Random(4), [40000, 5, 70000, 0, 16384, 1, 3 * PIECE])
    meta = make_metainfo(files, PIECE, version)
    order = list(range(meta.num_pieces))
    random.Random(5).shuffle(order)
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        assert not storage.writes_through_uring  # no ring before the first piece
        for index in order:
            piece = bytearray(piece_bytes(meta, files, index))
            assert await storage.write_piece(index, piece)
            piece[:] = bytes(len(piece))  # the caller reuses its buffer at once, as the core does
            assert storage.have_piece(index)
        assert storage.writes_through_uring
        assert storage.is_seed()
    contents = dict(files)
    for entry in meta.files:
        if not entry.pad:
            assert tmp_path.joinpath(*entry.path).read_bytes() == contents["/".join(entry.path[1:])]


async def test_pieces_arriving_together_are_all_written(tmp_path: Path) -> None:
    files = random_files(random.Random(6), [40 * PIECE + 7, 9 * PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        pieces = [bytearray(piece_bytes(meta, files, i)) for i in range(meta.num_pieces)]
        bad = bytearray(pieces[3])
        bad[0] ^= 1
        results = await asyncio.gather(
            storage.write_piece(3, bad), *(storage.write_piece(i, p) for i, p in enumerate(pieces))
        )
        assert results == [False] + [True] * meta.num_pieces
        assert storage.statistics()["hash_failures"] == 1
    for (path, data), entry in zip(files, meta.files, strict=True):
        assert tmp_path.joinpath(*entry.path).read_bytes() == data, path


async def test_a_cancelled_piece_write_lets_go_of_its_buffer_and_file_and_is_not_kept(
    tmp_path: Path,
) -> None:
    big = 4 * 1024 * 1024  # hashed on the loop thread, written through the ring
    files = random_files(random.Random(15), [2 * big])
    meta = make_metainfo(files, big)
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        piece = bytearray(piece_bytes(meta, files, 1))
        task = asyncio.create_task(storage.write_piece(1, piece))
        await asyncio.sleep(0)  # hashed and submitted
        assert storage.writes_through_uring
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
        piece.append(0)  # the kernel let go of it (a pinned buffer cannot be resized)
        del piece[-1]
        assert not storage.have_piece(1) and storage.statistics()["pieces_written"] == 0
        assert await storage.write_piece(1, piece)  # written again, on the same descriptor
        assert await storage.write_piece(0, bytearray(piece_bytes(meta, files, 0)))
        assert storage.is_seed()
    assert tmp_path.joinpath(*meta.files[0].path).read_bytes() == files[0][1]


async def test_a_refused_ring_leaves_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert open_ring(0) is None  # the kernel refuses a ring of 0 entries (EINVAL)
    monkeypatch.setattr("servent.storage.uring_writer.open_ring", lambda: None)
    assert open_writer(asyncio.get_running_loop()) is None
    files = random_files(random.Random(7), [3 * PIECE + 11])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        for index in range(meta.num_pieces):
            assert await storage.write_piece(index, piece_bytes(meta, files, index))
        assert not storage.writes_through_uring
    assert tmp_path.joinpath(*meta.files[0].path).read_bytes() == files[0][1]


async def test_the_environment_switch_forces_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVENT_NO_URING", "1")
    files = random_files(random.Random(8), [PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        assert await storage.write_piece(0, piece_bytes(meta, files, 0))
        assert not storage.writes_through_uring
    monkeypatch.delenv("SERVENT_NO_URING")
    async with TorrentStorage(meta, tmp_path / "b", use_uring=False) as storage:
        assert await storage.write_piece(0, piece_bytes(meta, files, 0))
        assert not storage.writes_through_uring
    assert (tmp_path / "b").joinpath(*meta.files[0].path).read_bytes() == files[0][1]


async def test_a_part_file_removed_mid_download_gives_a_clear_error(tmp_path: Path) -> None:
    files = random_files(random.Random(9), [2 * PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        assert await storage.write_piece(0, bytearray(piece_bytes(meta, files, 0)))
        assert storage.writes_through_uring
        storage.file_path(0).unlink()
        with pytest.raises(StorageError, match=r"renaming .*file0\.bin\.part"):
            await storage.write_piece(1, bytearray(piece_bytes(meta, files, 1)))


CHILD_LIMIT_MID_PIECE = r"""
import asyncio, resource, signal, sys
from pathlib import Path
from servent.codec.metainfo import parse_torrent
from servent.errors import DiskFullError
from servent.storage import MemoryResumeStore, TorrentStorage

async def main() -> None:
    meta = parse_torrent(Path(sys.argv[1]).read_bytes())
    piece = bytearray(Path(sys.argv[3]).read_bytes())
    storage = TorrentStorage(meta, sys.argv[2], resume_store=MemoryResumeStore(),
                             use_uring=sys.argv[4] == "uring")
    await storage.open()
    assert await storage.write_piece(0, bytearray(Path(sys.argv[5]).read_bytes()))
    print("uring" if storage.writes_through_uring else "pool")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (40000, 40000))  # inside piece 1 (32768..65535)
    try:
        await storage.write_piece(1, piece)
    except DiskFullError as exc:
        print("DiskFullError:", exc)
    print("have 1:", storage.have_piece(1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    await storage.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("writer", ["uring", "pool"])
def test_a_file_size_limit_inside_a_piece_is_a_disk_full_error(tmp_path: Path, writer: str) -> None:
    """A short write (the limit cuts the piece) is resumed, then EFBIG ends it: same as the pool."""
    files = random_files(random.Random(10), [3 * PIECE])
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(files, PIECE))
    meta = make_metainfo(files, PIECE)
    piece = piece_bytes(meta, files, 1)
    (tmp_path / "piece").write_bytes(piece)
    (tmp_path / "piece0").write_bytes(piece_bytes(meta, files, 0))
    result = subprocess.run(
        [sys.executable, "-c", CHILD_LIMIT_MID_PIECE, str(torrent), str(tmp_path / "dl"),
         str(tmp_path / "piece"), writer, str(tmp_path / "piece0")],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[:1] == [writer], result.stderr
    assert any(line.startswith("DiskFullError: disk full while writing") for line in lines)
    assert "file0.bin.part" in result.stdout
    assert "have 1: False" in lines
    part = tmp_path.joinpath("dl", *meta.files[0].path[:-1], "file0.bin.part").read_bytes()
    assert part[PIECE:40000] == piece[: 40000 - PIECE]  # the short write's bytes are right
    assert part[40000 : 2 * PIECE] == bytes(2 * PIECE - 40000)

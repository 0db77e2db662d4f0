"""``servent seed`` and ``servent get`` as real processes.

Covers: seeding a folder (torrent created and written) and a ``.torrent``
(payload beside it) over IPv4 and IPv6; ``get`` printing one summary line
when not on a terminal and exiting 0 only when verified; resuming after
``kill -9`` without fetching a verified piece again and without a file that
claims to be complete; one-line errors for bad input.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from servent_cli import run_servent, servent

from interop.reference_clients import write_payload
from servent.codec.bitfield import Bitfield
from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.storage.resume import ResumeRecord
from servent.storage.resume_location import resume_store_for

pytestmark = pytest.mark.e2e

DEADLINE = 60.0


def make_folder(root: Path) -> dict[str, bytes]:
    files = {"song.ogg": 1_048_576 + 3, "notes/readme.txt": 12_345, "notes/empty-ish.bin": 1}
    return {
        name: write_payload(root / name, size, seed=n)
        for n, (name, size) in enumerate(files.items(), start=1)
    }


def files_named(root: Path, name: str) -> list[Path]:
    return list(root.rglob(name))


def assert_same(folder: Path, expected: dict[str, bytes]) -> None:
    for name, data in expected.items():
        assert (folder / name).read_bytes() == data, name
    assert not list(folder.rglob("*.part"))


async def test_seed_a_folder_and_get_it(tmp_path: Path) -> None:
    expected = make_folder(tmp_path / "share" / "album")
    torrent = tmp_path / "album.torrent"
    async with servent(
        "seed", tmp_path / "share" / "album", "--torrent", torrent, "--host", "127.0.0.1"
    ) as seeder:
        port = int((await seeder.wait_line(r"^listening on 127\.0\.0\.1:(\d+)$")).group(1))
        magnet = (await seeder.wait_line(r"^magnet:\?.*$")).group(0)
        assert f"x.pe=127.0.0.1%3A{port}" in magnet or f"x.pe=127.0.0.1:{port}" in magnet
        assert torrent.exists()
        code, out, err = await run_servent(
            "get", torrent, "-o", tmp_path / "down", "--peer", f"127.0.0.1:{port}"
        )
    assert code == 0, err
    assert len(out) == 1 and "album" in out[0] and "verified" in out[0], out
    assert_same(tmp_path / "down" / "album", expected)
    assert not files_named(tmp_path, ".servent")  # resume records live in the data directory


async def test_seed_a_torrent_over_ipv6_and_get_it_again_resumes_nothing(tmp_path: Path) -> None:
    expected = make_folder(tmp_path / "src" / "album")
    code, _, err = await run_servent(
        "create", tmp_path / "src" / "album", "-o", tmp_path / "src" / "album.torrent"
    )
    assert code == 0, err
    async with servent("seed", tmp_path / "src" / "album.torrent", "--host", "::1") as seeder:
        port = int((await seeder.wait_line(r"^listening on \[::1\]:(\d+)$")).group(1))
        args = ("get", tmp_path / "src" / "album.torrent", "-o", tmp_path / "down")
        code, out, err = await run_servent(*args, "--peer", f"[::1]:{port}")
        assert code == 0, err
        code, out, err = await run_servent(*args, "--peer", f"[::1]:{port}")
        assert code == 0, err
        assert "resumed" in out[0], out
    assert_same(tmp_path / "down" / "album", expected)


async def test_get_killed_midway_resumes_without_refetching_verified_pieces(
    tmp_path: Path,
) -> None:
    size = 6 * 1024 * 1024
    data = write_payload(tmp_path / "seed" / "movie.bin", size, seed=9)
    code, _, err = await run_servent(
        "create", tmp_path / "seed" / "movie.bin", "--v1", "--piece-length", "64K",
        "-o", tmp_path / "movie.torrent",
    )  # fmt: skip
    assert code == 0, err
    meta = parse_torrent((tmp_path / "movie.torrent").read_bytes())
    assert meta.info_hash_v1 is not None
    data_dir = tmp_path / "data"
    key = meta.info_hash_v1.hex()
    record_path = resume_store_for(data_dir, tmp_path / "down", key).folder / f"{key}.resume"
    config = EngineConfig(listen_host="127.0.0.1", upload_rate=1024 * 1024)
    async with SwarmEngine(config) as engine:
        seeding = await engine.add_torrent(meta, tmp_path / "seed")
        args = ("get", tmp_path / "movie.torrent", "-o", tmp_path / "down", "--data-dir", data_dir)
        peer = ("--peer", f"127.0.0.1:{engine.port}")
        async with servent(*args, *peer) as first:
            deadline = time.monotonic() + DEADLINE
            while not record_path.exists() or (
                Bitfield.from_bytes(ResumeRecord.decode(record_path.read_bytes()).have,
                                    meta.num_pieces).count() < meta.num_pieces // 4
            ):  # fmt: skip
                assert time.monotonic() < deadline, "no progress recorded"
                await asyncio.sleep(0.05)  # polling another process's file, bounded
            first.kill()
            await first.wait()
        have = Bitfield.from_bytes(
            ResumeRecord.decode(record_path.read_bytes()).have, meta.num_pieces
        )
        assert 0 < have.count() < meta.num_pieces
        assert (tmp_path / "down" / "movie.bin.part").exists()
        assert not (tmp_path / "down" / "movie.bin").exists()
        assert sorted(p.name for p in (tmp_path / "down").iterdir()) == ["movie.bin.part"]
        before = seeding.statistics().uploaded_to
        engine.limits.upload.set_rate(None, asyncio.get_running_loop().time())
        code, out, err = await run_servent(*args, *peer)
        assert code == 0, err
        after = seeding.statistics().uploaded_to
    second = sum(count for label, count in after.items() if label not in before)
    assert 0 < second <= size - have.count() * meta.piece_length
    assert "resumed" in out[0]
    assert (tmp_path / "down" / "movie.bin").read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "down").iterdir()) == ["movie.bin"]  # no .servent/


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "missing.torrent", "--peer", "127.0.0.1:1"], "cannot read torrent"),
        (["get", "junk.torrent", "--peer", "127.0.0.1:1"], "not a valid torrent"),
        (["get", "good.torrent", "--peer", "localhost"], "not a peer address"),
        (["get", "good.torrent", "--peer", "127.0.0.1:1"], "no peer could be reached"),
        (["get", "good.torrent", "-o", "file/sub", "--peer", "127.0.0.1:1"], "file"),
        (["get", "good.torrent", "--download-rate", "fast", "--peer", "127.0.0.1:1"], "rate"),
        (["seed", "nothing-here"], "no such file or folder"),
        (["seed", "good.torrent"], "does not match"),
    ],
)
async def test_bad_input_gives_one_error_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    write_payload(tmp_path / "data" / "x.bin", 100_000)
    code, _, err = await run_servent("create", tmp_path / "data" / "x.bin", "-o",
                                     tmp_path / "good.torrent")  # fmt: skip
    assert code == 0, err
    shutil.rmtree(tmp_path / "data")
    (tmp_path / "junk.torrent").write_bytes(b"d4:infoi3ee")
    (tmp_path / "file").write_bytes(b"a file, not a folder")
    code, out, err = await run_servent(*args, cwd=tmp_path)
    assert code == 1, (out, err)
    assert len(err) == 1 and err[0].startswith("servent: error:"), err
    assert message in err[0], err
    assert not files_named(tmp_path, "x.bin")  # nothing claims to be the complete file

"""Crash safety: a process writing pieces is killed with SIGKILL at a random point.

Reopening the same folder must keep every piece the killed process had recorded
as verified (nothing re-fetched), every piece it claims must hold the right
bytes, and finishing the download must give byte-identical files.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

from servent.codec.metainfo import parse_torrent
from servent.storage.torrent_storage import TorrentStorage
from storage_torrents import make_torrent, random_files

PIECE = 16384
LINE_TIMEOUT = 30.0

CHILD = r"""
import asyncio, random, sys
from pathlib import Path
from servent.codec.metainfo import parse_torrent
from servent.storage.torrent_storage import TorrentStorage

async def main() -> None:
    torrent, blob, folder, seed = sys.argv[1:5]
    meta = parse_torrent(Path(torrent).read_bytes())
    space = Path(blob).read_bytes()
    storage = TorrentStorage(meta, folder, resume_interval=0.005)
    await storage.open()
    todo = list(storage.have.missing())
    random.Random(int(seed)).shuffle(todo)
    print("open", flush=True)
    for n, index in enumerate(todo):
        start = index * meta.piece_length
        assert await storage.write_piece(index, space[start : start + meta.piece_size(index)])
        print("wrote", index, flush=True)
        if n % 7 == 6:
            await storage.flush()
            print("recorded", ",".join(map(str, storage.have)), flush=True)
    await storage.close()
    print("done", flush=True)

asyncio.run(main())
"""


async def run_child_until_killed(args: list[str], kill_after: int) -> set[int]:
    """Run the writer; SIGKILL it after ``kill_after`` output lines; return recorded pieces."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, *args, stdout=asyncio.subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    recorded: set[int] = set()
    lines = 0
    try:
        while lines < kill_after:
            line = (await asyncio.wait_for(child.stdout.readline(), LINE_TIMEOUT)).decode()
            if not line or line.startswith("done"):
                break
            lines += 1
            words = line.split()
            if words[0] == "recorded" and len(words) > 1:
                recorded = {int(x) for x in words[1].split(",")}
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), LINE_TIMEOUT)
    return recorded


async def test_sigkill_while_writing_loses_no_recorded_piece(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    files = random_files(rng, [40 * PIECE + 100, 3, 50 * PIECE, 30 * PIECE - 7])
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(files, PIECE))
    meta = parse_torrent(torrent.read_bytes())
    space = b"".join(data for _, data in files)
    blob = tmp_path / "space.bin"
    blob.write_bytes(space)
    folder = tmp_path / "download"

    for round_number in range(3):
        kill_after = rng.randrange(5, 45)
        args = [str(torrent), str(blob), str(folder), str(round_number)]
        recorded = await run_child_until_killed(args, kill_after)

        async with TorrentStorage(meta, folder) as storage:
            have = set(storage.have)
            assert recorded <= have, f"round {round_number}: recorded pieces were lost"
            for index in have:
                start = index * PIECE
                assert (
                    await storage.read_piece(index) == space[start : start + meta.piece_size(index)]
                )

    async with TorrentStorage(meta, folder) as storage:
        already = set(storage.have)
        refetched = 0
        for index in list(storage.have.missing()):
            start = index * PIECE
            assert await storage.write_piece(index, space[start : start + meta.piece_size(index)])
            refetched += 1
        assert refetched == meta.num_pieces - len(already)
        assert storage.is_seed()
    contents = {("payload", *p.split("/")): d for p, d in files}
    for entry in meta.files:
        assert folder.joinpath(*entry.path).read_bytes() == contents[entry.path]
    assert not list(folder.rglob("*.part"))

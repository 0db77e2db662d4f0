"""Verified piece writes alone: the thread pool against io_uring, CPU per GiB of the process.

Run: ``.venv/bin/python -m bench.piece_writes [--mib 256] [--piece-kib 1024] [--repeat 5]``.

Each round writes every piece of a fresh torrent through ``TorrentStorage.
write_piece`` (``--in-flight`` pieces at a time, as bytearrays, as the swarm
core hands them over) into a sparse file on ``--dir`` (tmpfs by default),
once with the pool (``use_uring=False``) and once with io_uring, alternating.
Prints the process CPU per GiB (every thread: the loop, the pool, the
kernel's io-wq workers) and the loop thread's share.  Not a timed test.
``--checks`` goes through ``PieceChecks`` as a torrent does (a stand-in
swarm core; the next piece starts when one is told to the core);
``--uvloop`` runs on uvloop, as the node does where it is installed.

``--only io_uring`` runs one path; with it, user-space instructions per
piece (a figure a loaded machine does not move) are the difference of two
runs under callgrind, ``--repeat 3`` minus ``--repeat 1``, divided by 2 x
the pieces of a round::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python -m bench.piece_writes --only io_uring --mib 16 --piece-kib 64 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bench.storage import build_torrent
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.net.piece_checks import PieceChecks
from servent.proto.swarm import VerifyPiece
from servent.storage import MemoryResumeStore, TorrentStorage

GIB = 1 << 30


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def write_all(meta: Metainfo, pieces: list[bytearray], folder: Path, *, uring: bool,
                    in_flight: int) -> tuple[float, float, bool]:  # fmt: skip
    """Process and loop-thread CPU seconds for writing every piece, and whether io_uring ran."""
    storage = TorrentStorage(meta, folder, resume_store=MemoryResumeStore(), use_uring=uring)
    await storage.open()
    order = iter(range(len(pieces)))

    async def worker() -> None:
        for index in order:
            if not await storage.write_piece(index, pieces[index]):
                raise RuntimeError(f"piece {index} failed its hash")

    cpu0, loop0 = process_cpu(), time.thread_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    cpu, loop_cpu = process_cpu() - cpu0, time.thread_time() - loop0
    used_uring = storage.writes_through_uring
    await storage.close()
    return cpu, loop_cpu, used_uring


class _TakenCore:
    """The swarm core's side of ``PieceChecks`` for ``--checks``: every piece must pass."""

    def __init__(self) -> None:
        self.checked = 0

    def piece_checked(self, index: int, data: bytearray, sources: object, ok: bool,
                      now: float) -> None:  # fmt: skip
        if not ok:
            raise RuntimeError(f"piece {index} failed its hash")
        self.checked += 1

    def piece_abandoned(self, data: bytearray) -> None:
        raise RuntimeError("a piece check was abandoned")


async def check_all(meta: Metainfo, pieces: list[bytearray], folder: Path, *, uring: bool,
                    in_flight: int) -> tuple[float, float, bool]:  # fmt: skip
    """As :func:`write_all`, through ``PieceChecks`` (as the torrent runs them): a piece is
    started when one finishes, ``in_flight`` at a time."""
    storage = TorrentStorage(meta, folder, resume_store=MemoryResumeStore(), use_uring=uring)
    await storage.open()
    loop = asyncio.get_running_loop()
    core, order, done = _TakenCore(), iter(range(len(pieces))), loop.create_future()
    group: list[asyncio.TaskGroup] = []

    def start_next() -> None:
        index = next(order, None)
        if index is not None:
            checks.start(VerifyPiece(index, pieces[index], {}), group[0])
        elif core.checked == len(pieces) and not done.done():
            done.set_result(None)

    checks = PieceChecks(core, storage, after=start_next, failed=done.set_exception,  # type: ignore[arg-type]
                         loop=loop)  # fmt: skip
    cpu0, loop0 = process_cpu(), time.thread_time()
    async with asyncio.TaskGroup() as tasks:
        group.append(tasks)
        for _ in range(in_flight):
            start_next()
        await done
    cpu, loop_cpu = process_cpu() - cpu0, time.thread_time() - loop0
    used_uring = storage.writes_through_uring
    await storage.close()
    return cpu, loop_cpu, used_uring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--piece-kib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument("--only", choices=["pool", "io_uring"], help="run one path, not both")
    parser.add_argument(
        "--checks",
        action="store_true",
        help="through PieceChecks (a stand-in core), as a torrent runs them",
    )
    parser.add_argument("--uvloop", action="store_true", help="on uvloop (as the node runs)")
    args = parser.parse_args()
    piece = args.piece_kib * 1024
    data = os.urandom(args.mib * 1024 * 1024)
    meta = parse_torrent(build_torrent(data, piece, "v1"))
    pieces = [bytearray(data[i : i + piece]) for i in range(0, len(data), piece)]
    scale = GIB / len(data)
    runner = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    names = ["pool", "io_uring"] if args.only is None else [args.only]
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        for run in range(args.repeat):
            for name in names if run % 2 == 0 else names[::-1]:
                folder = Path(work) / f"{name}-{run}"
                cpu, loop_cpu, used = runner(
                    (check_all if args.checks else write_all)(
                        meta, pieces, folder, uring=name == "io_uring", in_flight=args.in_flight
                    )
                )
                if used != (name == "io_uring"):
                    raise SystemExit(f"{name}: io_uring {'ran' if used else 'was refused'}")
                figures[name].append((cpu * scale, loop_cpu * scale))
                print(f"run {run + 1} {name:8} CPU s/GiB {cpu * scale:.3f} "
                      f"(loop thread {loop_cpu * scale:.3f})")  # fmt: skip
                for path in folder.rglob("*"):
                    if path.is_file():
                        path.unlink()
    for name, rows in figures.items():
        cpus = [c for c, _ in rows]
        print(f"{name:8} CPU s/GiB median {statistics.median(cpus):.3f} min {min(cpus):.3f}, "
              f"loop thread median {statistics.median(lp for _, lp in rows):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Micro-benchmark: instructions per GiB of the leecher's receive path, counted by callgrind.

Run: ``.venv/bin/python -m bench.leecher_instructions [--mib 64] [--read-kib 384] [--depth N]``
(needs ``valgrind``; about 30 s for 64 MiB).

The same download as :mod:`bench.leecher_path` (the real ``PeerSession`` and
``SwarmCore`` against a simulated seeder), but what is counted is the
instructions of the timed region (``buffer_updated`` and ``flush`` of each
read), not CPU time: the region is called through ``operator.call``, and
callgrind counts only while its C function ``_operator_call`` is on the stack.
On a machine shared with other work, CPU time moves by 20-50 % from run to
run; this count moves by about 1 %, so a change of a few per cent to the
Python path shows in one run each before and after.

Two figures: all instructions, and those outside ``memcpy``/``memset``
(valgrind counts a ``rep movsb`` copy byte by byte, so the copies of the
blocks weigh far more there than in time).  The second is the one to compare
for interpreter work.  ``--depth N`` holds the request pipeline at ``N``
(a transfer's runs into the hundreds, capped by the peer's ``reqq``, 250 when
it names none; the micro-benchmark's stays at its initial 16 because it runs
too briefly to measure a rate).
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.leecher_path import drive, handle_read
from servent.proto.pipeline import RequestPipeline

_COPIES = re.compile(r"__(memcpy|memmove|memset)")


async def download(mib: int, read_size: int) -> None:
    """One download; each read's handling goes through ``operator.call``."""
    await drive(mib, read_size, lambda session, size: operator.call(handle_read, session, size))


def _hold_depth(depth: int) -> None:
    measured = RequestPipeline.depth

    def held(self: RequestPipeline, now: float) -> int:
        measured(self, now)  # its cost stays in the count
        return depth

    RequestPipeline.depth = held


def count(mib: int, read_kib: int, depth: int | None) -> tuple[int, int]:
    """Run the download under callgrind; returns (all instructions, outside copies)."""
    with tempfile.TemporaryDirectory(prefix="servent-callgrind-") as folder:
        out = Path(folder, "callgrind.out")
        child = [sys.executable, "-m", "bench.leecher_instructions", "--child",
                 "--mib", str(mib), "--read-kib", str(read_kib)]  # fmt: skip
        if depth is not None:
            child += ["--depth", str(depth)]
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                   "--toggle-collect=_operator_call", "--collect-atstart=no", *child]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(command, env=env, check=True, capture_output=True)
        report = subprocess.run(
            ["callgrind_annotate", "--threshold=100", str(out)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    total = copies = 0
    for line in report.splitlines():
        match = re.match(r"\s*([\d,]+) \(.*?\)\s+(.*)", line)
        if match is None:
            continue
        value = int(match.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in match.group(2):
            total = value
        elif _COPIES.search(match.group(2)):
            copies += value
    return total, total - copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--read-kib", type=int, default=384, help="bytes per socket read")
    parser.add_argument("--depth", type=int, default=None, help="hold the pipeline at N")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.depth is not None:
            _hold_depth(args.depth)
        asyncio.run(download(args.mib, args.read_kib * 1024))
        return
    total, outside = count(args.mib, args.read_kib, args.depth)
    per_gib = 1024 / args.mib
    depth = "measured" if args.depth is None else f"held at {args.depth}"
    print(
        f"leecher path: {total * per_gib / 1e9:.3f} G instructions per GiB, "
        f"{outside * per_gib / 1e9:.3f} G outside memcpy/memset ({args.mib} MiB, "
        f"{args.read_kib} KiB reads, pipeline depth {depth})"
    )


if __name__ == "__main__":
    main()

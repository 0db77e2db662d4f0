"""The command-line arguments of :mod:`bench.transfer`'s parent process."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.transfer_report import BASELINE_SCENARIO, SCENARIOS

LOOPS = ["asyncio", "uvloop"]


def parent_arguments(description: str) -> argparse.ArgumentParser:
    """``python -m bench.transfer``'s options (``_child`` has its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--piece-kib", type=int, default=1024)
    parser.add_argument("--version", choices=["v1", "hybrid"], default="v1")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), type=lambda text: text.split(","),
        help="comma-separated subset of " + ", ".join(SCENARIOS) + " (ratios need lt->lt)",
    )  # fmt: skip
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument(
        "--profile", choices=["pyinstrument", "py-spy", "py-spy-gil", "perf", "syscalls"]
    )
    parser.add_argument(
        "--loop", choices=LOOPS, default="uvloop",
        help="event loop of the servent processes (uvloop: the command line's, decision 0056)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600.0, help="per transfer, seconds")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--baseline-loop", choices=LOOPS,
        help=f"event loop of {BASELINE_SCENARIO}'s leecher (default: --loop's)",
    )
    parser.add_argument(
        "--baseline-src", type=Path,
        help="a servent source folder (e.g. an older checkout's src): scenario "
        f"{BASELINE_SCENARIO} runs the leecher from it, to compare code in the same run",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work folder and profiles")
    return parser

"""bench.magnet_fetch still runs end to end: four metadata fetches, ratios printed.

Not a timed test: only that every fetch completed (the benchmark raises on a
timeout) and that the lines docs/perf/magnet.md quotes are printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]


def test_magnet_benchmark_runs_every_fetcher_against_every_seeder() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.magnet_fetch", "--files", "300", "--runs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for line in ("servent <- servent", "libtorrent <- servent", "servent <- libtorrent",
                 "libtorrent <- libtorrent", "servent/libtorrent"):  # fmt: skip
        assert line in proc.stdout, proc.stdout

"""bench.utp still runs end to end: four uTP transfers with libtorrent on loopback, ratios printed.

Small payload: this checks that every scenario completes over uTP (the
benchmark raises if a servent download fell back to TCP), not the rates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]


def test_utp_benchmark_runs_all_four_scenarios(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.utp", "--size-mib", "8", "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    for scenario in ("lt->lt", "sv->lt", "lt->sv", "sv->sv"):
        assert f"run 1 {scenario}:" in run.stdout
        assert f"  {scenario}:" in run.stdout  # in the summary, with its ratio

"""bench.transfer still runs end to end: four transfers on loopback, ratios printed.

Not a timed test: the figures are not checked, only that every transfer
completed (the benchmark raises if a leecher got fewer bytes) and that the
ratio lines the performance note quotes are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]


def test_transfer_benchmark_runs_all_four_scenarios(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.transfer", "--size-mib", "8", "--piece-kib", "256",
         "--dir", str(tmp_path), "--timeout", "60", "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for label in ("(a) servent->servent", "(b) libtorrent->servent", "(c) CPU per GiB"):
        assert label in proc.stdout
    summary = json.loads(figures.read_text())["summary"]
    assert set(summary) == {"lt->lt", "sv->sv", "lt->sv", "sv->lt"}
    assert all(row["mib_s"] > 0 and row["leecher_cpu_per_gib"] > 0 for row in summary.values())
    assert [p for p in tmp_path.iterdir() if p.name.startswith("servent-transfer-")] == []

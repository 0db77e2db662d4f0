"""LEDBAT yields: a TCP flow that joins a busy uTP flow on a bottleneck keeps most of its rate.

Runs ``bench.ledbat`` (three network namespaces it makes and deletes: sender,
router with a 16 Mbit/s ``tbf`` queue of 300 ms, receiver). uTP alone must
fill the link; TCP cubic joining it must keep at least half of what it gets
alone (measured here: 71 % over 10 s, 82 % over 20 s, see docs/perf/utp.md;
the bound leaves room for a loaded machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_tcp_keeps_most_of_its_rate_next_to_utp(tmp_path: Path) -> None:
    figures_path = tmp_path / "ledbat.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.ledbat", "--rate-mbit", "16", "--seconds", "12",
         "--json", str(figures_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    assert figures["utp_alone"] > 0.6 * 16, figures  # uTP uses an idle link
    assert figures["tcp_alone"] > 0.6 * 16, figures
    assert figures["tcp_together"] >= 0.5 * figures["tcp_alone"], figures
    assert figures["tcp_together"] > figures["utp_together"], figures

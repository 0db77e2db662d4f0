"""The uTP fuzz harness runs as documented and finds no crash.

A few thousand inputs in CI; run it for millions outside CI with
``python -m fuzz.utp --runs N``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_utp_fuzz_harness_runs_without_a_crash() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "fuzz.utp", "--runs", "3000", "--seed", "29"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "fuzz.utp: 3000 runs" in result.stdout and "no crash" in result.stdout

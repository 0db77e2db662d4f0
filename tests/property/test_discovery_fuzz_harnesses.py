"""The discovery parsers' fuzz harnesses run as documented and find no crash.

A few hundred inputs each in CI; run them for millions outside CI with
``python -m fuzz.NAME --runs N``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["tracker", "pex", "lsd", "metadata_exchange", "mse"])
def test_discovery_fuzz_harness_runs_without_a_crash(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", f"fuzz.{name}", "--runs", "500", "--seed", "11"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert f"fuzz.{name}: 500 runs" in result.stdout and "no crash" in result.stdout


def test_harness_reports_a_crash_with_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    # The harness must fail loudly on a non-ServentError, or the CI run proves nothing.
    monkeypatch.syspath_prepend(str(REPO))
    from fuzz import run

    def broken(data: bytes) -> None:
        raise ValueError("not a ServentError")

    assert run("broken", broken, [b"x"], argv=["--runs", "3", "--seed", "1"]) == 1


@pytest.mark.parametrize("name", ["tracker", "pex", "lsd", "metadata_exchange", "mse"])
def test_every_corpus_seed_is_valid_input(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.syspath_prepend(str(REPO))
    module = importlib.import_module(f"fuzz.{name}")
    from servent.errors import ServentError

    refused = 0
    for seed in module.CORPUS:
        try:
            module.target(seed)
        except ServentError:
            refused += 1
    # A tracker failure reply is a refusal by design; every other seed parses.
    assert refused <= (1 if name == "tracker" else 0)

"""The node channel's fuzz harness runs as documented, finds no crash, and its seeds are valid.

A few thousand inputs in CI; run it for millions outside CI with
``python -m fuzz.node_channel --runs N``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_node_channel_fuzz_harness_runs_without_a_crash() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "fuzz.node_channel", "--runs", "2000", "--seed", "14"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "fuzz.node_channel: 2000 runs" in result.stdout and "no crash" in result.stdout


def test_every_corpus_seed_is_a_valid_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from fuzz import node_channel

    for seed in node_channel.CORPUS:
        node_channel.target(seed)  # a refusal would raise a ChannelError
    assert len(node_channel.CORPUS) == 3

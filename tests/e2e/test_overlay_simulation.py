"""The overlay simulator at CI size: broadcasts and direct messages under 30 % churn, over
a mesh each node builds itself (the production neighbour book)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from servent.testing.overlay_network import OverlayConfig, OverlaySimulation, median

ROOT = Path(__file__).resolve().parents[2]


def test_broadcasts_and_direct_messages_survive_churn() -> None:
    config = OverlayConfig(nodes=300, churn=0.3, seed=11, broadcasts=8, direct_messages=300)
    report = OverlaySimulation(config).run()
    assert report.churned == 90
    assert report.direct_delivered == report.direct_sent == 300
    assert report.broadcast_eligible > 8 * 150
    assert report.broadcast_rate >= 0.999
    assert median(report.broadcast_latencies) < 1.0
    assert median(report.direct_latencies) < 3.0
    # Overhead stays bounded: a few hundred frames per node over the whole run.
    assert (report.gossip_frames + report.direct_frames + report.mesh_frames) / report.nodes < 400
    # Neighbours were found by each node's own neighbour book (the DHT rendezvous and
    # peer exchange, no global view) and kept between degree_low and degree_high.
    assert report.rendezvous_lookups >= report.nodes + report.churned
    assert 4.0 <= report.neighbours_mean <= 12.0


def test_a_node_away_gets_its_direct_messages_when_it_returns() -> None:
    config = OverlayConfig(nodes=100, churn=0.5, seed=4, broadcasts=0, direct_messages=200)
    report = OverlaySimulation(config).run()
    assert report.direct_rate == 1.0
    assert max(report.direct_attempts) > 1  # some recipients were away and were retried


def test_the_bench_prints_the_figures_the_issue_names() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.overlay_sim", "--nodes", "60", "--churn", "0.3",
         "--broadcasts", "3", "--messages", "30"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "direct delivered: 100.00%" in out
    for figure in (
        "direct delivered:",
        "broadcast reached:",
        "median latency:",
        "messages per node:",
    ):
        assert figure in out

"""The search simulator at CI size: 500 nodes, 20% churn, the production search cores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from servent.testing.search_network import SearchSimConfig, SearchSimulation, percentile

ROOT = Path(__file__).resolve().parents[2]


def test_500_nodes_with_churn_find_what_online_nodes_hold() -> None:
    config = SearchSimConfig(nodes=500, churn=0.2, seed=7, duration=300.0, queries=400)
    report = SearchSimulation(config).run()
    assert report.supernodes_start >= 20  # reachable and up long enough, by the auto rule
    assert report.churned == 100
    assert report.eligible >= 250
    assert report.recall >= 0.99
    assert percentile(report.latencies, 0.5) <= 1.0
    assert percentile(report.latencies, 0.95) <= 2.0
    assert report.absent_queries > 0 and report.absent_false_hits == 0
    # Bounded load: no supernode handles more than a few hundred requests a minute.
    assert max(report.supernode_messages) / (config.duration / 60) < 600


def test_the_simulation_is_deterministic_for_a_seed() -> None:
    config = SearchSimConfig(nodes=120, churn=0.2, seed=3, duration=120.0, queries=80)
    first = SearchSimulation(config).run()
    second = SearchSimulation(config).run()
    assert (first.found, first.eligible, first.messages) == (
        second.found, second.eligible, second.messages,
    )  # fmt: skip
    assert first.latencies == second.latencies


def test_bench_prints_the_figures_the_issue_asks_for() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.search_sim", "--nodes", "100", "--churn", "0.2",
         "--seed", "2", "--queries", "60", "--duration", "90"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    for start in ("recall: ", "median latency: ", "p95 latency: ", "queries per node per minute: "):
        assert any(line.startswith(start) for line in lines), result.stdout
    recall = next(line for line in lines if line.startswith("recall: "))
    assert float(recall.split()[1].rstrip("%")) >= 90.0

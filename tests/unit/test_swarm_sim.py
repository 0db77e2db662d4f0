"""The swarm simulator at CI size: 50 peers through the real swarm core, in virtual time."""

from __future__ import annotations

from servent.testing.swarm_network import SwarmSimConfig, SwarmSimulation


def test_fifty_peers_all_complete_with_little_waste() -> None:
    report = SwarmSimulation(SwarmSimConfig(peers=50, seed=1)).run()
    assert report.leechers == 48  # 2 of the 50 start as seeders
    assert report.completed == report.leechers
    # 4 MiB at the slowest leecher's pace takes well under two virtual minutes here.
    assert report.median_completion < 60.0
    assert report.wasted_share < 0.08  # endgame duplicates only
    assert report.virtual_time < 120.0


def test_fifty_peers_under_churn_finish_what_stays() -> None:
    config = SwarmSimConfig(peers=50, churn=0.2, seed=3, churn_until=60.0)
    report = SwarmSimulation(config).run()
    assert report.leechers > 48  # newcomers replaced leavers
    assert report.completed_share == 1.0  # every leecher that stayed finished
    assert report.completed >= report.leechers - report.left_unfinished
    assert report.wasted_share < 0.15


def test_a_seed_gives_the_same_run() -> None:
    config = SwarmSimConfig(peers=12, seed=7, size=1024 * 1024, piece_length=64 * 1024)
    first = SwarmSimulation(config).run()
    second = SwarmSimulation(config).run()
    assert first.completion_times == second.completion_times
    assert (first.downloaded, first.wasted, first.events) == (
        second.downloaded, second.wasted, second.events,
    )  # fmt: skip
    assert first.completed == first.leechers == 11

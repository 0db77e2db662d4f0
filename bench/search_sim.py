"""Simulate search by name over N servent nodes in virtual time, with supernodes and churn.

    python -m bench.search_sim --nodes 10000 --churn 0.2 --seed 1

Every node runs the production sans-IO search cores (``servent.proto.search``:
role rule, supernode view, keyword index store, merged results); the network,
the clock, node channels and membership are modelled
(``servent.testing.search_network``). Shares are drawn from a Zipf-like
catalogue of made-up names; ``--churn`` of the nodes leave during the run and
come back at a new address. Queries ask for two words of a file that some
online node holds (recall counts them) and for words that no file has.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from servent.testing.search_network import SearchSimConfig, SearchSimulation, percentile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_sim", description=__doc__)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--churn", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=600.0, help="virtual seconds")
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args(argv)
    config = SearchSimConfig(
        nodes=args.nodes, churn=args.churn, seed=args.seed, duration=args.duration,
        queries=args.queries,
    )  # fmt: skip
    started = time.perf_counter()
    report = SearchSimulation(config).run()
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    minutes = report.virtual_seconds / 60.0
    steady = report.steady_messages / report.nodes / (report.steady_seconds / 60.0)
    print(
        f"nodes {report.nodes}, supernodes {report.supernodes_start} at start, "
        f"{report.supernodes_end} at end, churned {report.churned} ({args.churn:.0%} asked), "
        f"{report.virtual_seconds:.0f} virtual s, {report.events} events"
    )
    print(
        f"recall: {report.recall * 100:.2f}% ({report.found}/{report.eligible} queries for "
        f"files held by an online node; {report.queries} queries in all)"
    )
    print(f"median latency: {percentile(report.latencies, 0.5):.3f} s")
    print(f"p95 latency: {percentile(report.latencies, 0.95):.3f} s")
    print(
        f"absent files: {report.absent_queries} queries, {report.absent_false_hits} results, "
        f"last answer median {percentile(report.absent_completion, 0.5):.3f} s"
    )
    handled = report.supernode_messages or [0]
    print(
        f"queries per node per minute: {report.queries / report.nodes / minutes:.3f}; "
        f"messages per node per minute: {report.messages / report.nodes / minutes:.2f} "
        f"({steady:.2f} after the {config.warmup:.0f} s warm-up)"
    )
    print(
        f"supernode load (queries + stores handled per minute): median "
        f"{statistics.median(handled) / minutes:.1f}, max {max(handled) / minutes:.1f}; "
        f"index entries per supernode median {statistics.median(report.store_sizes or [0]):.0f}"
        f", max {max(report.store_sizes or [0])}"
    )
    print(f"wall {wall:.1f} s, peak memory {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

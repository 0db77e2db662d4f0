"""Simulate a servent overlay of N nodes: broadcasts by gossip and direct messages under churn.

    python -m bench.overlay_sim --nodes 10000 --churn 0.3 --seed 1

Every node runs the production sans-IO gossip router, neighbour book (which nodes
to keep channels to, found through the DHT rendezvous and peer exchange) and
outbox (``servent.proto.gossip``, ``servent.proto.outbox``); the network, the clock,
node channels and DHT address lookups are modelled (``servent.testing.overlay_network``).
``--churn`` of the nodes leave during the run without notice and come back at
a new address; direct messages to a node that is away wait in the sender's
outbox and count as delivered when they arrive before the run ends.
"""

from __future__ import annotations

import argparse
import resource
import time

from servent.testing.overlay_network import (
    OverlayConfig,
    OverlaySimulation,
    frames_per_node,
    median,
    percentile,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overlay_sim", description=__doc__)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--churn", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=300.0, help="virtual seconds")
    parser.add_argument("--broadcasts", type=int, default=20)
    parser.add_argument("--messages", type=int, default=1000, help="direct messages")
    args = parser.parse_args(argv)
    config = OverlayConfig(
        nodes=args.nodes, churn=args.churn, seed=args.seed, duration=args.duration,
        broadcasts=args.broadcasts, direct_messages=args.messages,
    )  # fmt: skip
    started = time.perf_counter()
    report = OverlaySimulation(config).run()
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        f"nodes {report.nodes}, churned {report.churned} ({args.churn:.0%} asked), "
        f"{report.virtual_seconds:.0f} virtual s, {report.events} events"
    )
    print(
        f"direct delivered: {report.direct_rate * 100:.2f}% "
        f"({report.direct_delivered}/{report.direct_sent}), "
        f"attempts median {median([float(a) for a in report.direct_attempts]):.0f} "
        f"max {max(report.direct_attempts, default=0)}"
    )
    print(
        f"broadcast reached: {report.broadcast_rate * 100:.2f}% "
        f"({report.broadcast_reached}/{report.broadcast_eligible} node-broadcasts online "
        f"throughout the {config.broadcast_window:.0f} s window)"
    )
    print(
        f"median latency: {median(report.direct_latencies):.3f} s direct "
        f"(p90 {percentile(report.direct_latencies, 0.9):.3f} s), "
        f"{median(report.broadcast_latencies):.3f} s broadcast "
        f"(p90 {percentile(report.broadcast_latencies, 0.9):.3f} s)"
    )
    per_node = frames_per_node(report)
    print(
        f"messages per node: {per_node:.0f} frames "
        f"({per_node / report.virtual_seconds * 60:.1f}/min; gossip {report.gossip_frames}, "
        f"direct {report.direct_frames}, mesh upkeep {report.mesh_frames}, "
        f"duplicates {report.duplicates})"
    )
    print(
        f"mesh: {report.neighbours_mean:.1f} neighbours per online node at the end, "
        f"{report.mesh_dials} dials, {report.rendezvous_lookups} rendezvous lookups"
    )
    print(f"wall {wall:.1f} s, peak memory {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Simulate a BitTorrent swarm of N peers through servent's real swarm core, in virtual time.

    python -m bench.swarm_sim --peers 500 --churn 0.1 --seed 1

Seeders and leechers with mixed upload rates exchange a small torrent over
an in-memory network with latency (``servent.testing.swarm_network``); every
peer runs :class:`servent.proto.swarm.SwarmCore` over real peer-wire
connections.  ``--churn F``: a share F of the peers leaves per virtual minute
(until ``--churn-until``), each replaced by a fresh leecher.  Prints the share
of leechers that completed (those that left unfinished are not counted), the
median completion time (virtual seconds from joining) and the wasted share of
downloaded bytes.  Not a timed test.
"""

from __future__ import annotations

import argparse
import resource
import time

from servent.proto.swarm import SwarmConfig
from servent.testing.swarm_network import KIB, MIB, SwarmSimConfig, SwarmSimulation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.swarm_sim", description=__doc__)
    parser.add_argument("--peers", type=int, required=True)
    parser.add_argument("--churn", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeders", type=int, help="initial seeders (default: peers / 20)")
    parser.add_argument("--size-mib", type=float, default=4.0)
    parser.add_argument("--piece-kib", type=int, default=256)
    parser.add_argument("--upload-slots", type=int, default=4)
    parser.add_argument("--optimistic-slots", type=int, default=1)
    parser.add_argument("--choke-interval", type=float, default=10.0)
    parser.add_argument("--endgame-requesters", type=int, default=3)
    parser.add_argument("--churn-until", type=float, default=300.0, help="virtual seconds")
    parser.add_argument("--duration", type=float, default=1800.0, help="virtual seconds")
    args = parser.parse_args(argv)
    config = SwarmSimConfig(
        peers=args.peers, churn=args.churn, seed=args.seed, seeders=args.seeders,
        size=int(args.size_mib * MIB), piece_length=args.piece_kib * KIB,
        churn_until=args.churn_until, duration=args.duration,
        swarm=SwarmConfig(
            upload_slots=args.upload_slots, optimistic_slots=args.optimistic_slots,
            choke_interval=args.choke_interval, endgame_max_requesters=args.endgame_requesters,
        ),
    )  # fmt: skip
    started = time.perf_counter()
    report = SwarmSimulation(config).run()
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peers: {args.peers} (leechers over the run: {report.leechers}), churn {args.churn}")
    print(f"completed: {report.completed_share * 100:.1f}%")
    print(f"median completion: {report.median_completion:.1f} s")
    print(f"wasted: {report.wasted_share * 100:.2f}%")
    print(f"left unfinished: {report.left_unfinished}")
    print(f"virtual time: {report.virtual_time:.1f} s, events: {report.events}")
    print(f"wall time: {elapsed:.1f} s, peak memory: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

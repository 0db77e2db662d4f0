"""Simulated live broadcast: how fast each piece reaches each of 20 viewers.

Run: ``.venv/bin/python -m bench.live_sim [--viewers 20] [--pieces 120] [--seeds 5]``.
Virtual time (``servent.testing.live_network``): one broadcaster uploading at
most 3x the bitrate to 3 viewers, viewers on a random graph uploading at most
2x the bitrate each, 20 ms links, a 10-piece window, one viewer joining
late.  The viewers run the real scheduler (``servent.proto.live_swarm``);
no sockets, no signatures.  Printed: the latency distribution from a piece
being written to a viewer having it, the share of pieces that came from the
broadcaster, and where the late viewer started.
"""

from __future__ import annotations

import argparse
import statistics

from servent.testing.live_network import LiveSimConfig, simulate


def main(viewers: int, pieces: int, seeds: int) -> None:
    latencies: list[float] = []
    from_broadcaster = 0
    for seed in range(seeds):
        config = LiveSimConfig(viewers=viewers, pieces=pieces, seed=seed)
        result = simulate(config)
        latencies.extend(result.latency.values())
        from_broadcaster += result.broadcaster_uploads
        late = result.first_piece_of[viewers]
        expected = (viewers - 1) * pieces + (pieces - late)
        print(
            f"seed {seed}: {len(result.latency)}/{expected} pieces delivered, late viewer "
            f"joined at {config.late_viewer_joins:g} s and started at piece {late}"
        )
    ordered = sorted(latencies)

    def quantile(q: float) -> float:
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    print(
        f"latency write -> viewer: median {statistics.median(ordered):.2f} s, "
        f"p90 {quantile(0.9):.2f} s, p99 {quantile(0.99):.2f} s, max {ordered[-1]:.2f} s"
    )
    print(f"pieces sent by the broadcaster: {from_broadcaster / len(ordered) * 100:.1f} %")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--pieces", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    main(args.viewers, args.pieces, args.seeds)

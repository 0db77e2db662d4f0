"""Live broadcast on loopback: how fast each written byte reaches each of 20 viewers.

Run: ``.venv/bin/python -m bench.live [--runs 3] [--seconds 20] [--bitrate 256000]``.
Real sockets and signatures (``servent.testing.live_scenario``): a broadcaster
daemon fed by ``servent live -`` at a fixed bitrate, 2 viewer daemons reading
the HTTP URL of ``servent stream LIVEKEY``, 18 light in-process viewers (the
last joining half-way).  Printed per run and overall: the delay from bytes
being written to the CLI's stdin to a viewer having them (p50 / p95 / max),
the broadcaster's upload over what it wrote, and where the late viewer
started.  The simulator of the same scheduler is ``bench/live_sim.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from servent.testing.live_scenario import LiveRunConfig, LiveRunResult, run_live


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def summary(values: list[float]) -> str:
    return (
        f"p50 {quantile(values, 0.5):.3f} s, p95 {quantile(values, 0.95):.3f} s, "
        f"max {max(values):.3f} s"
    )


def report(run: int, result: LiveRunResult) -> list[float]:
    latencies = [delay for viewer in result.viewers for delay in viewer.latencies]
    complete = sum(1 for v in result.viewers if v.complete and v.matches and not v.missing)
    daemons = [d for v in result.viewers if v.name.startswith("daemon") for d in v.latencies]
    b = result.broadcaster
    print(
        f"run {run}: {complete}/{len(result.viewers)} viewers got every byte, equal to the "
        f"source; {len(latencies)} arrivals: {summary(latencies)}"
    )
    print(f"  viewer daemons (through HTTP): {summary(daemons)}")
    print(
        f"  broadcaster uploaded {b['bytes_up'] / b['bytes_written']:.2f}x what it wrote "
        f"({b['bytes_written']} bytes, {b['edge'] + 1} pieces); late viewer joined at edge "
        f"{result.late_edge_at_join} and started at piece {result.late_first_index}"
    )
    return latencies


async def main(runs: int, seconds: float, bitrate: int) -> None:
    every: list[float] = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="servent-live-bench-") as work:
            config = LiveRunConfig(Path(work), seconds=seconds, bitrate=bitrate)
            config.late_join_at = seconds / 2
            every += report(run, await run_live(config))
    print(f"all runs: {len(every)} arrivals: {summary(every)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bitrate", type=int, default=256_000, help="bytes per second")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.seconds, args.bitrate))

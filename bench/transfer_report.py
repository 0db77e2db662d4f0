"""Printing bench.transfer's figures: medians, the four ratios, paired leecher CPU ratios.

Kept apart so the benchmark module stays about running the transfers.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

SCENARIOS = ("lt->lt", "sv->sv", "lt->sv", "sv->lt")
#: ``--baseline-src``: the servent leecher run from another source folder.
BASELINE_SCENARIO = "lt->sv*"


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_summary(summary: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    if not all(s in summary for s in SCENARIOS):
        print(f"\nmedians of {args.runs} run(s), {args.size_mib} MiB (no ratios: a subset):")
        for scenario, row in summary.items():
            print(
                f"{scenario:10} {row['mib_s']:8.1f} MiB/s  CPU s/GiB seeder "
                f"{row['seeder_cpu_per_gib']:.2f} leecher {row['leecher_cpu_per_gib']:.2f}"
            )
        return
    ref = summary["lt->lt"]
    print(f"\nmedians of {args.runs} run(s), {args.size_mib} MiB:")
    header = ("scenario", "MiB/s", "ratio", "seed CPU s/GiB", "leech CPU s/GiB")
    print(f"{header[0]:10} {header[1]:>8} {header[2]:>6} {header[3]:>15} {header[4]:>16}")
    for scenario, row in summary.items():
        print(
            f"{scenario:10} {row['mib_s']:8.1f} {row['mib_s'] / ref['mib_s']:6.2f} "
            f"{row['seeder_cpu_per_gib']:15.2f} {row['leecher_cpu_per_gib']:16.2f}"
        )
    a = summary["sv->sv"]["mib_s"] / ref["mib_s"]
    b = summary["lt->sv"]["mib_s"] / ref["mib_s"]
    d = summary["sv->lt"]["mib_s"] / ref["mib_s"]
    print(f"(a) servent->servent / libtorrent->libtorrent rate: {a:.2f}  (goal >= 1.0, floor 0.5)")
    print(f"(b) libtorrent->servent / libtorrent->libtorrent rate: {b:.2f}  (goal >= 0.9)")
    print(f"(d) servent->libtorrent / libtorrent->libtorrent rate: {d:.2f}")
    seed = summary["sv->sv"]["seeder_cpu_per_gib"] / ref["seeder_cpu_per_gib"]
    leech = summary["lt->sv"]["leecher_cpu_per_gib"] / ref["leecher_cpu_per_gib"]
    print(f"(c) CPU per GiB, servent / libtorrent: seeder {seed:.2f}, leecher {leech:.2f}")


def paired_ratios(
    results: dict[str, list[dict[str, Any]]], ours: str = "lt->sv", reference: str = "lt->lt"
) -> list[float]:
    """Leecher CPU per GiB, ``ours`` over ``reference``, run by run (same moment, same load)."""
    return [
        mine["leecher_cpu_per_gib"] / theirs["leecher_cpu_per_gib"]
        for mine, theirs in zip(results.get(ours, []), results.get(reference, []), strict=False)
    ]


def print_paired_ratios(results: dict[str, list[dict[str, Any]]]) -> None:
    pairs = [("lt->sv", "lt->lt"), (BASELINE_SCENARIO, "lt->lt"), ("lt->sv", BASELINE_SCENARIO)]
    for ours, reference in pairs:
        ratios = paired_ratios(results, ours, reference)
        if not ratios:
            continue
        each = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"leecher CPU per GiB, {ours} / {reference}, run by run: {each}; median "
            f"{median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})"
        )

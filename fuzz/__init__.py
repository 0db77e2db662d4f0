"""Fuzz harnesses, one per parser, runnable for a long time outside CI.

``python -m fuzz.NAME --runs N [--seed S]`` feeds the parser random and
mutated inputs; any exception that is not a ``ServentError`` is a bug: the
harness prints the input (hex) and the traceback and exits with status 1.
Standard library only.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence

from servent.errors import ServentError

INTERESTING = [b"0", b"-0", b"i", b"e", b"d", b"l", b":", b"4294967296", b"-1", b"\x00", b"\xff",
               b"..", b"/", b"\\", b"%", b"&", b"=", b"9999999999:", b"i-e", b"de", b"le"]


def mutate(data: bytes, rng: random.Random, max_length: int = 1 << 16) -> bytes:
    """One to four random byte-level edits: flip, insert, delete, splice, repeat."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if choice == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1:
            buf[pos:pos] = rng.choice(INTERESTING)
        elif choice == 2:
            del buf[pos : pos + rng.randint(1, 16)]
        elif choice == 3 and buf:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randint(1, 64)]
        elif choice == 4:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice == 5:
            del buf[pos:]
        elif buf:
            buf[min(pos, len(buf) - 1)] = rng.choice(b"0123456789iedl:")
    return bytes(buf[:max_length])


def run(
    name: str,
    target: Callable[[bytes], object],
    corpus: Sequence[bytes],
    argv: Sequence[str] | None = None,
    structural: Callable[[bytes, random.Random], bytes] | None = None,
) -> int:
    """Command-line driver shared by the harnesses.

    ``structural`` optionally mutates a seed at the level of its meaning (for
    example replacing one value of a decoded torrent); it gets half the runs.
    """
    parser = argparse.ArgumentParser(prog=f"python -m fuzz.{name}")
    parser.add_argument("--runs", type=int, default=100_000, help="inputs to try")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns() & 0xFFFFFFFF
    rng = random.Random(seed)
    pool = [bytes(c) for c in corpus]
    accepted = refused = 0
    started = time.monotonic()
    for run_index in range(args.runs):
        if rng.random() < 0.1:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        elif structural is not None and rng.random() < 0.5:
            data = structural(rng.choice(pool), rng)
        else:
            data = mutate(rng.choice(pool), rng)
        try:
            target(data)
        except ServentError:
            refused += 1
            continue
        except Exception:
            print(f"fuzz.{name}: crash at run {run_index} (seed {seed}) on input:", file=sys.stderr)
            print(data.hex(), file=sys.stderr)
            traceback.print_exc()
            return 1
        accepted += 1
        if len(pool) < 1000 and data not in pool:
            pool.append(data)  # accepted inputs are good seeds for further mutation
    elapsed = time.monotonic() - started
    print(f"fuzz.{name}: {args.runs} runs in {elapsed:.1f}s (seed {seed}): "
          f"{accepted} accepted, {refused} refused, no crash")
    return 0

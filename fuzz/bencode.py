"""Fuzz the strict bencode decoder: ``python -m fuzz.bencode --runs N``."""

from __future__ import annotations

import sys

from fuzz import run
from servent.codec.bencode import Limits, decode, encode

LIMITS = Limits(max_length=1 << 16, max_depth=32, max_values=20_000)
CORPUS = [
    b"i0e", b"i-42e", b"4:spam", b"le", b"de", b"l4:spami42ee",
    b"d3:bar4:spam3:fooi42ee",
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
    b"d1:rd2:id20:abcdefghij01234567895:nodes26:" + bytes(26) + b"e1:t2:aa1:y1:re",
]


def target(data: bytes) -> None:
    value = decode(data, LIMITS)
    if encode(value) != data:
        raise AssertionError("accepted input is not canonical")


if __name__ == "__main__":
    sys.exit(run("bencode", target, CORPUS))

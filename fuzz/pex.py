"""Fuzz the ``ut_pex`` codec and receive path (BEP 11): ``python -m fuzz.pex --runs N``.

Accepted payloads must encode and decode back to the same message; the
per-connection state must refuse a second message inside the flood window.
"""

from __future__ import annotations

import sys

from fuzz import run
from servent.errors import PexError
from servent.proto.pex import MIN_RECEIVE_GAP, PexMessage, PexState, decode_pex, encode_pex

CORPUS = [
    encode_pex(PexMessage()),
    encode_pex(PexMessage(((("10.0.0.1", 6881), 0x12), (("10.0.0.2", 1), 0)))),
    encode_pex(PexMessage(((("::1", 6881), 0x01),), (("10.0.0.3", 80), ("fe80::1", 9)))),
    encode_pex(PexMessage(tuple(((f"10.1.{i}.1", 1000 + i), i) for i in range(60)))),
    b"d5:added12:" + bytes(12) + b"7:added.f1:\x10e",
]


def target(data: bytes) -> None:
    message = decode_pex(data)
    if decode_pex(encode_pex(message)) != message:
        raise AssertionError("ut_pex message does not survive a round trip")
    state = PexState(0.0)
    if state.receive(data, 100.0) != message:
        raise AssertionError("PexState decodes differently from decode_pex")
    try:
        state.receive(data, 100.0 + MIN_RECEIVE_GAP / 2)
    except PexError:
        return
    raise AssertionError("a second message inside the flood window was accepted")


if __name__ == "__main__":
    sys.exit(run("pex", target, CORPUS))

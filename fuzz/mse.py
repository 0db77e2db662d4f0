"""Fuzz the MSE/PE handshake (both sides): ``python -m fuzz.mse --runs N``.

The corpus holds the two byte streams of a real handshake between an
initiator and a responder built from fixed seeds; the target rebuilds the
same side from the same seed, so a mutated stream keeps its valid prefix
and the parser gets deep (key exchange, sync search, crypto select, padding,
initial payload). The first byte of an input picks the side (even: the
responder reads it, odd: the initiator) and how the stream is chunked. A
finished responder must name the only torrent it knows.
"""

from __future__ import annotations

import random
import sys

from fuzz import run
from servent.proto.mse import CRYPTO_PLAINTEXT, CRYPTO_RC4, MseInitiator, MseResponder

INFO_HASH = bytes(range(20))
HANDSHAKE = b"\x13BitTorrent protocol" + bytes(8) + INFO_HASH + b"-SV0001-fuzzfuzzfuzz"
CHUNKS = (1, 7, 96, 1 << 16)


def _initiator(provide: int | None = None) -> MseInitiator:
    return MseInitiator(INFO_HASH, rng=random.Random(1), initial_payload=HANDSHAKE, provide=provide)


def _responder() -> MseResponder:
    return MseResponder([INFO_HASH], rng=random.Random(2))


def _transcript(provide: int | None) -> tuple[bytes, bytes]:
    """What the initiator and the responder sent each other in a full handshake."""
    initiator, responder = _initiator(provide), _responder()
    to_responder, to_initiator = bytearray(), bytearray()
    for _ in range(10):
        out = initiator.data_to_send()
        to_responder += out
        if out and responder.result is None:
            responder.receive_data(out)
        back = responder.data_to_send()
        to_initiator += back
        if back and initiator.result is None:
            initiator.receive_data(back)
        if initiator.result is not None and responder.result is not None:
            break
    return bytes(to_responder), bytes(to_initiator)


def _corpus() -> list[bytes]:
    corpus = []
    for provide in (None, CRYPTO_PLAINTEXT, CRYPTO_RC4):
        to_responder, to_initiator = _transcript(provide)
        corpus += [b"\x00" + to_responder, b"\x03" + to_initiator]
    return corpus


def target(data: bytes) -> None:
    if not data:
        return
    selector, stream = data[0], data[1:]
    chunk = CHUNKS[(selector >> 1) % len(CHUNKS)]
    side: MseInitiator | MseResponder
    side = _responder() if selector % 2 == 0 else _initiator()
    for start in range(0, len(stream), chunk):
        if side.result is not None:
            break
        side.receive_data(stream[start : start + chunk])
        side.data_to_send()
    result = side.result
    if result is not None and result.info_hash != INFO_HASH:
        raise AssertionError("handshake finished for a torrent we do not have")


CORPUS = _corpus()

if __name__ == "__main__":
    sys.exit(run("mse", target, CORPUS))

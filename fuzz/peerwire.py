"""Fuzz the peer wire receive path: ``python -m fuzz.peerwire --runs N [--seed S]``.

Each run builds a stream from valid frames (every message kind), mutates it
(bit flips, inserted/deleted/duplicated bytes, hostile length prefixes),
splits it into random chunks and feeds it to an open ``PeerConnection``,
answering requests like a session would.  Anything but a ``PeerWireError``
is a crash: the input is printed (hex) and the process exits 1.
"""

from __future__ import annotations

import argparse
import random
import sys
import traceback

from servent.errors import PeerWireError
from servent.proto.peerwire import (
    AllowedFast,
    Cancel,
    Choke,
    ConnectionConfig,
    Extended,
    HandshakeReceived,
    Hashes,
    HashRequest,
    Have,
    HaveAll,
    HaveBitfield,
    HaveNone,
    Interested,
    Message,
    NotInterested,
    PeerConnection,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    encode_message,
)

INFO_HASH = b"\x11" * 20
NUM_PIECES = 40


def random_message(rng: random.Random) -> Message:
    index = rng.choice([rng.randrange(NUM_PIECES), rng.randrange(2**32)])
    begin = rng.choice([0, 16384, rng.randrange(2**32)])
    length = rng.choice([16384, 1, 0, rng.randrange(2**32)])
    choices: list[Message] = [
        Choke(),
        Unchoke(),
        Interested(),
        NotInterested(),
        HaveAll(),
        HaveNone(),
        Have(index),
        Request(index, begin, length),
        Cancel(index, begin, length),
        RejectRequest(index, begin, length),
        Piece(index, begin, rng.randbytes(rng.randrange(64))),
        Port(rng.randrange(65536)),
        SuggestPiece(index),
        AllowedFast(index),
        HaveBitfield(rng.randbytes(rng.choice([5, rng.randrange(10)]))),
        Extended(rng.randrange(4), rng.choice([b"d1:md6:ut_pexi1eee", rng.randbytes(12)])),
        HashRequest(rng.randbytes(32), 0, 0, 2, 0),
        Hashes(rng.randbytes(32), 0, 0, 2, 0, rng.randbytes(64)),
    ]
    return rng.choice(choices)


def mutate(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randrange(1, 6)):
        position = rng.randrange(len(data) + 1)
        action = rng.randrange(5)
        if action == 0 and position < len(data):
            data[position] ^= 1 << rng.randrange(8)
        elif action == 1:
            data[position:position] = rng.randbytes(rng.randrange(1, 8))
        elif action == 2 and position < len(data):
            del data[position : position + rng.randrange(1, 8)]
        elif action == 3:
            data[position:position] = rng.choice([2**32 - 1, 2**20, 262145]).to_bytes(4, "big")
        else:
            data[position:position] = data[position : position + rng.randrange(1, 32)]


def one_run(rng: random.Random) -> bytes:
    initiator = PeerConnection(peer_id=b"I" * 20, info_hash=INFO_HASH, initiator=True, now=0.0)
    conn = PeerConnection(
        peer_id=b"R" * 20,
        info_hash=INFO_HASH,
        initiator=False,
        now=0.0,
        num_pieces=rng.choice([None, NUM_PIECES]),
        config=ConnectionConfig(enable_fast=rng.random() < 0.7, max_receive_buffer=1 << 18),
    )
    stream = bytearray(initiator.data_to_send() if rng.random() < 0.95 else rng.randbytes(68))
    stream += b"".join(encode_message(random_message(rng)) for _ in range(rng.randrange(30)))
    mutate(stream, rng)
    data = bytes(stream)
    try:
        position = 0
        while position < len(data):
            size = rng.randrange(1, 200)
            conn.receive_data(data[position : position + size], float(position))
            position += size
            while (event := conn.next_event()) is not None:
                if isinstance(event, HandshakeReceived):
                    conn.send(Unchoke())
                elif isinstance(event, Request) and conn.is_request_pending(event):
                    conn.send(Piece(event.index, event.begin, bytes(event.length)))
            conn.data_to_send()
        conn.handle_timer(1e6)
        conn.next_event()
    except PeerWireError:
        pass
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    for run in range(args.runs):
        state = rng.getstate()
        try:
            one_run(rng)
        except Exception:
            traceback.print_exc()
            rng.setstate(state)
            print(f"crash at run {run} (seed {seed}); input: {one_run_input(rng)}")
            return 1
    print(f"peerwire fuzz: {args.runs} runs, seed {seed}, no crash")
    return 0


def one_run_input(rng: random.Random) -> str:
    try:
        return one_run(rng).hex()
    except Exception:  # the same crash again; the input is what matters
        return "(reproduce with the seed)"


if __name__ == "__main__":
    sys.exit(main())

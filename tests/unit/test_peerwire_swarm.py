"""The sans-IO cores together: a leecher fetches a torrent from two seeders in memory.

PeerConnection (wire), PiecePicker (what to ask), RequestPipeline (how much
to ask), Choker (who is served) and TokenBucket (upload limit) cooperate
exactly as the asyncio session drives them, with a fake clock and no sockets.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from servent.proto.choker import Choker, ChokerConfig, PeerStats
from servent.proto.peerwire import (
    Cancel,
    HandshakeReceived,
    HaveAll,
    HaveNone,
    Interested,
    PeerConnection,
    Piece,
    RejectRequest,
    Request,
    Unchoke,
)
from servent.proto.picker import PiecePicker
from servent.proto.pipeline import RequestPipeline
from servent.proto.ratelimit import TokenBucket

# Every test runs on both receive paths (C where built, and Python).
pytestmark = pytest.mark.usefixtures("both_scan_paths")

PIECE_LENGTH = 32 * 1024
INFO_HASH = hashlib.sha1(b"swarm").digest()


class Seeder:
    def __init__(self, name: str, data: bytes, rate: float) -> None:
        self.conn = PeerConnection(
            peer_id=name.encode().ljust(20, b"-"), info_hash=INFO_HASH, initiator=False, now=0.0
        )
        self.data = data
        self.choker = Choker(rng=random.Random(1), config=ChokerConfig(upload_slots=2))
        self.bucket = TokenBucket(rate, now=0.0, burst=32 * 1024)
        self.queue: list[Request] = []

    def step(self, now: float) -> None:
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, HandshakeReceived):
                self.conn.send(HaveAll())
            elif isinstance(event, Interested):
                stats = [PeerStats("leecher", interested=True)]
                if "leecher" in self.choker.run(stats, now, seeding=True).unchoke:
                    self.conn.send(Unchoke())
            elif isinstance(event, Request):
                self.queue.append(event)
        while self.queue and self.bucket.try_consume(self.queue[0].length, now):
            request = self.queue.pop(0)
            start = request.index * PIECE_LENGTH + request.begin
            self.conn.send(Piece(request.index, request.begin, self.data[start:][: request.length]))


def test_leecher_downloads_everything_from_two_rate_limited_seeders() -> None:
    data = random.Random(3).randbytes(12 * PIECE_LENGTH + 5000)
    num_pieces = -(-len(data) // PIECE_LENGTH)
    hashes = [
        hashlib.sha1(data[i * PIECE_LENGTH :][:PIECE_LENGTH]).digest() for i in range(num_pieces)
    ]
    seeders = {"fast": Seeder("fast", data, 400_000.0), "slow": Seeder("slow", data, 100_000.0)}
    picker = PiecePicker(num_pieces, PIECE_LENGTH, len(data), rng=random.Random(7))
    conns = {
        name: PeerConnection(
            peer_id=b"leecher".ljust(20, b"-"),
            info_hash=INFO_HASH,
            initiator=True,
            num_pieces=num_pieces,
            now=0.0,
        )
        for name in seeders
    }
    pipelines = {name: RequestPipeline(0.0) for name in seeders}
    blocks: dict[int, dict[int, bytes]] = {}
    verified: dict[int, bytes] = {}
    delivered: Counter[str] = Counter()

    def refill(name: str, now: float) -> None:
        conn = conns[name]
        if conn.peer_choking:
            return
        depth = min(pipelines[name].depth(now), conn.max_outstanding_requests)
        room = depth - conn.outstanding_count
        for request in picker.pick(name, max(0, room)):
            conn.send(request, now)

    now = 0.0
    for _ in range(20_000):
        if len(verified) == num_pieces:
            break
        now += 0.005
        for name, seeder in seeders.items():
            conn = conns[name]
            outgoing = conn.data_to_send()
            if outgoing:
                seeder.conn.receive_data(outgoing, now)
            seeder.step(now)
            incoming = seeder.conn.data_to_send()
            if incoming:
                conn.receive_data(incoming, now)
            while (event := conn.next_event()) is not None:
                if isinstance(event, HandshakeReceived):
                    conn.send(HaveNone(), now)
                    conn.send(Interested(), now)
                elif isinstance(event, HaveAll):
                    picker.add_peer(name, None)
                elif isinstance(event, Unchoke):
                    refill(name, now)
                elif isinstance(event, RejectRequest):
                    picker.on_request_failed(name, Request(event.index, event.begin, event.length))
                elif isinstance(event, Piece):
                    request = event.request()
                    sent_at = conn.request_sent_at(request)
                    pipelines[name].on_block(len(event.block), now, sent_at)
                    outcome = picker.on_block_received(name, request)
                    if not outcome.accepted:
                        continue
                    delivered[name] += len(event.block)
                    blocks.setdefault(event.index, {})[event.begin] = event.block
                    for loser, cancelled in outcome.cancels:
                        conns[str(loser)].send(
                            Cancel(cancelled.index, cancelled.begin, cancelled.length), now
                        )
                    if outcome.piece_complete:
                        piece = b"".join(v for _, v in sorted(blocks.pop(event.index).items()))
                        assert hashlib.sha1(piece).digest() == hashes[event.index]
                        verified[event.index] = piece
                        picker.on_piece_verified(event.index)
            refill(name, now)
    assert len(verified) == num_pieces
    assert b"".join(verified[i] for i in range(num_pieces)) == data
    assert picker.is_complete()
    assert delivered["fast"] > delivered["slow"] > 0

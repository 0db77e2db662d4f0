"""Micro-benchmark: MB/s of piece messages parsed through PeerConnection.

Run: ``.venv/bin/python -m bench.peerwire [--mib 512] [--chunk 65536]``.
Feeds a stream of 16 KiB piece frames in socket-sized chunks (as an asyncio
protocol would receive them) and drains the events, so the figure covers the
whole receive path: buffering, framing, request bookkeeping, one block copy.
Rates are per CPU second of this process (``time.process_time``), so a busy
machine does not distort them.
The send side (encoding pieces for upload) is measured too, and the whole
sans-IO leecher stack per block (connection + picker + pipeline + refills),
printed as CPU seconds per GiB: the floor the asyncio session adds to.
"""

from __future__ import annotations

import argparse
import time

from servent.proto.peerwire import (
    ConnectionConfig,
    HandshakeReceived,
    PeerConnection,
    Piece,
    Request,
    Unchoke,
    encode_message,
)

BLOCK = 16384
INFO_HASH = b"\x11" * 20


def _open_pair() -> tuple[PeerConnection, PeerConnection]:
    config = ConnectionConfig(max_peer_requests=1 << 20)
    leecher = PeerConnection(
        peer_id=b"L" * 20, info_hash=INFO_HASH, initiator=True, now=0.0, config=config
    )
    seeder = PeerConnection(
        peer_id=b"S" * 20, info_hash=INFO_HASH, initiator=False, now=0.0, config=config
    )
    seeder.receive_data(leecher.data_to_send(), 0.0)
    assert isinstance(seeder.next_event(), HandshakeReceived)
    leecher.receive_data(seeder.data_to_send(), 0.0)
    assert isinstance(leecher.next_event(), HandshakeReceived)
    seeder.send(Unchoke())
    leecher.receive_data(seeder.data_to_send(), 0.0)
    assert leecher.next_event() == Unchoke()
    return leecher, seeder


def bench_receive(total_blocks: int, chunk: int) -> float:
    leecher, _ = _open_pair()
    payload = bytes(range(256)) * (BLOCK // 256)
    blocks_per_piece = 64
    frames = []
    for i in range(total_blocks):
        index, block = divmod(i, blocks_per_piece)
        leecher.send(Request(index, block * BLOCK, BLOCK))
        frames.append(encode_message(Piece(index, block * BLOCK, payload)))
    leecher.data_to_send()
    stream = b"".join(frames)
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    received = 0
    start = time.process_time()
    for data in chunks:
        leecher.receive_data(data, 1.0)
        while (event := leecher.next_event()) is not None:
            received += len(event.block)  # type: ignore[union-attr]
    elapsed = time.process_time() - start
    assert received == total_blocks * BLOCK
    return received / elapsed / 1e6


def bench_send(total_blocks: int) -> float:
    leecher, seeder = _open_pair()
    payload = bytes(BLOCK)
    for i in range(total_blocks):
        leecher.send(Request(i // 64, (i % 64) * BLOCK, BLOCK))
    seeder.receive_data(leecher.data_to_send(), 1.0)
    requests = []
    while (event := seeder.next_event()) is not None:
        requests.append(event)
    start = time.process_time()
    sent = 0
    for request in requests:
        assert isinstance(request, Request)
        seeder.send(Piece(request.index, request.begin, payload))
        for chunk in seeder.chunks_to_send():
            sent += len(chunk)
    elapsed = time.process_time() - start
    return sent / elapsed / 1e6


def bench_leecher_stack(total_blocks: int, chunk: int) -> float:
    """Receive path plus the leecher's per-block work: picker, pipeline, refill requests."""
    import random

    from servent.proto.picker import PiecePicker
    from servent.proto.pipeline import RequestPipeline

    piece_length = 16 * BLOCK
    num_pieces = total_blocks // 16
    leecher, _ = _open_pair()
    picker = PiecePicker(num_pieces, piece_length, num_pieces * piece_length, rng=random.Random(1))
    picker.add_peer("seeder", None)
    pipeline = RequestPipeline(0.0)
    payload = bytes(BLOCK)
    # Pre-build what the seeder would send, in the order the picker will ask.
    order = PiecePicker(num_pieces, piece_length, num_pieces * piece_length, rng=random.Random(1))
    order.add_peer("seeder", None)
    frames = [encode_message(Piece(r.index, r.begin, payload)) for r in order.pick("seeder", 10**9)]
    stream = b"".join(frames)
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    for request in picker.pick("seeder", 64):
        leecher.send(request, 0.0)
    now = 0.0
    received = 0
    start = time.process_time()
    for data in chunks:
        now += 0.0001
        leecher.receive_data(data, now)
        while (event := leecher.next_event()) is not None:
            assert isinstance(event, Piece)
            request = event.request()
            pipeline.on_block(len(event.block), now, leecher.request_sent_at(request))
            outcome = picker.on_block_received("seeder", request)
            received += len(event.block)
            if outcome.piece_complete:
                picker.on_piece_verified(event.index)
        room = min(pipeline.depth(now), 512) - leecher.outstanding_count
        for request in picker.pick("seeder", max(0, room)):
            leecher.send(request, now)
        leecher.data_to_send()
    elapsed = time.process_time() - start
    assert received == num_pieces * piece_length, received
    return received / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="payload MiB to parse")
    parser.add_argument("--chunk", type=int, default=65536, help="bytes per receive_data call")
    args = parser.parse_args()
    blocks = args.mib * 1024 * 1024 // BLOCK
    rate = bench_receive(blocks, args.chunk)
    print(
        f"peerwire receive: {rate:,.0f} MB/s ({args.mib} MiB of 16 KiB pieces, "
        f"{args.chunk} B chunks)"
    )
    print(f"peerwire send:    {bench_send(blocks):,.0f} MB/s (encode + writelines chunks)")
    stack = bench_leecher_stack(blocks, args.chunk)
    print(
        f"leecher stack:    {stack:,.0f} MB/s = {1024**3 / 1e6 / stack:.2f} CPU s/GiB "
        "(connection + picker + pipeline, no hashing, no sockets)"
    )


if __name__ == "__main__":
    main()

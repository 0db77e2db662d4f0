"""Micro-benchmark: CPU per GiB of the leecher's receive path, with no socket, disk or hash.

Run: ``.venv/bin/python -m bench.leecher_path [--mib 512] [--read-kib 128] [--repeat 3]``.

The real :class:`~servent.net.peer_session.PeerSession` (on a stand-in
transport) and :class:`~servent.proto.swarm.SwarmCore` download a torrent
from a simulated seeder that answers each request, in order, with a 16 KiB
block.  What is timed (``time.process_time``, so a busy machine does not
distort it) is everything the leecher's event loop thread does per read:
``buffer_updated`` (framing, the request ledger, the picker, the pipeline,
the copy into the piece buffer), the refill requests and their write, and
the core's bookkeeping of a verified piece.  Hashing, writing and the
kernel's receive copy are left out: they cost the same in any client.  The
figure is the Python share of a real transfer's CPU (``bench.transfer``)
and moves by a few per cent between runs instead of tens.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from servent.codec import bencode
from servent.codec.bitfield import Bitfield
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.net.peer_session import PeerSession
from servent.proto.peerwire import (
    Event,
    HandshakeReceived,
    HaveAll,
    PeerConnection,
    Unchoke,
)
from servent.proto.swarm import PeerState, SwarmCore, VerifyPiece

BLOCK = 16384
PIECE_LENGTH = 1 << 20
GIB = float(1 << 30)
_HEADER = struct.Struct(">IBII")
_FRAME_HEAD = struct.Struct(">IB")
_REQUEST = struct.Struct(">III")
REQUEST_ID = 6


class _Transport:
    """Collects what the leecher writes; the simulated seeder reads it."""

    def __init__(self) -> None:
        self.written = bytearray()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 6881) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def writelines(self, chunks: list[bytes | memoryview]) -> None:
        for chunk in chunks:
            self.written += chunk

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Shell:
    """The part of ``TorrentSession`` on the hot path, with verification short-cut."""

    def __init__(self, core: SwarmCore) -> None:
        self.core = core
        self.peer: PeerState | None = None
        self.now = 0.0

    def peer_events(self, session: PeerSession, events: list[Event]) -> None:
        assert self.peer is not None
        for event in events:
            if isinstance(event, HandshakeReceived):
                self.core.peer_opened(self.peer, self.now)
        self.core.peer_events(self.peer, events, self.now)
        self.carry_out()

    def read_blocks(self, session: PeerSession, data: memoryview, now: float) -> int:
        assert self.peer is not None
        taken = self.core.read_blocks(self.peer, data, now)
        self.carry_out()
        return taken

    def peer_closed(self, session: PeerSession) -> None:
        raise RuntimeError(f"closed: {session.close_reason}")

    def carry_out(self) -> None:
        actions = self.core.actions
        while actions:
            batch = actions[:]
            actions.clear()
            for action in batch:
                if isinstance(action, VerifyPiece):  # taken as good: hashing is not measured
                    core = self.core
                    core.piece_checked(action.index, action.data, action.sources, True, self.now)


class _Seeder:
    """Answers the leecher's requests, in order, with frames of constant bytes."""

    def __init__(self, meta: Metainfo) -> None:
        self.conn = PeerConnection(
            peer_id=b"S" * 20, info_hash=meta.wire_info_hash, initiator=False, now=0.0,
            num_pieces=meta.num_pieces,
        )  # fmt: skip
        self.block = bytes(range(256)) * (BLOCK // 256)
        self.stream = bytearray()
        self.pos = 0  # bytes of ``stream`` already read by the leecher
        self.opened = False
        self.requests: deque[tuple[int, int, int]] = deque()

    def read(self, written: bytearray) -> None:
        """Take the leecher's output: the handshake first, then request frames."""
        if not self.opened:
            self.conn.receive_data(bytes(written))
            written.clear()
            while self.conn.next_event() is not None:
                pass
            self.conn.send(HaveAll())
            self.conn.send(Unchoke())
            self.stream += self.conn.data_to_send()
            self.opened = True
            return
        view = memoryview(written)
        pos = 0
        while len(view) - pos >= 5:
            length, kind = _FRAME_HEAD.unpack_from(view, pos)
            if len(view) - pos < 4 + length:
                break
            if kind == REQUEST_ID:
                self.requests.append(_REQUEST.unpack_from(view, pos + 5))
            pos += 4 + length
        view.release()
        del written[:pos]

    def waiting(self) -> int:
        return len(self.stream) - self.pos

    def produce(self, size: int) -> None:
        """Queue answers until at least ``size`` bytes are waiting (or nothing is asked)."""
        if self.pos > (4 << 20):
            del self.stream[: self.pos]
            self.pos = 0
        while len(self.stream) - self.pos < size and self.requests:
            index, begin, length = self.requests.popleft()
            self.stream += _HEADER.pack(9 + length, 7, index, begin)
            self.stream += self.block[:length]


def _metainfo(mib: int) -> Metainfo:
    pieces = mib * (1 << 20) // PIECE_LENGTH
    info = {
        b"name": b"payload.bin",
        b"piece length": PIECE_LENGTH,
        b"length": pieces * PIECE_LENGTH,
        b"pieces": b"".join(hashlib.sha1(bytes([i % 256])).digest() for i in range(pieces)),
    }
    return parse_torrent(bencode.encode({b"info": info}))  # type: ignore[dict-item]


async def drive(mib: int, read_size: int, on_read: Callable[[PeerSession, int], None]) -> None:
    """One download; ``on_read(session, size)`` handles each read (what is measured)."""
    meta = _metainfo(mib)
    loop = asyncio.get_running_loop()
    have = Bitfield(meta.num_pieces)
    core = SwarmCore(meta, have, wanted=range(meta.num_pieces))
    shell = _Shell(core)
    conn = PeerConnection(
        peer_id=b"L" * 20, info_hash=meta.wire_info_hash, initiator=True, now=loop.time(),
        num_pieces=meta.num_pieces,
    )  # fmt: skip
    session = PeerSession(conn, shell)
    session.on_read = shell.read_blocks  # as TorrentSession.register sets it
    shell.peer = PeerState(conn, meta.num_pieces, loop.time(), dialled=("127.0.0.1", 6881))
    transport = _Transport()
    session.connection_made(transport)  # type: ignore[arg-type]
    seeder = _Seeder(meta)
    reads = 0
    while not core.complete:
        seeder.read(transport.written)
        seeder.produce(read_size)
        if not seeder.waiting():
            await asyncio.sleep(0)  # let the scheduled flush run
            session.flush()
            if not transport.written:
                raise RuntimeError("stalled: nothing to read, nothing requested")
            continue
        size = min(read_size, seeder.waiting())
        shell.now = loop.time()
        with memoryview(seeder.stream) as stream:  # the kernel's copy: not measured
            session.get_buffer(size)[:size] = stream[seeder.pos : seeder.pos + size]
        seeder.pos += size
        on_read(session, size)
        reads += 1
        if reads % 64 == 0:
            await asyncio.sleep(0)


def handle_read(session: PeerSession, size: int) -> None:
    """What the leecher's loop thread does per read: the bytes in, the refill out."""
    session.buffer_updated(size)
    session.flush()


async def run_once(mib: int, read_size: int) -> float:
    """One download; returns the leecher's CPU seconds per GiB."""
    cpu = 0.0

    def timed(session: PeerSession, size: int) -> None:
        nonlocal cpu
        start = time.process_time()
        handle_read(session, size)
        cpu += time.process_time() - start

    await drive(mib, read_size, timed)
    return cpu / (mib * (1 << 20) / GIB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--read-kib", type=int, default=128, help="bytes per socket read")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures = [asyncio.run(run_once(args.mib, args.read_kib * 1024)) for _ in range(args.repeat)]
    each = ", ".join(f"{figure:.3f}" for figure in figures)
    print(
        f"leecher path: median {statistics.median(figures):.3f}, min {min(figures):.3f} "
        f"CPU s/GiB ({each}; {args.mib} MiB, {args.read_kib} KiB reads, no socket, disk "
        "or hash; on a loaded machine the min is the steadier figure)"
    )


if __name__ == "__main__":
    main()

"""The usual blocks of a read taken in one C call; every other block goes the Python way.

Why: a leecher spends most of its loop thread in the interpreter, and nearly
every block is the same case (its piece in progress with a buffer, asked of
this peer alone, not the piece's last block).  ``accept_run`` in
``servent/_native/_accept.c`` does for a run of such blocks exactly what
:meth:`~servent.proto.picker.PiecePicker.block_received` and the swarm
core's per-block step do (picker bookkeeping, the copy into the piece
buffer), and stops at the first other one, which the per-block step then
takes.  Without the extension every block takes the per-block step, which
stays the definition.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeAlias

from servent._native import load
from servent.proto.peerwire import ReceivedBlock
from servent.proto.peerwire.piece_run import scan_piece_run_py
from servent.proto.peerwire.requests import BlockKey
from servent.proto.picker import PiecePicker

__all__ = ["NATIVE", "BlockRun", "ReceivedData", "RunCounts"]

#: What a run of blocks came to: (payload bytes, bytes wasted, latest request time).
RunCounts: TypeAlias = tuple[int, int, "float | None"]
#: A received block's bytes (a view of the read buffer while the run is handled).
ReceivedData: TypeAlias = "bytes | bytearray | memoryview"
#: ``one_block(peer, index, begin, data)``: the per-block step; returns the bytes wasted.
OneBlock: TypeAlias = Callable[[Any, int, int, ReceivedData], int]
#: ``(blocks, start, peer, partials, sizes, block_size, buffers, peer_blocks, blocks_per_piece)``
#: -> ``(next position, payload bytes, latest request time)``.
AcceptRun: TypeAlias = Callable[..., tuple[int, int, float | None]]

#: ``(view, pos, max_length, last_index, outstanding, cancelled, peer, partials, sizes,
#: block_size, buffers, peer_blocks, blocks_per_piece)`` -> ``(next position, payload
#: bytes accepted, latest request time, leftover block or None)``.
AcceptFrames: TypeAlias = Callable[..., tuple[int, int, float | None, ReceivedBlock | None]]


def accept_frames_py(  # noqa: PLR0917 (the C twin's positional signature)
    view: memoryview | bytearray,
    pos: int,
    max_length: int,
    last_index: int,
    outstanding: dict[BlockKey, float],
    cancelled: dict[BlockKey, None],
    *picker_state: Any,
) -> tuple[int, int, float | None, ReceivedBlock | None]:
    """``accept_frames`` without C: accepts none, settles the first block and hands it back.

    The per-block Python step then takes it, which is the definition the C
    path is held to.
    """
    block: list[ReceivedBlock] = []
    pos, _ = scan_piece_run_py(view, pos, max_length, last_index, outstanding, cancelled,
                               block, limit=1)  # fmt: skip
    return pos, 0, None, block[0] if block else None


_native = load("_accept")
_accept_run: AcceptRun | None = None if _native is None else _native.accept_run
#: Whether the compiled path is in use.
NATIVE = _accept_run is not None
_accept_frames: AcceptFrames = accept_frames_py if _native is None else _native.accept_frames


class BlockRun:
    """Feeds a run of blocks to the picker and the piece buffers."""

    __slots__ = ("_state", "accept", "frames")

    def __init__(self, picker: PiecePicker, buffers: dict[int, bytearray]) -> None:
        #: The C path (``None``: every block takes the per-block step).
        self.accept = _accept_run
        #: Frames settled and accepted in one pass (C, else its pure twin).
        self.frames = _accept_frames
        # The picker's own containers (never replaced, only changed in place).
        self._state: tuple[Any, ...] = (
            picker._partial,
            picker._sizes,
            picker.block_size,
            buffers,
            picker._peer_blocks,
            picker.blocks_per_piece,
        )

    def feed(
        self, blocks: Sequence[ReceivedBlock], peer: Hashable, one_block: OneBlock
    ) -> RunCounts:
        """Every block of the run: (payload bytes, bytes wasted, latest request time)."""
        received = wasted = position = 0
        latest: float | None = None
        count = len(blocks)
        accept = self.accept if type(blocks) is list else None
        while position < count:
            if accept is not None:
                position, taken, late = accept(blocks, position, peer, *self._state)
                received += taken
                if late is not None and (latest is None or late > latest):
                    latest = late
                if position == count:
                    break
            index, begin, block, requested_at = blocks[position]
            position += 1
            received += len(block)
            if requested_at is not None and (latest is None or requested_at > latest):
                latest = requested_at
            wasted += one_block(peer, index, begin, block)
        return received, wasted, latest

    def read(
        self, peer: Any, data: memoryview, now: float, one_block: OneBlock
    ) -> tuple[int, RunCounts]:
        """The blocks ``data`` begins with, from the read buffer into their pieces.

        The leecher's lane (``PeerConnection.take_blocks``): each frame that
        is the common case is settled and accepted in C, with no view or
        tuple per block; any other block of ours takes ``one_block``.
        Returns the position of the first byte not taken and the run's counts.
        """
        received = wasted = 0
        latest: float | None = None
        frames = self.frames
        state = self._state

        def take(view: memoryview | bytearray, pos: int, *ledger: Any) -> tuple[int, int]:
            nonlocal received, wasted, latest
            start_received = received
            while peer.closing is None:
                pos, taken, late, leftover = frames(view, pos, *ledger, peer, *state)
                received += taken
                if late is not None and (latest is None or late > latest):
                    latest = late
                if leftover is None:
                    break
                index, begin, block, requested_at = leftover
                received += len(block)
                if requested_at is not None and (latest is None or requested_at > latest):
                    latest = requested_at
                wasted += one_block(peer, index, begin, block)
            return pos, received - start_received

        taken = peer.conn.take_blocks(data, now, take)
        return taken, (received, wasted, latest)

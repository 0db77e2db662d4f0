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
from servent.proto.picker import PiecePicker

__all__ = ["NATIVE", "BlockRun", "ReceivedData"]

#: A received block's bytes (a view of the read buffer while the run is handled).
ReceivedData: TypeAlias = "bytes | bytearray | memoryview"
#: ``one_block(peer, index, begin, data)``: the per-block step; returns the bytes wasted.
OneBlock: TypeAlias = Callable[[Any, int, int, ReceivedData], int]
#: ``(blocks, start, peer, partials, sizes, block_size, buffers, peer_blocks, blocks_per_piece)``
#: -> ``(next position, payload bytes, latest request time)``.
AcceptRun: TypeAlias = Callable[..., tuple[int, int, float | None]]

_native = load("_accept")
_accept_run: AcceptRun | None = None if _native is None else _native.accept_run
#: Whether the compiled path is in use.
NATIVE = _accept_run is not None


class BlockRun:
    """Feeds a run of blocks to the picker and the piece buffers."""

    __slots__ = ("_state", "accept")

    def __init__(self, picker: PiecePicker, buffers: dict[int, bytearray]) -> None:
        #: The C path (``None``: every block takes the per-block step).
        self.accept = _accept_run
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
    ) -> tuple[int, int, float | None]:
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

"""A run of piece frames taken in one call: the leecher's per-block receive loop.

Why a module of its own: this loop runs once per received block, and it has
two implementations that must behave alike: :func:`scan_piece_run_py` here,
and the same function in C (``servent/_native/_scan.c``), used when it was
compiled.  :data:`scan_piece_run` is whichever is in use.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeAlias

from servent._native import load
from servent.proto.peerwire.events import ReceivedBlock
from servent.proto.peerwire.messages import PIECE
from servent.proto.peerwire.requests import BlockKey

__all__ = ["NATIVE", "BlockTaker", "ScanPieceRun", "scan_piece_run", "scan_piece_run_py"]

#: A piece frame's head: length, id, index, begin (13 bytes).
_PIECE_HEAD = struct.Struct(">IBII")
_PIECE_HEAD_SIZE = _PIECE_HEAD.size

#: ``(view, pos, max_length, last_index, outstanding, cancelled, blocks) -> (pos, bytes)``.
ScanPieceRun: TypeAlias = Callable[
    [
        memoryview | bytearray, int, int, int,
        dict[BlockKey, float], dict[BlockKey, None], list[ReceivedBlock],
    ],
    tuple[int, int],
]

#: ``take(view, pos, max_length, last_index, outstanding, cancelled) -> (pos, bytes)``:
#: what :meth:`~servent.proto.peerwire.PeerConnection.take_blocks` hands a read's
#: run of piece frames to; :data:`scan_piece_run` with a list bound is one.
BlockTaker: TypeAlias = Callable[
    [memoryview | bytearray, int, int, int, dict[BlockKey, float], dict[BlockKey, None]],
    tuple[int, int],
]


def scan_piece_run_py(  # noqa: PLR0917 (the C twin's positional signature)
    view: memoryview | bytearray,
    pos: int,
    max_length: int,
    last_index: int,
    outstanding: dict[BlockKey, float],
    cancelled: dict[BlockKey, None],
    blocks: list[ReceivedBlock],
    *,
    limit: int | None = None,
) -> tuple[int, int]:
    """Take the whole piece frames of ``view`` from ``pos`` while each answers a request.

    Appends ``(index, begin, block view, sent_at)`` to ``blocks`` and settles
    each request in ``outstanding`` (``sent_at``) or ``cancelled`` (``None``);
    stops before the first frame that is cut, not a piece, longer than
    ``max_length``, for an index >= ``last_index`` or never asked for.
    ``view`` may be a ``bytearray`` (a frame completed from two reads): its
    blocks are then copies, so the bytearray may change afterwards.  With
    ``limit``, at most that many blocks are taken.  Returns the position
    after the last frame taken and the payload bytes.
    """
    if not 0 <= pos <= len(view):
        raise ValueError("position outside the buffer")
    size = len(view)
    received = 0
    while size - pos >= _PIECE_HEAD_SIZE and (limit is None or len(blocks) < limit):
        length, kind, index, begin = _PIECE_HEAD.unpack_from(view, pos)
        end = pos + 4 + length
        if kind != PIECE or not 9 <= length <= max_length or end > size or index >= last_index:
            break
        key = (index, begin, length - 9)
        sent_at = outstanding.pop(key, None)
        if sent_at is None:
            if key not in cancelled:
                break
            del cancelled[key]
        blocks.append((index, begin, view[pos + _PIECE_HEAD_SIZE : end], sent_at))
        received += length - 9
        pos = end
    return pos, received


_native = load("_scan")
#: Whether the compiled loop is in use.
NATIVE = _native is not None
scan_piece_run: ScanPieceRun = _native.scan_piece_run if _native is not None else scan_piece_run_py

"""The leecher's receive path compiled and pure, for tests that run both.

"native" is the C extension (the piece-run scan, the run of usual blocks
into the picker, and both in one pass for the lane), "python" the pure-Python
path (the scan's twin, and every block through the per-block step).

The compiled one is listed only where it was built (a machine without a
compiler has the pure-Python path alone; ``test_piece_run_native`` checks
that a machine with one built it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from servent._native import load
from servent.proto.peerwire import piece_run
from servent.proto.swarm import block_run

_native = load("_scan")
_accept = load("_accept")
SCAN_PATHS: dict[str, piece_run.ScanPieceRun] = {"python": piece_run.scan_piece_run_py}
if _native is not None and _accept is not None:
    SCAN_PATHS["native"] = _native.scan_piece_run


@contextlib.contextmanager
def scan_path(name: str) -> Iterator[None]:
    """Run the peer wire and the swarm cores made meanwhile on the path called ``name``."""
    previous = piece_run.scan_piece_run, block_run._accept_run, block_run._accept_frames
    piece_run.scan_piece_run = SCAN_PATHS[name]
    native = name == "native"
    block_run._accept_run = _accept.accept_run if native else None  # type: ignore[union-attr]
    block_run._accept_frames = (
        _accept.accept_frames if native else block_run.accept_frames_py  # type: ignore[union-attr]
    )
    try:
        yield
    finally:
        piece_run.scan_piece_run, block_run._accept_run, block_run._accept_frames = previous

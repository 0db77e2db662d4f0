"""The two implementations of the leecher's piece-run scan, for tests that run both.

The compiled one is listed only where it was built (a machine without a
compiler has the pure-Python path alone; ``test_piece_run_native`` checks
that a machine with one built it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from servent._native import load
from servent.proto.peerwire import piece_run

_native = load("_scan")
SCAN_PATHS: dict[str, piece_run.ScanPieceRun] = {"python": piece_run.scan_piece_run_py}
if _native is not None:
    SCAN_PATHS["native"] = _native.scan_piece_run


@contextlib.contextmanager
def scan_path(name: str) -> Iterator[None]:
    """Run the peer wire with the scan called ``name`` for the duration."""
    previous = piece_run.scan_piece_run
    piece_run.scan_piece_run = SCAN_PATHS[name]
    try:
        yield
    finally:
        piece_run.scan_piece_run = previous

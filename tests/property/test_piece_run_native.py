"""The compiled piece-run scan against its pure-Python twin, on random and hostile bytes.

``servent/_native/_scan.c`` must do exactly what ``scan_piece_run_py`` does:
the same position and byte count, the same blocks (views of the same bytes),
the same requests settled, the same error for a bad position.  Frames here
are well formed, cut, mislabelled, too long, out of range, never asked for
or cancelled; junk lands between them.
"""

from __future__ import annotations

import os
import shutil
import struct
import sysconfig
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import servent._native as native
from scan_paths import SCAN_PATHS
from servent.proto.peerwire.requests import BlockKey

_HEAD = struct.Struct(">IBII")
KEYS = [(index, begin, size) for index in range(4) for begin in (0, 16) for size in (0, 3, 16)]


def _piece(key: BlockKey, length_field: int | None, kind: int) -> bytes:
    index, begin, size = key
    length = 9 + size if length_field is None else length_field
    return _HEAD.pack(length, kind, index, begin) + bytes([index * 16 + begin]) * size


frames = st.one_of(
    st.builds(_piece, st.sampled_from(KEYS), st.none(), st.just(7)),
    st.builds(
        _piece,
        st.sampled_from(KEYS),
        st.one_of(st.integers(0, 40), st.just(0xFFFFFFFF)),
        st.sampled_from([7, 7, 4, 0xFF]),
    ),
    st.binary(max_size=20),
)
ledgers = st.dictionaries(st.sampled_from(KEYS), st.floats(0, 1e9, allow_nan=False), max_size=12)
cancels = st.dictionaries(st.sampled_from(KEYS), st.none(), max_size=6)


def _run(
    name: str,
    data: bytes,
    pos: int,
    limits: tuple[int, int],
    outstanding: dict[BlockKey, float],
    cancelled: dict[BlockKey, None],
) -> object:
    """One scan on fresh copies of everything; its whole observable outcome."""
    mine_out, mine_cancelled = dict(outstanding), dict(cancelled)
    blocks: list[tuple[int, int, bytes | memoryview, float | None]] = []
    buffer = bytearray(data)
    try:
        result = SCAN_PATHS[name](
            memoryview(buffer), pos, *limits, mine_out, mine_cancelled, blocks
        )
    except ValueError as exc:
        return ("error", str(exc))
    seen = [(i, b, bytes(block), at) for i, b, block, at in blocks]
    assert buffer == data  # the scan only reads
    return result, seen, list(mine_out.items()), list(mine_cancelled.items())


@settings(max_examples=600)
@given(
    st.lists(frames, max_size=25),
    st.one_of(st.just(0), st.integers(-3, 600)),
    st.sampled_from([9, 12, 25, 1 << 20, 0xFFFFFFFF]),
    st.sampled_from([0, 1, 3, 4, 1 << 32]),
    ledgers,
    cancels,
)
def test_compiled_scan_matches_the_python_scan(
    parts: list[bytes],
    pos: int,
    max_length: int,
    last_index: int,
    outstanding: dict[BlockKey, float],
    cancelled: dict[BlockKey, None],
) -> None:
    data = b"".join(parts)
    outcomes = {
        name: _run(name, data, pos, (max_length, last_index), outstanding, cancelled)
        for name in SCAN_PATHS
    }
    assert len(set(map(repr, outcomes.values()))) == 1, outcomes


def test_a_run_settles_asked_and_cancelled_requests_and_stops_at_a_stranger() -> None:
    asked, cancelled_key, stranger = (0, 0, 3), (1, 16, 3), (2, 0, 3)
    data = b"".join(_piece(k, None, 7) for k in (asked, cancelled_key, stranger))
    for name in SCAN_PATHS:
        outcome = _run(name, data, 0, (1 << 20, 4), {asked: 5.0}, {cancelled_key: None})
        assert outcome == (
            (2 * 16, 6),
            [(0, 0, b"\x00" * 3, 5.0), (1, 16, b"\x20" * 3, None)],
            [],
            [],
        ), name


def _compiler_available() -> bool:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_path("include"), "Python.h")
    return shutil.which(compiler) is not None and headers.exists()


def test_the_extension_is_built_wherever_a_compiler_is() -> None:
    disabled = os.environ.get("SERVENT_NO_NATIVE", "") not in ("", "0")
    assert ("native" in SCAN_PATHS) == (_compiler_available() and not disabled)


@pytest.mark.parametrize("name", ["_scan", "_accept"])
def test_a_module_built_from_another_source_is_refused(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "native" not in SCAN_PATHS:  # nothing built, nothing stale: the pure path is in use
        assert native.load(name) is None
        return
    source = Path(native.__file__).with_name(f"{name}.c")
    headers = sorted(source.parent.glob("*.h"))
    assert headers  # the frames' helpers both modules include
    monkeypatch.setattr(native, "_HERE", tmp_path)
    for header in headers:
        (tmp_path / header.name).write_bytes(header.read_bytes())
    (tmp_path / f"{name}.c").write_bytes(source.read_bytes())
    assert native.load(name) is not None
    for edited, text in ((f"{name}.c", source.read_bytes()), (headers[0].name, None)):
        original = (tmp_path / edited).read_bytes()
        (tmp_path / edited).write_bytes(original + b"/* edited */\n")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert native.load(name) is None  # an edited C file, or header, is stale
        assert any("changed since it was compiled" in str(w.message) for w in caught)
        (tmp_path / edited).write_bytes(original if text is None else text)
    assert native.load(name) is not None
    monkeypatch.setenv("SERVENT_NO_NATIVE", "1")
    (tmp_path / f"{name}.c").write_bytes(source.read_bytes())
    assert native.load(name) is None

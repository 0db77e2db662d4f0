"""Resume records: round trip, corrupt data refused, atomic file store."""

from __future__ import annotations

from pathlib import Path

import pytest

from servent.errors import ResumeDataError
from servent.storage.resume import FileResumeStore, ResumeRecord, write_atomically

RECORD = ResumeRecord(
    info_hash=b"\x01" * 20,
    piece_length=16384,
    num_pieces=10,
    have=bytes([0xA0, 0x40]),
    file_states=((100, 123456789), (-1, 0)),
    priorities=(1, 0),
)


def test_record_round_trips() -> None:
    assert ResumeRecord.decode(RECORD.encode()) == RECORD


@pytest.mark.parametrize("data", [b"", b"garbage", b"de", b"d7:versioni99ee", b"li1ee"])
def test_corrupt_record_raises_resume_data_error(data: bytes) -> None:
    with pytest.raises(ResumeDataError):
        ResumeRecord.decode(data)


def test_file_store_saves_loads_and_deletes(tmp_path: Path) -> None:
    store = FileResumeStore(tmp_path / ".servent")
    assert store.load("ab") is None
    store.save("ab", b"one")
    store.save("ab", b"two")
    assert store.load("ab") == b"two"
    assert sorted(p.name for p in (tmp_path / ".servent").iterdir()) == ["ab.resume"]
    store.delete("ab")
    assert store.load("ab") is None


def test_file_store_refuses_keys_that_are_not_hex(tmp_path: Path) -> None:
    store = FileResumeStore(tmp_path)
    with pytest.raises(ResumeDataError):
        store.save("../evil", b"x")


def test_failed_atomic_write_keeps_the_old_content_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "r"
    write_atomically(target, b"old")

    with pytest.raises(TypeError):
        write_atomically(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r"]

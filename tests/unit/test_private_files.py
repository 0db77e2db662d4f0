"""The data directory is 0700 and its state files 0600, even under a permissive umask."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from servent.daemon.files import load_or_create_token
from servent.node.private_files import private_directory, private_file
from servent.node.state import StateStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _permissive_umask() -> Iterator[None]:
    previous = os.umask(0o002)  # group- and world-readable files unless servent says otherwise
    yield
    os.umask(previous)


def test_a_new_data_directory_and_its_state_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "servent"
    store = StateStore(data)
    store.set_settings({"x": 1})  # the WAL journal and its index now exist
    token = load_or_create_token(data)
    assert _mode(data) == 0o700
    for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm", "api-token"):
        assert _mode(data / name) == 0o600, name
    store.close()
    assert token


def test_existing_loose_data_directory_is_tightened_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    StateStore(data).close()
    os.chmod(data / "state.sqlite3", 0o644)
    (data / "api-token").write_text("secret\n")
    os.chmod(data / "api-token", 0o644)
    with caplog.at_level(logging.WARNING, logger="servent.node.private_files"):
        StateStore(data).close()
        assert load_or_create_token(data) == "secret"
    assert _mode(data) == 0o700
    assert _mode(data / "state.sqlite3") == 0o600
    assert _mode(data / "api-token") == 0o600
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"directory {data} was open to other users (755)" in logged
    assert "api-token was open to other users (644)" in logged


def test_private_file_creates_empty_and_keeps_content(tmp_path: Path) -> None:
    private_directory(tmp_path / "d")
    private_file(tmp_path / "d" / "lock")
    assert (tmp_path / "d" / "lock").read_bytes() == b""
    assert _mode(tmp_path / "d" / "lock") == 0o600
    (tmp_path / "d" / "lock").write_bytes(b"kept")
    private_file(tmp_path / "d" / "lock")
    assert (tmp_path / "d" / "lock").read_bytes() == b"kept"


def test_identity_key_and_message_database_are_private(tmp_path: Path) -> None:
    from servent.node.identity import IDENTITY_FILE, load_or_create_identity
    from servent.node.message_store import DATABASE_NAME, MessageStore

    data = tmp_path / "node"
    identity = load_or_create_identity(data)
    MessageStore(data).close()
    assert _mode(data) == 0o700
    assert _mode(data / IDENTITY_FILE) == 0o600
    assert _mode(data / DATABASE_NAME) == 0o600
    os.chmod(data / IDENTITY_FILE, 0o644)  # e.g. copied in from a backup
    assert load_or_create_identity(data).node_id == identity.node_id
    assert _mode(data / IDENTITY_FILE) == 0o600

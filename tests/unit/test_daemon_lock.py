"""``daemon.lock``: one node per data directory, and the refusal says where it is."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from servent.daemon.files import write_daemon_file
from servent.daemon.server import (
    NodeAlreadyRunningError,
    _lock_data_dir,
    _write_lock_record,
)


def test_a_second_lock_names_the_holder_and_its_address_once_known(tmp_path: Path) -> None:
    held = _lock_data_dir(tmp_path)
    try:
        assert stat.S_IMODE((tmp_path / "daemon.lock").stat().st_mode) == 0o600
        with pytest.raises(NodeAlreadyRunningError, match="still starting") as starting:
            _lock_data_dir(tmp_path)
        assert starting.value.pid == os.getpid() and starting.value.url is None
        _write_lock_record(held, {"pid": os.getpid(), "url": "http://127.0.0.1:9"})
        with pytest.raises(NodeAlreadyRunningError, match=r"web UI is at http://127\.0\.0\.1:9"):
            _lock_data_dir(tmp_path)
    finally:
        held.close()
    again = _lock_data_dir(tmp_path)  # released with the holder
    again.close()


def test_a_lock_without_a_recorded_address_falls_back_to_daemon_json(tmp_path: Path) -> None:
    held = _lock_data_dir(tmp_path)
    try:
        _write_lock_record(held, {})
        write_daemon_file(tmp_path, {"url": "http://127.0.0.1:7"})
        with pytest.raises(NodeAlreadyRunningError) as refused:
            _lock_data_dir(tmp_path)
        assert refused.value.url == "http://127.0.0.1:7" and refused.value.pid is None
        held.seek(0)
        assert json.loads(held.read()) == {}
    finally:
        held.close()

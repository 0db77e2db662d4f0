"""``servent id``: offline from the data directory, and from a running daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from daemon_process import start_daemon
from servent.codec.node_id import parse_node_id


def _servent_id(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servent", "id", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_id_offline_creates_the_key_once_and_shows_the_name(tmp_path: Path) -> None:
    first = _servent_id(tmp_path, "--json", "--name", "Ann")
    assert first.returncode == 0, first.stderr
    record = json.loads(first.stdout)
    assert record["name"] == "Ann" and record["addresses"] == []
    parse_node_id(record["id"])
    (tmp_path / "config.toml").write_text('name = "from the file"\n')
    again = _servent_id(tmp_path)
    assert again.returncode == 0, again.stderr
    assert record["id"] in again.stdout and "from the file" in again.stdout


def test_id_asks_the_running_daemon_for_its_addresses(tmp_path: Path) -> None:
    offline = json.loads(_servent_id(tmp_path, "--json").stdout)
    daemon = start_daemon(tmp_path, "--name", "Node A")
    try:
        shown = _servent_id(tmp_path, "--json")
        assert shown.returncode == 0, shown.stderr
        record = json.loads(shown.stdout)
        port = daemon.ok("GET", "/api/status")["listen_address"][1]
        assert record == {"id": offline["id"], "name": "Node A", "addresses": [f"127.0.0.1:{port}"]}
    finally:
        assert daemon.stop() == 0


def test_a_bad_name_is_a_clear_error(tmp_path: Path) -> None:
    result = _servent_id(tmp_path, "--name", "x" * 100)
    assert result.returncode == 1
    assert "name: at most 64 printable characters" in result.stderr
    assert not (tmp_path / "identity.key").exists()

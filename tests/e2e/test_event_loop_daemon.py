"""A daemon started from the command line runs on uvloop; SERVENT_LOOP=asyncio: asyncio's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon_process import start_daemon

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("env", "expected"), [({}, "uvloop"), ({"SERVENT_LOOP": "asyncio"}, "asyncio")]
)
def test_the_daemon_reports_the_loop_it_runs_on(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    daemon = start_daemon(tmp_path / "node", env=env)
    try:
        status = daemon.ok("GET", "/api/status")
        assert status["event_loop"] == expected
        assert status["version"]
        shown = subprocess.run(
            [sys.executable, "-m", "servent", "status", "--data-dir", str(daemon.data_dir)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert f"event loop      {expected}\n" in shown
    finally:
        assert daemon.stop() == 0


def test_an_unknown_loop_name_stops_the_command_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servent", "daemon", "--data-dir", str(tmp_path / "node"),
         "--api-port", "0", "--dht-enabled", "false", "--lsd-enabled", "false"],
        env={"SERVENT_LOOP": "gevent", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "SERVENT_LOOP='gevent'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "node" / "daemon.json").exists()

"""The README's first command: ``scripts/start`` runs ``servent start``, which starts
the node with its web UI and prints the UI's address (token in the fragment).

Peers, DHT and LSD stay on loopback/off here; everything else is the default
path a user takes.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from daemon_process import start_daemon

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0
UI_LINE = re.compile(r"Open the web UI: (http://127\.0\.0\.1:\d+)/#token=([0-9A-Za-z_\-]+)")
LOOPBACK_FLAGS = (
    "--api-port",
    "0",
    "--listen-host",
    "127.0.0.1",
    "--listen-port",
    "0",
    "--dht-enabled",
    "false",
    "--lsd-enabled",
    "false",
    "--port-mapping",
    "false",
)


def _start(data_dir: Path, *command: str) -> tuple[subprocess.Popen[str], str, str]:
    return _read_address(
        subprocess.Popen(
            [*command, "--data-dir", str(data_dir), *LOOPBACK_FLAGS],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    )


def _start_plain(servent: Path, xdg_data_home: Path) -> tuple[subprocess.Popen[str], str, str]:
    return _read_address(
        subprocess.Popen(
            [str(servent)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1", XDG_DATA_HOME=str(xdg_data_home)),
        )
    )


def _read_address(process: subprocess.Popen[str]) -> tuple[subprocess.Popen[str], str, str]:
    assert process.stdout is not None
    deadline = time.monotonic() + WAIT
    seen: list[str] = []
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if not ready:
            continue
        line = process.stdout.readline()
        seen.append(line)
        match = UI_LINE.search(line)
        if match:
            return process, match.group(1), match.group(2)
    process.kill()
    process.wait(10)
    raise AssertionError("no UI address printed:\n" + "".join(seen))


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_servent_start_prints_a_ui_address_that_answers_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    process, url, token = _start(data_dir, sys.executable, "-m", "servent", "start")
    try:
        assert token == (data_dir / "api-token").read_text().strip()
        status, page = _get(url + "/")
        assert status == 200 and b"<html" in page.lower()
        status, body = _get(url + "/api/status", token)
        node = json.loads(body)
        assert status == 200 and node["data_dir"] == str(data_dir)
        assert node["listen_address"] is not None  # the swarm engine listens for peers

        # A second start for the same data directory fails and names the running node.
        again = subprocess.run(
            [sys.executable, "-m", "servent", "start", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        assert again.returncode == 1, again.stderr
        assert f"{url}/#token={token}" in again.stderr
        assert f"pid {process.pid}" in again.stderr and "already runs" in again.stderr
        assert "Ctrl-C" not in again.stdout + again.stderr
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(WAIT) == 0
    assert not (data_dir / "daemon.json").exists()


def test_plain_servent_with_a_config_file_is_what_scripts_start_runs(tmp_path: Path) -> None:
    """``scripts/start`` bootstraps the venv, then execs ``.venv/bin/servent`` with no
    subcommand; the default data directory comes from XDG and its config.toml."""
    script = (ROOT / "scripts" / "start").read_text()
    assert 'exec .venv/bin/servent "$@"' in script
    data_dir = tmp_path / "xdg" / "servent"
    data_dir.mkdir(parents=True)
    (data_dir / "config.toml").write_text(
        'api_port = 0\nlisten_host = "127.0.0.1"\nlisten_port = 0\n'
        "dht_enabled = false\nlsd_enabled = false\nport_mapping = false\n"
    )
    servent = Path(sys.executable).parent / "servent"
    process, url, token = _start_plain(servent, tmp_path / "xdg")
    try:
        status, body = _get(url + "/api/status", token)
        node = json.loads(body)
        assert status == 200 and node["data_dir"] == str(data_dir)
        assert node["torrents"] == 0
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0


def _second(command: str, data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servent", command, "--data-dir", str(data_dir), *flags],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def test_a_second_node_on_a_running_data_directory_fails_and_names_the_first(
    tmp_path: Path,
) -> None:
    """Whatever started the first node, ``start`` and ``daemon`` both refuse to
    run a second one on its data directory (lock held in ``daemon.lock``)."""
    data_dir = tmp_path / "data"
    first = start_daemon(data_dir)
    url = first.url
    try:
        record = json.loads((data_dir / "daemon.lock").read_text())
        assert record == {"pid": first.process.pid, "url": url}
        for command in ("daemon", "start"):
            again = _second(command, data_dir, *LOOPBACK_FLAGS)
            assert again.returncode == 1, (command, again.stdout, again.stderr)
            assert url in again.stderr and "already runs" in again.stderr
            assert "Traceback" not in again.stderr
        status, _ = _get(url + "/")  # the first node is untouched
        assert status == 200
    finally:
        assert first.stop() == 0
    assert json.loads((data_dir / "daemon.lock").read_text()) == {}  # no stale address


def test_an_api_port_in_use_names_the_port_and_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        flags = [f if f != "0" or i != 1 else str(port) for i, f in enumerate(LOOPBACK_FLAGS)]
        assert flags[:2] == ["--api-port", str(port)]
        result = _second("start", tmp_path / "data", *flags)
    assert result.returncode == 1, result.stdout
    assert f"API port {port}" in result.stderr and "--api-port" in result.stderr
    assert "Traceback" not in result.stderr and "Open the web UI" not in result.stdout
    assert not (tmp_path / "data" / "daemon.json").exists()

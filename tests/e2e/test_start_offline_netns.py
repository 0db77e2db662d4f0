"""``servent start`` with every default on a machine with no network at all.

A laptop on a train: no interface but loopback, no route, no DNS.  The node
must still start, serve its UI and say (in the log) what it could not do:
the DHT's public routers do not resolve, LSD has no multicast route.  The
test runs it in a network namespace it makes with only ``lo`` up, so the
defaults (public DHT bootstrap, LSD on, listening on every address) cannot
send a packet anywhere else.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVENT = ROOT / ".venv" / "bin" / "servent"
PYTHON = ROOT / ".venv" / "bin" / "python"
WAIT = 40.0
UI_LINE = re.compile(r"Open the web UI: (http://127\.0\.0\.1:\d+)/#token=([0-9A-Za-z_\-]+)")


@pytest.fixture
def offline_namespace() -> Iterator[str]:
    name = f"svoff{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def test_start_with_defaults_and_no_network_serves_the_ui(
    offline_namespace: str, tmp_path: Path
) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_DATA_HOME=str(tmp_path / "xdg"))
    log_path = tmp_path / "stderr.log"
    log = log_path.open("ab")  # O_APPEND: the child's writes never overwrite each other
    process = subprocess.Popen(
        ["ip", "netns", "exec", offline_namespace, str(SERVENT), "-v", "start"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + WAIT
        match = None
        while match is None and time.monotonic() < deadline and process.poll() is None:
            ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
            if ready:
                match = UI_LINE.search(process.stdout.readline())
        assert match is not None, f"no UI address; exit {process.poll()}:\n{log_path.read_text()}"
        base, token = match.group(1), match.group(2)
        probe = (
            "import sys, urllib.request\n"
            "req = urllib.request.Request(sys.argv[1] + '/api/status',"
            " headers={'Authorization': 'Bearer ' + sys.argv[2]})\n"
            "print(urllib.request.urlopen(req, timeout=10).read().decode())\n"
        )
        answer = subprocess.run(
            ["ip", "netns", "exec", offline_namespace, str(PYTHON), "-c", probe, base, token],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert answer.returncode == 0, answer.stderr
        assert '"listen_address"' in answer.stdout
        assert process.poll() is None  # still running
        lsd_deadline = time.monotonic() + WAIT  # LSD starts with the engine, after the UI
        while "local service discovery is off" not in log_path.read_text():
            assert time.monotonic() < lsd_deadline, log_path.read_text()
            time.sleep(0.05)  # polling another process's log, bounded
    finally:
        process.terminate()
        code = process.wait(20)
        log.close()
    assert code == 0

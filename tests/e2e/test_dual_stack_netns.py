"""``listen_host = ""`` on a host where IPv6 is switched off.

The test makes its own network namespace with only ``lo`` up and
``net.ipv6.conf.all.disable_ipv6 = 1`` inside it, starts ``servent start``
there with the default ``listen_host`` (every IPv4 and IPv6 address), and checks that the daemon
starts, says in its log that it listens on IPv4 only, reports no IPv6
address in its status, and takes a TCP connection and a DHT ping on
127.0.0.1 at its port.
"""

from __future__ import annotations

import json
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
WARNING = "IPv6 is unavailable"

#: Run inside the namespace: the status, then a TCP connect and a DHT ping on 127.0.0.1.
PROBE = """
import json, socket, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + '/api/status',
                             headers={'Authorization': 'Bearer ' + sys.argv[2]})
status = json.loads(urllib.request.urlopen(req, timeout=10).read())
port = status['listen_address'][1]
socket.create_connection(('127.0.0.1', port), timeout=10).close()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(10)
udp.sendto(b'd1:ad2:id20:' + b'q' * 20 + b'e1:q4:ping1:t2:aa1:y1:qe', ('127.0.0.1', port))
answer, _ = udp.recvfrom(2048)
print(json.dumps({'status': status, 'dht_answer': answer.decode('latin-1')}))
"""


@pytest.fixture
def no_ipv6_namespace() -> Iterator[str]:
    name = f"svno6{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        subprocess.run(
            ["ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
            check=True,
            timeout=10,
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def _ui_address(process: subprocess.Popen[str], log_path: Path) -> tuple[str, str]:
    assert process.stdout is not None
    deadline = time.monotonic() + WAIT
    match = None
    while match is None and time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if ready:
            match = UI_LINE.search(process.stdout.readline())
    assert match is not None, f"no UI address; exit {process.poll()}:\n{log_path.read_text()}"
    return match.group(1), match.group(2)


def test_default_dual_stack_without_ipv6_starts_on_ipv4_with_a_warning(
    no_ipv6_namespace: str, tmp_path: Path
) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_DATA_HOME=str(tmp_path / "xdg"))
    log_path = tmp_path / "stderr.log"
    log = log_path.open("ab")
    command = [str(SERVENT), "-v", "start", "--listen-port", "0"]  # listen_host: the default
    process = subprocess.Popen(
        ["ip", "netns", "exec", no_ipv6_namespace, *command],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    try:
        base, token = _ui_address(process, log_path)
        answer = subprocess.run(
            ["ip", "netns", "exec", no_ipv6_namespace, str(PYTHON), "-c", PROBE, base, token],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert answer.returncode == 0, answer.stderr
        seen = json.loads(answer.stdout)
        status = seen["status"]
        port = status["listen_address"][1]
        assert status["listen_addresses"] == [["0.0.0.0", port]]
        assert status["dht_address"] == ["0.0.0.0", port]
        assert status["dht_address6"] is None
        assert "1:y1:r" in seen["dht_answer"]
        assert WARNING in log_path.read_text()
        assert process.poll() is None  # still running
    finally:
        process.terminate()
        code = process.wait(20)
        log.close()
    assert code == 0


#: Run inside the namespace: a DHT ping and a uTP SYN to 127.0.0.1:PORT, from one socket.
UDP_PROBE = """
import json, socket, struct, sys
port = int(sys.argv[1])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(10)
udp.sendto(b'd1:ad2:id20:' + b'q' * 20 + b'e1:q4:ping1:t2:aa1:y1:qe', ('127.0.0.1', port))
dht, _ = udp.recvfrom(2048)
syn = struct.pack('>BBHIIIHH', 0x41, 0, 4242, 0, 0, 1 << 20, 1, 0)  # ST_SYN, version 1
udp.sendto(syn, ('127.0.0.1', port))
utp = dht
for _ in range(20):  # skip DHT queries the node sends back to our socket meanwhile
    utp, _ = udp.recvfrom(2048)
    if utp[:1] != b'd':
        break
print(json.dumps({'dht': dht.decode('latin-1'), 'utp_type': utp[0] >> 4}))
"""


def test_seed_with_the_dht_without_ipv6_runs_dht_and_utp_on_ipv4(
    no_ipv6_namespace: str, tmp_path: Path
) -> None:
    """``servent seed --dht-port 0`` (every address, the default): IPv4 only, one
    warning, and the DHT and uTP both answer on the TCP port's number."""
    (tmp_path / "data.bin").write_bytes(os.urandom(50_000))
    env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_DATA_HOME=str(tmp_path / "xdg"))
    log_path = tmp_path / "stderr.log"
    command = [str(SERVENT), "seed", str(tmp_path / "data.bin"), "--dht-port", "0"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["ip", "netns", "exec", no_ipv6_namespace, *command],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        try:
            lines = _lines_until_magnet(process, log_path)
            listening = [line for line in lines if line.startswith("listening on ")]
            port = int(listening[0].rsplit(":", 1)[1])
            assert listening == [f"listening on 0.0.0.0:{port}"]
            probe = [str(PYTHON), "-c", UDP_PROBE, str(port)]
            answer = subprocess.run(
                ["ip", "netns", "exec", no_ipv6_namespace, *probe],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert answer.returncode == 0, answer.stderr
            seen = json.loads(answer.stdout)
            assert "1:y1:r" in seen["dht"]
            assert seen["utp_type"] == 2  # ST_STATE: uTP accepted the SYN on the DHT's port
            assert log_path.read_text().count(WARNING) == 1
            assert process.poll() is None  # still seeding
        finally:
            process.terminate()
            code = process.wait(20)
    assert code == 0, log_path.read_text()


def _lines_until_magnet(process: subprocess.Popen[str], log_path: Path) -> list[str]:
    """stdout's lines up to the magnet link (read from the pipe itself: a buffered
    reader would hold lines that ``select`` no longer reports)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + WAIT
    output = b""
    lines: list[str] = []
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if ready:
            output += os.read(fd, 65536)
            lines = output.decode(errors="replace").splitlines()
            if any(line.startswith("magnet:") for line in lines):
                return lines
    raise AssertionError(f"no magnet line; exit {process.poll()}: {lines}\n{log_path.read_text()}")

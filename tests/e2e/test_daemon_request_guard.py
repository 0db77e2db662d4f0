"""The daemon's API against DNS rebinding and cross-site writes, over real HTTP.

A page on a name the attacker controls (rebound to 127.0.0.1) sends that name
as ``Host``; a page on any other origin posting to the API sends its own
``Origin``.  Both are refused with a 403 JSON error before any handler runs,
while the CLI, same-origin UI requests and loopback names keep working.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from daemon_process import Daemon, start_daemon

MAGNET = "magnet:?xt=urn:btih:" + "ef" * 20 + "&dn=guarded"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start_daemon(tmp_path_factory.mktemp("guard-data"))
    yield running
    assert running.stop() == 0


def send(
    daemon: Daemon,
    method: str,
    path: str,
    *,
    host: str | None = None,
    origin: str | None = None,
    body: Any = None,
    token: bool = True,
) -> tuple[int, Any, str]:
    """One request with exactly the Host and Origin given; (status, JSON or None, type)."""
    netloc = urllib.parse.urlsplit(daemon.url).netloc
    connection = http.client.HTTPConnection(netloc, timeout=30)
    headers = {"Host": host if host is not None else netloc}
    if origin is not None:
        headers["Origin"] = origin
    if token:
        headers["Authorization"] = f"Bearer {daemon.token}"
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        kind = response.getheader("Content-Type", "")
    finally:
        connection.close()
    value = json.loads(raw) if kind.startswith("application/json") else None
    return response.status, value, kind


def port_of(daemon: Daemon) -> int:
    port = urllib.parse.urlsplit(daemon.url).port
    assert port is not None
    return port


@pytest.mark.parametrize("path", ["/api/status", "/api/torrents", "/"])
def test_a_foreign_host_name_is_refused_with_a_json_error(daemon: Daemon, path: str) -> None:
    status, value, _ = send(daemon, "GET", path, host=f"rebound.example:{port_of(daemon)}")
    assert status == 403
    assert "rebinding" in value["error"] and "rebound.example" in value["error"]


def test_a_lan_address_is_not_this_loopback_apis_host(daemon: Daemon) -> None:
    status, value, _ = send(daemon, "GET", "/api/status", host="192.168.1.5")
    assert status == 403 and "Host" in value["error"]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "127.0.0.1", "localhost:{port}", "LOCALHOST", "[::1]:{port}",
     "127.0.0.2:{port}", "ui.localhost:{port}"],
)  # fmt: skip
def test_loopback_addresses_and_localhost_names_are_served(daemon: Daemon, host: str) -> None:
    status, value, _ = send(daemon, "GET", "/api/status", host=host.format(port=port_of(daemon)))
    assert status == 200 and value["data_dir"] == str(daemon.data_dir)


def test_the_web_ui_is_served_on_its_own_address(daemon: Daemon) -> None:
    status, _, kind = send(daemon, "GET", "/", token=False)
    assert status == 200 and kind.startswith("text/html")


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:1"])
def test_cross_origin_writes_are_refused_and_change_nothing(daemon: Daemon, origin: str) -> None:
    before = daemon.ok("GET", "/api/settings")
    status, value, _ = send(daemon, "POST", "/api/torrents", origin=origin, body={"magnet": MAGNET})
    assert status == 403 and "cross-origin POST" in value["error"]
    status, value, _ = send(
        daemon, "PATCH", "/api/settings", origin=origin, body={"upload_rate_limit": 1234}
    )
    assert status == 403 and "cross-origin PATCH" in value["error"]
    assert daemon.ok("GET", "/api/torrents") == []
    assert daemon.ok("GET", "/api/settings") == before


def test_same_origin_writes_and_cross_origin_reads_pass(daemon: Daemon) -> None:
    own = daemon.url  # what a browser sends from the UI's own page
    status, added, _ = send(daemon, "POST", "/api/torrents", origin=own, body={"magnet": MAGNET})
    assert 200 <= status < 300, added
    status, listed, _ = send(daemon, "GET", "/api/torrents", origin="http://evil.example")
    assert status == 200 and [t["id"] for t in listed] == [added["id"]]
    status, _, _ = send(daemon, "DELETE", f"/api/torrents/{added['id']}", origin=own + "/")
    assert 200 <= status < 300
    assert daemon.ok("GET", "/api/torrents") == []


def test_the_cli_still_talks_to_the_guarded_api(daemon: Daemon) -> None:
    for command in (["status"], ["list", "--json"]):
        result = subprocess.run(
            [sys.executable, "-m", "servent", *command, "--data-dir", str(daemon.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []

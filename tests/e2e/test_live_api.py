"""The live routes of a real daemon: start, write, play from the live edge, end; refusals."""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_process import Daemon, start_daemon
from servent.proto.live import parse_live_key_with_hint

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    started = start_daemon(tmp_path / "data")
    yield started
    assert started.stop() == 0


def write(daemon: Daemon, live_id: str, data: bytes) -> tuple[int, object]:
    return daemon.call(
        "POST", f"/api/live/{live_id}/data", raw=data, content_type="application/octet-stream"
    )


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_broadcast_plays_from_its_live_edge_until_its_end(daemon: Daemon) -> None:
    started = daemon.ok("POST", "/api/live", {"name": "show.ts"})
    live_id, url = started["id"], started["url"]
    key, hint = parse_live_key_with_hint(started["live_key"])
    assert len(key) == 32 and hint is not None and hint[0] == "127.0.0.1"
    assert url.endswith("/show.ts") and started["name"] == "show.ts"
    first = os.urandom(MIB)  # the largest write, cut into pieces of 64 000 bytes
    assert write(daemon, live_id, first) == (200, {"pieces": 17, "bytes": MIB, "edge": 16})
    status, answer = write(daemon, live_id, b"x" * (MIB + 1))
    assert status == 413, answer
    received = bytearray()
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.headers["Content-Type"] == "video/mp2t"
        reader = threading.Thread(target=lambda: received.extend(response.read()), daemon=True)
        reader.start()
        assert write(daemon, live_id, b"after")[0] == 200
        assert daemon.ok("DELETE", f"/api/live/{live_id}") == {"id": live_id, "ended": True}
        reader.join(30)
        assert not reader.is_alive()
    # From the newest piece when the player came (the last of the first write), then on.
    assert bytes(received) == first[16 * 64000 :] + b"after"
    (listed,) = daemon.ok("GET", "/api/live")
    assert (
        listed["role"] == "broadcaster" and listed["ended"] and listed["bytes_written"] == MIB + 5
    )
    status, answer = write(daemon, live_id, b"late")
    assert status == 400, answer  # the broadcast has ended


def test_wrong_tokens_unknown_broadcasts_and_bad_keys_are_refused(daemon: Daemon) -> None:
    started = daemon.ok("POST", "/api/live", {})
    live_id, url = started["id"], started["url"]
    token = url.split("/live/")[1].split("/")[0]
    assert status_of(url.replace(token, "A" * len(token))) == 403
    assert status_of(url.replace(live_id, "0" * 40).replace(token, "A" * len(token))) == 403
    assert daemon.call("DELETE", f"/api/live/{'0' * 40}")[0] == 404
    assert daemon.call("POST", f"/api/live/{'0' * 40}/data", raw=b"x")[0] == 404
    for bad in ({"key": "live:nonsense"}, {"key": 7}, {}):
        status, answer = daemon.call("POST", "/api/live/watch", bad)
        assert status == 400, (bad, answer)
    assert daemon.call("POST", "/api/live", {"name": "a/b"})[0] == 400
    assert daemon.call("GET", "/api/live", token=None)[0] == 401

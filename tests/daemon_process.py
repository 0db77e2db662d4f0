"""Run ``servent daemon`` as a real subprocess for e2e and browser tests.

The daemon is started on port 0 with peers, DHT and LSD kept off the
network; its API address is read from ``daemon.json`` once the daemon has
printed that it listens (no sleeps: a bounded wait on its output).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polling import poll_until

START_TIMEOUT = 30.0


@dataclass
class Daemon:
    data_dir: Path
    process: subprocess.Popen[str]
    url: str
    token: str
    output: list[str] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "default",
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """One API request; returns (status, decoded JSON) for success and errors alike."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if token is not None:
            request.add_header(
                "Authorization", f"Bearer {self.token if token == 'default' else token}"
            )
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, value = self.call(method, path, body, **kw)
        assert 200 <= status < 300, (status, value)
        return value

    def poll(
        self, path: str, accept: Callable[[Any], object], what: str, within: float = 60.0,
        every: float = 0.1,
    ) -> Any:  # fmt: skip
        """GET ``path`` until ``accept`` takes the answer (bounded: another process's state)."""
        return poll_until(lambda: self.ok("GET", path), accept, what, within, every)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


def _drain(stream: Any, output: list[str], keep: int = 2000) -> None:
    for line in stream:
        output.append(line)
        if len(output) > keep:
            del output[: len(output) - keep]


def start_daemon(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> Daemon:
    """``servent daemon`` on loopback with an API port of its choosing; ``env`` is added to ours."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "servent",
            "daemon",
            "--data-dir",
            str(data_dir),
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
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            process.kill()
            rest = process.stdout.read()
            raise AssertionError("daemon did not start:\n" + "".join(output) + rest)
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if not ready:
            continue
        line = process.stdout.readline()
        output.append(line)
        if "web UI and API at" in line:
            break
    # Keep reading its output so a chatty daemon never blocks on a full pipe.
    threading.Thread(target=_drain, args=(process.stdout, output), daemon=True).start()
    info = json.loads((data_dir / "daemon.json").read_text())
    assert info["pid"] == process.pid
    token = (data_dir / "api-token").read_text().strip()
    return Daemon(data_dir, process, info["url"], token, output)

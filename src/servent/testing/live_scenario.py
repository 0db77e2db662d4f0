"""A real live broadcast on loopback, measured: daemons, the CLI, and light viewers.

One broadcaster daemon fed by ``servent live -`` (a child process whose
stdin gets bytes at a fixed bitrate), viewer daemons playing through
``servent stream LIVEKEY`` and its HTTP URL, and light in-process viewers
(:class:`~servent.testing.live_nodes.LiveNode`), one of which joins late.
:func:`run_live` returns when every viewer has the end of the broadcast (or
a deadline passes) with, per viewer, the delay from each byte being written
to it arriving, and whether every byte matched the source.  Used by
``tests/e2e/test_live_broadcast.py`` and ``bench/live.py``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from servent.proto.live import live_topic, parse_live_key
from servent.testing.live_nodes import LiveNode

__all__ = ["LiveRunConfig", "LiveRunResult", "ViewerRecord", "run_live"]

START_TIMEOUT = 30.0


@dataclass
class LiveRunConfig:
    work_dir: Path
    light_viewers: int = 18
    viewer_daemons: int = 2
    seconds: float = 12.0
    bitrate: int = 256_000  # bytes per second written to the broadcast
    write_every: float = 0.1
    late_join_at: float = 6.0  # the last light viewer joins then
    finish_within: float = 60.0


@dataclass
class ViewerRecord:
    name: str
    #: ``(monotonic arrival time, bytes)`` in order of arrival.
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)
    #: A light viewer's pieces by index (they may arrive out of order).
    pieces: dict[int, tuple[float, bytes]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    first_offset: int | None = None
    complete: bool = False  # saw the end of the broadcast
    matches: bool = False  # every byte received equals the source at its offset
    missing: list[int] = field(default_factory=list)  # a light viewer's gaps (piece indices)


@dataclass
class LiveRunResult:
    source: bytes
    viewers: list[ViewerRecord]
    broadcaster: dict[str, Any]
    late_edge_at_join: int | None = None
    late_first_index: int | None = None


class _Daemon:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""

    def start(self) -> None:
        command = [sys.executable, "-m", "servent", "daemon", "--data-dir", str(self.data_dir)]
        command += ["--api-port", "0", "--listen-host", "127.0.0.1", "--listen-port", "0"]
        command += ["--dht-enabled", "false", "--lsd-enabled", "false"]
        log = (self.data_dir.parent / f"{self.data_dir.name}.log").open("wb")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        info = self.data_dir / "daemon.json"
        while not (info.exists() and (self.data_dir / "api-token").exists()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"daemon in {self.data_dir} did not start")
            time.sleep(0.05)  # polling a file the child writes, under a deadline
        with contextlib.suppress(ValueError):
            self.url = json.loads(info.read_text())["url"]
        self.token = (self.data_dir / "api-token").read_text().strip()
        if not self.url:
            raise RuntimeError("daemon.json has no url")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


async def _cli(daemon: _Daemon, *args: str, stdin: bool = False) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "servent", *args, "--data-dir", str(daemon.data_dir),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )  # fmt: skip


async def _first_json(process: asyncio.subprocess.Process, within: float) -> dict[str, Any]:
    assert process.stdout is not None
    text = b""
    async with asyncio.timeout(within):
        while line := await process.stdout.readline():
            text += line
            with contextlib.suppress(ValueError):
                value: dict[str, Any] = json.loads(text)
                return value
    stderr = await process.stderr.read() if process.stderr is not None else b""
    raise RuntimeError(f"the CLI printed no JSON: {stderr.decode(errors='replace')[-500:]}")


@contextlib.asynccontextmanager
async def _daemons(config: LiveRunConfig) -> AsyncIterator[list[_Daemon]]:
    daemons = [_Daemon(config.work_dir / f"daemon-{i}") for i in range(1 + config.viewer_daemons)]
    try:
        for daemon in daemons:
            await asyncio.to_thread(daemon.start)
        yield daemons
    finally:
        for daemon in daemons:
            await asyncio.to_thread(daemon.stop)


async def run_live(config: LiveRunConfig) -> LiveRunResult:
    """Run the broadcast (see the module docstring); every wait has a deadline."""
    total = int(config.bitrate * config.seconds)
    source = hashlib.shake_256(b"servent live scenario").digest(total)
    writes: list[tuple[int, float]] = []  # (end offset, monotonic time written)
    records: list[ViewerRecord] = []
    async with _daemons(config) as daemons, aiohttp.ClientSession() as http:
        broadcaster = daemons[0]
        live = await _cli(broadcaster, "live", "-", "--name", "scenario.bin", "--json", stdin=True)
        try:
            started = await _first_json(live, START_TIMEOUT)
            key = started["live_key"]
            light = [LiveNode() for _ in range(config.light_viewers)]
            async with contextlib.AsyncExitStack() as stack:
                for node in light:
                    await stack.enter_async_context(node)
                for node in light[:-1]:
                    records.append(_watch_light(node, key, f"light-{len(records)}"))
                players = [
                    asyncio.create_task(_play(http, daemon, key, records)) for daemon in daemons[1:]
                ]
                result = LiveRunResult(source, records, {})
                await _write(
                    live, source, config=config, writes=writes, late=light[-1], key=key,
                    broadcaster=broadcaster, http=http, result=result,
                )  # fmt: skip
                await _wait_all(records, players, config.finish_within)
                await live.wait()
                result.broadcaster = (await _api(http, broadcaster, "GET", "/api/live"))[0]
        finally:
            if live.returncode is None:
                live.kill()
                await live.wait()
    for record in records:
        _measure(record, source, writes)
    return result


def _watch_light(node: LiveNode, key: str, name: str) -> ViewerRecord:
    record = ViewerRecord(name)
    session = node.live.watch(key)
    session.on_piece.append(lambda index, data, now: record.pieces.update({index: (now, data)}))
    return record


async def _api(http: aiohttp.ClientSession, daemon: _Daemon, method: str, path: str) -> Any:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    async with http.request(method, daemon.url + path, headers=headers) as response:
        return await response.json()


async def _play(
    http: aiohttp.ClientSession, daemon: _Daemon, key: str, records: list[ViewerRecord]
) -> None:
    """``servent stream LIVEKEY --json``, then read its URL as a player would."""
    stream = await _cli(daemon, "stream", key, "--json")
    answer = await _first_json(stream, START_TIMEOUT)
    await stream.wait()
    record = ViewerRecord(f"daemon-{daemon.data_dir.name}")
    records.append(record)
    async with http.get(answer["url"], timeout=aiohttp.ClientTimeout(total=None)) as response:
        async for chunk in response.content.iter_any():
            record.arrivals.append((time.monotonic(), chunk))
    record.complete = True


async def _write(
    live: asyncio.subprocess.Process,
    source: bytes,
    *,
    config: LiveRunConfig,
    writes: list[tuple[int, float]],
    late: LiveNode,
    key: str,
    broadcaster: _Daemon,
    http: aiohttp.ClientSession,
    result: LiveRunResult,
) -> None:
    """Write the source to the broadcaster's stdin at the bitrate; the late viewer joins."""
    assert live.stdin is not None
    step = int(config.bitrate * config.write_every)
    begin = time.monotonic()
    for at in range(0, len(source), step):
        due = begin + at / config.bitrate
        await asyncio.sleep(max(0.0, due - time.monotonic()))  # pacing the writer, not a sync
        live.stdin.write(source[at : at + step])
        await live.stdin.drain()
        writes.append((min(at + step, len(source)), time.monotonic()))
        if result.late_edge_at_join is None and time.monotonic() - begin >= config.late_join_at:
            figures = (await _api(http, broadcaster, "GET", "/api/live"))[0]
            result.late_edge_at_join = figures["edge"]
            record = _watch_light(late, key, "late")
            result.viewers.append(record)
            topic = live_topic(parse_live_key(key))
            pieces = late.live.sessions[topic].on_piece
            pieces.append(lambda index, _d, _n: _first_index(result, index))
    live.stdin.close()


def _first_index(result: LiveRunResult, index: int) -> None:
    if result.late_first_index is None or index < result.late_first_index:
        result.late_first_index = index


async def _wait_all(
    records: list[ViewerRecord], players: list[asyncio.Task[None]], within: float
) -> None:
    deadline = time.monotonic() + within
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await asyncio.gather(*players)
    while time.monotonic() < deadline:
        if all(r.complete or _has_all(r) for r in records):
            break
        await asyncio.sleep(0.05)  # checking a condition under a deadline
    for task in players:
        task.cancel()


def _has_end(record: ViewerRecord) -> bool:
    return bool(record.pieces) and record.pieces[max(record.pieces)][1] == b""


def _has_all(record: ViewerRecord) -> bool:
    """The end, and every piece from the first one received to it (the end piece may
    come before the last data pieces: a full node hands it over unasked)."""
    first, last = min(record.pieces, default=0), max(record.pieces, default=-1)
    return _has_end(record) and len(record.pieces) == last - first + 1


def _measure(record: ViewerRecord, source: bytes, writes: list[tuple[int, float]]) -> None:
    """Align what the viewer got with the source; delay of each arrival from its write."""
    if record.pieces:
        indices = sorted(record.pieces)
        record.complete = _has_end(record)
        record.arrivals = [record.pieces[i] for i in indices]
        record.missing = sorted(set(range(indices[0], indices[-1])) - set(indices))
        if record.missing:  # a gap: not every piece arrived
            return
    data = b"".join(chunk for _, chunk in record.arrivals)
    if not data:
        return
    first = source.find(data[: min(len(data), 4096)])
    record.first_offset = first if first >= 0 else None
    record.matches = first >= 0 and source[first : first + len(data)] == data
    ends = [end for end, _ in writes]
    offset = first
    for arrived, chunk in record.arrivals:
        if not chunk:
            continue
        offset += len(chunk)
        written = writes[min(bisect.bisect_left(ends, offset), len(writes) - 1)][1]
        record.latencies.append(arrived - written)

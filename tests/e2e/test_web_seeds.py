"""Web seeds (BEP 19) from a real aiohttp server on 127.0.0.1.

The server serves the payload folder with HTTP range support under
``/good/`` and, under ``/bad/``, garbage of the right length for any range.
A torrent whose ``url-list`` names the good server downloads with no peer at
all (multi-file hybrid torrent with pad files, and a single-file torrent
whose URL names the file itself); with both servers listed the garbage one
is dropped after its first piece fails and the download completes, verified.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from interop.reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    wait_until,
    write_payload,
)
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentConfig

pytestmark = pytest.mark.e2e

DEADLINE = 30.0
FILES = {"a.bin": 300_001, "sub/b b.bin": 70_000, "sub/c.bin": 16_384 * 9 + 17}
RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def served_file(root: Path, relative: str) -> Path | None:
    """The file under ``root`` a URL path names, or None (missing, or outside ``root``)."""
    path = (root / relative).resolve()
    return path if root.resolve() in path.parents and path.is_file() else None


@asynccontextmanager
async def web_server(root: Path) -> AsyncIterator[str]:
    """``http://127.0.0.1:PORT`` serving ``root`` at /good/ and garbage at /bad/."""

    async def good(request: web.Request) -> web.StreamResponse:
        path = served_file(root, request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)  # honours Range with 206

    async def bad(request: web.Request) -> web.StreamResponse:
        match = RANGE.fullmatch(request.headers.get("Range", ""))
        if match is None:
            raise web.HTTPBadRequest()
        start, end = int(match[1]), int(match[2])
        return web.Response(status=206, body=os.urandom(end - start + 1))

    app = web.Application()
    app.router.add_get("/good/{path:.+}", good)
    app.router.add_get("/bad/{path:.+}", bad)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()


def folder_torrent(root: Path) -> tuple[Metainfo, dict[str, bytes]]:
    expected = {
        name: write_payload(root / "content" / name, size, seed=number)
        for number, (name, size) in enumerate(FILES.items(), start=1)
    }
    torrent = create_torrent_with_libtorrent(
        root / "content", version="hybrid", piece_length=32 * 1024
    )
    return parse_torrent(torrent), expected


async def test_download_from_a_web_seed_alone(tmp_path: Path) -> None:
    meta, expected = folder_torrent(tmp_path / "www")
    async with web_server(tmp_path / "www") as base:
        meta = dataclasses.replace(meta, web_seeds=(f"{base}/good/",))
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out")
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            stats = session.statistics()
    assert stats.hash_failures == 0
    assert stats.downloaded_from[f"{base}/good/"] >= sum(FILES.values())
    for name, data in expected.items():
        assert (tmp_path / "out" / "content" / name).read_bytes() == data


async def test_single_file_url_names_the_file(tmp_path: Path) -> None:
    data = write_payload(tmp_path / "www" / "one.bin", 200_000, seed=9)
    meta = parse_torrent(create_torrent_with_libtorrent(tmp_path / "www" / "one.bin", version="v1"))
    async with web_server(tmp_path / "www") as base:
        meta = dataclasses.replace(meta, web_seeds=(f"{base}/good/one.bin",))
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out")
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
    assert (tmp_path / "out" / "one.bin").read_bytes() == data


async def test_garbage_web_seed_is_dropped_and_the_good_one_finishes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="servent.net.web_seed")
    meta, expected = folder_torrent(tmp_path / "www")
    async with web_server(tmp_path / "www") as base:
        bad, good = f"{base}/bad/", f"{base}/good/"
        meta = dataclasses.replace(meta, web_seeds=(bad, good))
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out")
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            seeds = {seed.url: seed for seed in session.web_seeds}
            stats = session.statistics()
    assert seeds[bad].dropped is not None and "failed its hash" in seeds[bad].dropped
    assert seeds[bad].pieces_fetched == 0
    assert seeds[good].dropped is None and seeds[good].pieces_fetched > 0
    assert stats.hash_failures >= 1
    assert f"dropping web seed {bad}" in caplog.text
    for name, data in expected.items():
        assert (tmp_path / "out" / "content" / name).read_bytes() == data


async def test_unreachable_web_seed_is_dropped_after_retries(tmp_path: Path) -> None:
    meta, _expected = folder_torrent(tmp_path / "www")
    async with web_server(tmp_path / "www") as base:
        meta = dataclasses.replace(meta, web_seeds=(f"{base}/good/missing-folder/",))
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out")
            await wait_until(lambda: session.web_seeds, "the web seed to start", DEADLINE)
            await asyncio.wait_for(session.web_seeds[0].finished.wait(), DEADLINE)
            assert "HTTP 404" in (session.web_seeds[0].dropped or "")
            assert session.have_bytes == 0


async def test_web_seed_and_a_peer_both_contribute(tmp_path: Path) -> None:
    meta, expected = folder_torrent(tmp_path / "www")
    async with web_server(tmp_path / "www") as base:
        url = f"{base}/good/"
        meta = dataclasses.replace(meta, web_seeds=(url,))
        config = EngineConfig(listen_host=LOOPBACK)
        async with SwarmEngine(config) as seeder, SwarmEngine(config) as engine:
            seeding = await seeder.add_torrent(
                meta, tmp_path / "www", config=TorrentConfig(upload_rate=128 * 1024)
            )
            assert seeding.complete
            session = await engine.add_torrent(
                meta, tmp_path / "out", peers=[(LOOPBACK, seeder.port)]
            )
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            stats = session.statistics()
    assert stats.downloaded_from.get(url, 0) > 0
    assert stats.downloaded_from.get(f"{LOOPBACK}:{seeder.port}", 0) > 0
    for name, data in expected.items():
        assert (tmp_path / "out" / "content" / name).read_bytes() == data

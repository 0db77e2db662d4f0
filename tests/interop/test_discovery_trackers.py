"""Downloads that find their peers through servent's built-in tracker only.

* servent seeds and announces to its own tracker (HTTP, UDP); libtorrent,
  told only the tracker, finds servent there and downloads from it;
* libtorrent seeds and announces; servent, told only the tracker, finds
  libtorrent there and downloads;
* aria2 downloads from a servent seeder found through servent's tracker;
* when the download completes servent sends ``completed``, and removing the
  torrent sends ``stopped`` (the tracker forgets it); scrape answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
from pathlib import Path

import libtorrent as lt
import pytest
from reference_clients import (
    LOOPBACK,
    aria2_leecher_args,
    aria2c,
    assert_content,
    create_torrent_with_libtorrent,
    free_port,
    libtorrent_peer,
    wait_until,
    write_content,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_discovery import DiscoveryConfig
from servent.net.tracker_server import TrackerServer

pytestmark = pytest.mark.interop

DEADLINE = 60.0
FILES = {"a.bin": 500_003, "sub/b.bin": 33_000}
QUICK = DiscoveryConfig(tracker_min_interval=1.0, tracker_retry=1.0, poll_interval=0.2)


_HOSTS = itertools.count(random.randrange(2, 200))


def tracker_host() -> str:
    """A loopback address of its own for each tracker of this process.

    libtorrent caches UDP tracker connection IDs per tracker IP, process-wide:
    a new tracker on an address an earlier one used would refuse the cached
    ID and libtorrent would wait a minute before asking again.
    """
    return f"127.0.{next(_HOSTS) % 250 + 1}.1"


def tracker_url(server: TrackerServer, scheme: str) -> str:
    if scheme == "udp":
        return f"udp://{server.host}:{server.port}/announce"
    return f"http://{server.host}:{server.port}/announce"


async def libtorrent_announced(
    handle: lt.torrent_handle, tracker: TrackerServer, info_hash: bytes
) -> None:
    """Until libtorrent's announce reached the tracker.

    libtorrent may announce before its UDP socket is open and then wait a
    minute before retrying: ask it again every second, under one deadline.
    """
    async with asyncio.timeout(DEADLINE):
        while tracker.state.peer_count(info_hash) == 0:
            handle.force_reannounce()
            with contextlib.suppress(TimeoutError):
                await wait_until(lambda: tracker.state.peer_count(info_hash) > 0, "", 1.0)


@pytest.mark.parametrize("scheme", ["http", "udp"])
async def test_libtorrent_finds_servent_through_servents_tracker(
    tmp_path: Path, scheme: str
) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="hybrid")
    meta = parse_torrent(torrent)
    async with TrackerServer(tracker_host(), 0) as tracker:
        url = tracker_url(tracker, scheme)
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(meta, tmp_path / "seed", trackers=[url])
            await wait_until(
                lambda: tracker.state.peer_count(meta.wire_info_hash) == 1,
                "servent to announce itself",
            )
            with libtorrent_peer(stop_tracker_timeout=1) as leecher:
                params = lt.add_torrent_params()
                params.ti = lt.torrent_info(lt.bdecode(torrent))
                params.save_path = str(tmp_path / "down")
                params.trackers = [url]
                handle = leecher.session.add_torrent(params)
                await leecher.wait_complete(handle, DEADLINE)
            assert sum(session.statistics().uploaded_to.values()) >= meta.total_length
    assert_content(tmp_path / "down", expected)


@pytest.mark.parametrize("scheme", ["http", "udp"])
async def test_servent_finds_libtorrent_through_servents_tracker_and_says_completed(
    tmp_path: Path, scheme: str
) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    meta = parse_torrent(torrent)
    async with TrackerServer(tracker_host(), 0) as tracker:
        url = tracker_url(tracker, scheme)
        with libtorrent_peer(stop_tracker_timeout=1) as seeder:
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(lt.bdecode(torrent))
            params.save_path = str(tmp_path / "seed")
            params.flags |= lt.torrent_flags.seed_mode
            params.trackers = [url]
            handle = seeder.session.add_torrent(params)
            await libtorrent_announced(handle, tracker, meta.wire_info_hash)
            config = EngineConfig(listen_host=LOOPBACK, discovery=QUICK)
            async with SwarmEngine(config) as engine:
                session = await engine.add_torrent(meta, tmp_path / "down", trackers=[url])
                async with asyncio.timeout(DEADLINE):
                    await session.wait_complete()
                stats = session.statistics()
                assert stats.downloaded_from.get(f"{LOOPBACK}:{seeder.port}", 0) > 0
                discovery = engine.discoveries[session]
                assert discovery.found.get("tracker", 0) >= 1
                # ``completed`` reaches the tracker: it now counts two seeds.
                await wait_until(
                    lambda: tracker.state.scrape(meta.wire_info_hash).complete == 2,
                    "servent's 'completed' announce",
                )
                scraped = await engine.scrape(session)
                assert scraped[url].complete == 2
                await engine.remove_torrent(session)  # sends 'stopped'
                assert tracker.state.peer_count(meta.wire_info_hash) == 1
    assert_content(tmp_path / "down", expected)


async def test_aria2_downloads_from_servent_found_through_servents_tracker(
    tmp_path: Path,
) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    torrent_file = tmp_path / "content.torrent"
    torrent_file.write_bytes(torrent)
    meta = parse_torrent(torrent)
    async with TrackerServer(tracker_host(), 0) as tracker:
        url = tracker_url(tracker, "http")
        config = EngineConfig(listen_host=LOOPBACK, extra_trackers=(url,))
        async with SwarmEngine(config) as engine:
            session = await engine.add_torrent(meta, tmp_path / "seed")
            await wait_until(
                lambda: tracker.state.peer_count(meta.wire_info_hash) == 1,
                "servent to announce itself",
            )
            port = free_port()
            args = aria2_leecher_args(torrent_file, tmp_path / "down", port, tracker_url=url)
            async with aria2c(args, port) as aria2:
                code = await aria2.wait(DEADLINE)
                assert code == 0, aria2.log_tail()
            assert sum(session.statistics().uploaded_to.values()) >= meta.total_length
    assert_content(tmp_path / "down", expected)


async def test_magnet_tr_tracker_used_for_metadata_and_payload(tmp_path: Path) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="hybrid")
    meta = parse_torrent(torrent)
    async with TrackerServer(tracker_host(), 0) as tracker:
        url = tracker_url(tracker, "udp")
        async with (
            SwarmEngine(EngineConfig(listen_host=LOOPBACK, extra_trackers=(url,))) as seeder,
            SwarmEngine(EngineConfig(listen_host=LOOPBACK, discovery=QUICK)) as leecher,
        ):
            await seeder.add_torrent(meta, tmp_path / "seed")
            await wait_until(
                lambda: tracker.state.peer_count(meta.wire_info_hash) == 1,
                "the seeder to announce itself",
            )
            magnet = dataclasses.replace(meta.to_magnet(), trackers=(url,))
            fetched = await leecher.fetch_metadata(magnet, timeout=DEADLINE)
            session = await leecher.add_torrent(
                fetched, tmp_path / "down", trackers=magnet.trackers
            )
            async with asyncio.timeout(DEADLINE):
                await session.wait_complete()
    assert_content(tmp_path / "down", expected)

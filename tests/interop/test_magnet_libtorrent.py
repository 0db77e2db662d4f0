"""Magnet links between servent and libtorrent: by ``x.pe`` and through the DHT alone.

* servent fetches the metadata of a libtorrent-seeded magnet from its
  ``x.pe`` peer, then the payload;
* a small DHT on 127.0.0.1 (servent nodes, libtorrent sessions): libtorrent
  fetches a servent-seeded magnet found only through the DHT, and servent
  fetches a libtorrent-seeded magnet found only through the DHT.

libtorrent runs with the loopback-friendly DHT settings of the interop notes;
every wait is bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from pathlib import Path

import libtorrent as lt
import pytest
from reference_clients import (
    LOOPBACK,
    assert_content,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    wait_until,
    write_content,
)

from servent.codec.magnet import Magnet
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.net.dht_driver import DhtDriver
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_discovery import DiscoveryConfig
from servent.proto.dht import DhtConfig

pytestmark = pytest.mark.interop

DEADLINE = 60.0
FILES = {"a.bin": 400_001, "sub/b.bin": 16_384 * 3 + 5}
#: servent's per-IP defences are off on loopback, where every node shares one IP.
RELAXED = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0, query_timeout=1.0)
#: Look again quickly while nobody is found (the other side may announce a bit later).
FAST_DISCOVERY = DiscoveryConfig(dht_first_retry=1.0, dht_retry=3.0, poll_interval=0.5)


def bare_magnet(meta: Metainfo) -> Magnet:
    """Only the info-hashes and the name: no peers, no trackers."""
    return Magnet(meta.info_hash_v1, meta.info_hash_v2, display_name=meta.name)


@pytest.mark.parametrize("version", ["v1", "hybrid"])
async def test_servent_fetches_a_libtorrent_seeded_magnet_by_x_pe(
    tmp_path: Path, version: str
) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "content", version=version, piece_length=32 * 1024
    )
    meta = parse_torrent(torrent)
    with libtorrent_peer() as seeder:
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        magnet = Magnet(
            meta.info_hash_v1, meta.info_hash_v2, display_name=meta.name,
            peers=(seeder.address,),
        )  # fmt: skip
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            fetched = await engine.fetch_metadata(magnet, timeout=DEADLINE)
            assert fetched.info_bytes == meta.info_bytes
            session = await engine.add_torrent(fetched, tmp_path / "down")
            async with asyncio.timeout(DEADLINE):
                await session.wait_complete()
    assert_content(tmp_path / "down", expected)


# ------------------------------------------------------------------ DHT


@pytest.fixture
async def dht_router() -> AsyncIterator[DhtDriver]:
    """The one bootstrap address of the test DHT (a plain servent DHT node)."""
    async with DhtDriver(host=LOOPBACK, config=RELAXED, rng=random.Random(11)) as router:
        yield router


async def joined(router: DhtDriver, seed: int) -> DhtDriver:
    driver = DhtDriver(host=LOOPBACK, config=RELAXED, rng=random.Random(seed))
    await driver.start()
    async with asyncio.timeout(20):
        await driver.bootstrap([router.address])
    return driver


async def test_libtorrent_fetches_a_servent_seeded_magnet_through_the_dht(
    tmp_path: Path, dht_router: DhtDriver
) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    meta = parse_torrent(torrent)
    dht = await joined(dht_router, 21)
    try:
        async with SwarmEngine(
            EngineConfig(listen_host=LOOPBACK, discovery=FAST_DISCOVERY), dht=dht
        ) as engine:
            session = await engine.add_torrent(meta, tmp_path / "seed")
            assert session.complete
            discovery = engine.discoveries[session]
            await wait_until(lambda: discovery.dht_rounds >= 1, "servent's DHT announce")
            with libtorrent_peer(dht=True) as leecher:
                leecher.session.add_dht_node(dht_router.address)
                params = lt.parse_magnet_uri(bare_magnet(meta).to_uri())
                params.save_path = str(tmp_path / "down")
                handle = leecher.session.add_torrent(params)
                await leecher.wait_for(
                    lambda: handle.status().has_metadata, "libtorrent to get the metadata"
                )
                await leecher.wait_complete(handle, DEADLINE)
            assert session.extensions.metadata_pieces_served >= 1
    finally:
        await dht.close()
    assert_content(tmp_path / "down", expected)


async def test_servent_fetches_a_libtorrent_seeded_magnet_through_the_dht(
    tmp_path: Path, dht_router: DhtDriver
) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="hybrid")
    meta = parse_torrent(torrent)
    dht = await joined(dht_router, 31)
    try:
        with libtorrent_peer(dht=True) as seeder:
            seeder.session.add_dht_node(dht_router.address)
            handle = await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
            handle.force_dht_announce()
            async with SwarmEngine(
                EngineConfig(listen_host=LOOPBACK, discovery=FAST_DISCOVERY), dht=dht
            ) as engine:
                fetched = await engine.fetch_metadata(bare_magnet(meta), timeout=DEADLINE)
                assert fetched.info_bytes == meta.info_bytes
                session = await engine.add_torrent(fetched, tmp_path / "down")
                async with asyncio.timeout(DEADLINE):
                    await session.wait_complete()
                stats = session.statistics()
                assert sum(stats.downloaded_from.values()) >= stats.wanted_bytes
    finally:
        await dht.close()
    assert_content(tmp_path / "down", expected)


async def test_servent_gets_a_v2_only_magnet_from_libtorrent_piece_layers_included(
    tmp_path: Path,
) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "content", version="v2", piece_length=32 * 1024
    )
    meta = parse_torrent(torrent)
    assert meta.info_hash_v1 is None and meta.info_hash_v2 is not None
    with libtorrent_peer() as seeder:
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        magnet = Magnet(info_hash_v2=meta.info_hash_v2, peers=(seeder.address,))
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            fetched = await engine.fetch_metadata(magnet, timeout=DEADLINE)
            # Verified by the v2 hash; the piece layers came by BEP 52 hash requests.
            assert fetched.info_bytes == meta.info_bytes
            assert fetched.info_hash_v2 == meta.info_hash_v2
            assert dict(fetched.piece_layers) == dict(meta.piece_layers) != {}
            session = await engine.add_torrent(fetched, tmp_path / "down")
            async with asyncio.timeout(DEADLINE):
                await session.wait_complete()
    assert_content(tmp_path / "down", expected)


async def test_servent_gets_metadata_from_a_libtorrent_seeder_that_dials_it(
    tmp_path: Path,
) -> None:
    """The fetch accepts incoming peers: libtorrent dials servent, which knows no peer."""
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="hybrid")
    meta = parse_torrent(torrent)
    # A tracker that never answers keeps the fetch waiting instead of giving up.
    magnet = dataclasses.replace(bare_magnet(meta), trackers=("http://127.0.0.1:1/announce",))
    with libtorrent_peer() as seeder:
        handle = await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            async with asyncio.TaskGroup() as tasks:
                fetch = tasks.create_task(engine.fetch_metadata(magnet, timeout=DEADLINE))
                while not fetch.done():  # libtorrent dials until the fetch takes it
                    seeder.connect(handle, LOOPBACK, engine.port)
                    await asyncio.wait([fetch], timeout=1.0)
            fetched = fetch.result()
            assert fetched.info_bytes == meta.info_bytes
            session = await engine.add_torrent(fetched, tmp_path / "down")
            seeder.connect(handle, LOOPBACK, engine.port)
            async with asyncio.timeout(DEADLINE):
                await session.wait_complete()
    assert_content(tmp_path / "down", expected)

"""A servent seeder reaches leechers through a standalone tracker, whichever announced first.

Regression: a seeding torrent never dialled the peers a tracker handed it
(their kind is unknown), so when a leecher announced first and the tracker's
interval was long, the seeder learnt of it and waited, and the download never
started.  servent's own tracker (``TrackerServer``) runs with a 30-minute
interval *and* minimum interval, so no client announces twice during a test.

* **seeder first**: the seeder announces to an empty swarm; the leecher
  (libtorrent or aria2) announces, is given the seeder, and dials it.
* **leecher first**: the leecher announces while no seeder exists (it is
  given nobody and, with the long interval, never asks again); then the
  seeder starts, announces, is given the leecher, and must dial it.  The
  proof that the seeder dialled: every byte it uploaded went to the
  leecher's *listening* address (an incoming connection is labelled by its
  source port); for libtorrent also that its connection to the seeder was an
  incoming one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import libtorrent as lt
import pytest
from reference_clients import (
    LOOPBACK,
    aria2_leecher_args,
    aria2c,
    free_port,
    libtorrent_peer,
    write_payload,
)

from polling import wait_for as polled
from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentConfig, TorrentSession
from servent.net.tracker_server import TrackerServer
from servent.proto.tracker_state import TrackerConfig

pytestmark = pytest.mark.interop

SIZE = 1024 * 1024
DEADLINE = 60.0
#: Tracker interval and minimum interval: nobody re-announces during a test.
LONG_INTERVAL = 1800
#: The seeder uploads for about two seconds: libtorrent's view of the connection is
#: polled meanwhile (an unpaced 1 MiB is over between two polls).
PACED = TorrentConfig(upload_rate=512 * 1024)


def make_torrent(seed_dir: Path, tracker_url: str) -> tuple[bytes, bytes]:
    """A v1 torrent (aria2 is v1-only) of a 1 MiB payload, announcing to ``tracker_url``."""
    payload = seed_dir / "payload.bin"
    data = write_payload(payload, SIZE, seed=21)
    with warnings.catch_warnings():  # file_storage API: deprecated in 2.1, still exact
        warnings.simplefilter("ignore", DeprecationWarning)
        files = lt.file_storage()
        lt.add_files(files, str(payload))
        creator = lt.create_torrent(files, 64 * 1024, lt.create_torrent.v1_only)
    creator.add_tracker(tracker_url)
    lt.set_piece_hashes(creator, str(seed_dir))
    return bytes(lt.bencode(creator.generate())), data


async def wait_for(condition: Callable[[], object], what: str, within: float = DEADLINE) -> None:
    await polled(condition, what, within, every=0.05)


def assert_seeder_dialled(seeder: TorrentSession, leecher_port: int) -> None:
    """Everything the seeder uploaded went over a connection it dialled to the leecher."""
    uploaded = seeder.statistics().uploaded_to
    dialled = f"{LOOPBACK}:{leecher_port}"
    assert uploaded.get(dialled, 0) >= SIZE, f"uploads by peer: {uploaded}"
    assert sum(uploaded.values()) == uploaded[dialled], f"uploads by peer: {uploaded}"


@pytest.mark.parametrize("order", ["seeder first", "leecher first"])
async def test_libtorrent_leecher_through_tracker(tmp_path: Path, order: str) -> None:
    config = TrackerConfig(interval=LONG_INTERVAL, min_interval=LONG_INTERVAL)
    async with (
        TrackerServer(LOOPBACK, 0, config=config) as tracker,
        SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine,
    ):
        url = f"http://{LOOPBACK}:{tracker.port}/announce"
        torrent, data = make_torrent(tmp_path / "seed", url)
        meta = parse_torrent(torrent)
        info_hash = meta.wire_info_hash
        with libtorrent_peer() as leecher:
            seeder: TorrentSession | None = None
            if order == "seeder first":
                seeder = await engine.add_torrent(meta, tmp_path / "seed", config=PACED)
                await wait_for(lambda: tracker.state.peer_count(info_hash) == 1, "seeder announce")
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            await wait_for(
                lambda: tracker.state.peer_count(info_hash) == (1 if seeder is None else 2),
                "libtorrent's announce",
            )
            if seeder is None:
                seeder = await engine.add_torrent(meta, tmp_path / "seed", config=PACED)
            directions: set[str] = set()

            def done() -> bool:
                for info in handle.get_peer_info():
                    outgoing = info.flags & lt.peer_info.local_connection
                    directions.add("dialled by libtorrent" if outgoing else "dialled by seeder")
                return bool(handle.status().is_seeding)

            await leecher.wait_for(done, "libtorrent to download from the servent seeder")
            await leecher.flush(handle)
            if order == "leecher first":
                assert directions == {"dialled by seeder"}
                assert_seeder_dialled(seeder, leecher.port)
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data


@pytest.mark.parametrize("order", ["seeder first", "leecher first"])
async def test_aria2_leecher_through_tracker(tmp_path: Path, order: str) -> None:
    config = TrackerConfig(interval=LONG_INTERVAL, min_interval=LONG_INTERVAL)
    async with (
        TrackerServer(LOOPBACK, 0, config=config) as tracker,
        SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine,
    ):
        url = f"http://{LOOPBACK}:{tracker.port}/announce"
        torrent, data = make_torrent(tmp_path / "seed", url)
        torrent_file = tmp_path / "payload.torrent"
        torrent_file.write_bytes(torrent)
        meta = parse_torrent(torrent)
        info_hash = meta.wire_info_hash
        seeder: TorrentSession | None = None
        if order == "seeder first":
            seeder = await engine.add_torrent(meta, tmp_path / "seed")
            await wait_for(lambda: tracker.state.peer_count(info_hash) == 1, "seeder announce")
        port = free_port()
        args = aria2_leecher_args(torrent_file, tmp_path / "out", port, tracker_url=url)
        async with aria2c(args, port) as aria2:
            await wait_for(
                lambda: tracker.state.peer_count(info_hash) == (1 if seeder is None else 2),
                "aria2's announce",
            )
            if seeder is None:
                seeder = await engine.add_torrent(meta, tmp_path / "seed")
            code = await aria2.wait(DEADLINE)
            assert code == 0, aria2.log_tail()
        if order == "leecher first":
            assert_seeder_dialled(seeder, port)
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data

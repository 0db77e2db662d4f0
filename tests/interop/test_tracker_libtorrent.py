"""libtorrent announces to servent's built-in tracker (HTTP and UDP); servent's
client then announces to the same tracker and is given libtorrent's address."""

from __future__ import annotations

import asyncio
import time
import warnings
from pathlib import Path

import libtorrent as lt
import pytest

from servent.codec.tracker import AnnounceRequest
from servent.net.tracker_client import TrackerClient, UdpRetryPolicy
from servent.net.tracker_server import TrackerServer

pytestmark = pytest.mark.interop

DEADLINE = 30.0


def seeding_session(
    tmp_path: Path, tracker_url: str
) -> tuple[lt.session, lt.torrent_handle, bytes]:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(bytes(range(256)) * 256)
    with warnings.catch_warnings():  # file_storage API: deprecated in 2.1, still exact
        warnings.simplefilter("ignore", DeprecationWarning)
        files = lt.file_storage()
        lt.add_files(files, str(payload))
        creator = lt.create_torrent(files, 16384)
    creator.add_tracker(tracker_url)
    lt.set_piece_hashes(creator, str(tmp_path))
    info = lt.torrent_info(lt.bdecode(lt.bencode(creator.generate())))
    session = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "dht_bootstrap_nodes": "",
            "listen_system_port_fallback": False,
            "alert_mask": lt.alert_category.status | lt.alert_category.tracker,
        }
    )
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = str(tmp_path)
    params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)
    return session, handle, bytes(info.info_hashes().v1.to_bytes())


@pytest.mark.parametrize("scheme", ["http", "udp"])
async def test_libtorrent_announce_is_listed_to_servent_client(tmp_path: Path, scheme: str) -> None:
    async with TrackerServer("127.0.0.1", 0) as server:
        url = f"{scheme}://127.0.0.1:{server.port}/announce"
        session, _handle, info_hash = seeding_session(tmp_path, url)
        try:
            deadline = time.monotonic() + DEADLINE
            while server.state.peer_count(info_hash) == 0:
                assert time.monotonic() < deadline, "libtorrent never announced"
                session.pop_alerts()
                await asyncio.sleep(0.05)  # polling a real condition with a deadline
            lt_port = session.listen_port()
            scrape_counts = server.state.scrape(info_hash)
            assert scrape_counts.complete == 1  # libtorrent announced itself as a seed
            async with TrackerClient(
                udp_retry=UdpRetryPolicy(base_timeout=1, max_retries=2)
            ) as client:
                reply = await client.announce(
                    url,
                    AnnounceRequest(
                        info_hash=info_hash, peer_id=b"-SV0001-" + b"x" * 12, port=7777, left=1
                    ),
                )
            assert ("127.0.0.1", lt_port) in reply.peers
        finally:
            del session

"""A download whose only peer source is local service discovery over IPv6.

Two ``servent`` processes in two network namespaces made by the test, joined
by a bridge in a third.  The namespaces have no IPv4 address besides
loopback, only the ``fd00:`` addresses the test gives them: the downloader can
learn the seeder's address only from announces multicast to the BEP 14 IPv6
group ``[ff15::efc0:988f]:6771``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_lsd_download_netns import python_in, seed_then_get, servent_in
from test_lsd_netns import bridged_hosts

from interop.reference_clients import write_payload
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

SEEDER_IP, LEECHER_IP = "fd00:5e:7::1", "fd00:5e:7::2"
DEADLINE = 60


@pytest.fixture
def lan6() -> Iterator[tuple[str, str]]:
    """Two IPv6-only namespaces on one bridge (addresses without duplicate detection)."""
    with bridged_hosts("s6", (f"{SEEDER_IP}/64", f"{LEECHER_IP}/64")) as hosts:
        yield hosts


def test_download_finds_its_seeder_by_ipv6_lsd_only(lan6: tuple[str, str], tmp_path: Path) -> None:
    seeder_ns, leecher_ns = lan6
    data = write_payload(tmp_path / "share" / "movie.bin", 500_000, seed=7)
    meta = create_torrent(tmp_path / "share" / "movie.bin")
    torrent = tmp_path / "movie.torrent"
    torrent.write_bytes(meta.to_bytes())
    lsd = ("--lsd", "--lsd-interval", "1", "--no-trackers", "--lsd-interface6", "eth0")
    seeder = servent_in(
        seeder_ns, "seed", tmp_path / "share" / "movie.bin", "--torrent", torrent,
        "--host", SEEDER_IP, *lsd,
    )  # fmt: skip
    code, out, err = seed_then_get(
        seeder,
        f"listening on [{SEEDER_IP}]:",
        lambda: servent_in(leecher_ns, "-v", "get", torrent, "-o", tmp_path / "down", *lsd),
    )
    assert code == 0, err
    assert "verified" in out and "from 1 peer(s)" in out, out
    assert (tmp_path / "down" / "movie.bin").read_bytes() == data
    # The IPv4 group could not even be joined: the namespaces have no IPv4 route.
    assert "LSD without IPv4 group" in err, err


NODE6 = r"""
import asyncio, sys
from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_discovery import DiscoveryConfig
role, ip, torrent, folder = sys.argv[1:5]
config = EngineConfig(
    listen_host=ip, lsd=True, lsd_ipv4=False, lsd_interface6="eth0", trackers=False,
    discovery=DiscoveryConfig(lsd_interval=300.0, lsd_reply_interval=0.5),
)
async def main():
    async with SwarmEngine(config) as engine:
        assert engine.lsd is not None and engine.lsd.families == ("ipv6",)
        session = await engine.add_torrent(parse_torrent(open(torrent, "rb").read()), folder)
        if role == "seed":
            print("SEEDING", flush=True)
            await asyncio.Event().wait()
        async with asyncio.timeout(30):
            await session.wait_complete()
        print("DONE", sorted((*k.address, k.source) for k in session.known.entries()), flush=True)
asyncio.run(main())
"""


def test_seeder_heard_over_ipv6_lsd_joins_with_source_lsd(
    lan6: tuple[str, str], tmp_path: Path
) -> None:
    """Engines joined to the IPv6 group only: the seeder answers the newcomer's
    announce, and the address it is heard from is a candidate of source ``lsd``."""
    seeder_ns, leecher_ns = lan6
    data = write_payload(tmp_path / "share" / "movie.bin", 300_000, seed=8)
    meta = create_torrent(tmp_path / "share" / "movie.bin")
    torrent = tmp_path / "movie.torrent"
    torrent.write_bytes(meta.to_bytes())
    seeder = python_in(seeder_ns, NODE6, "seed", SEEDER_IP, torrent, tmp_path / "share")
    code, out, err = seed_then_get(
        seeder,
        "SEEDING",
        lambda: python_in(leecher_ns, NODE6, "get", LEECHER_IP, torrent, tmp_path / "down"),
    )
    assert code == 0, err
    assert out.startswith("DONE") and f"('{SEEDER_IP}', " in out and "'lsd')" in out, out
    assert (tmp_path / "down" / "movie.bin").read_bytes() == data

"""A download whose only peer source is local service discovery over IPv6.

Two ``servent`` processes in two network namespaces made by the test, joined
by a bridge in a third.  The namespaces have no IPv4 address besides
loopback, only the ``fd00:`` addresses the test gives them: the downloader can
learn the seeder's address only from announces multicast to the BEP 14 IPv6
group ``[ff15::efc0:988f]:6771``.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_lsd_download_netns import servent_in
from test_lsd_netns import ip

from interop.reference_clients import write_payload
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

SEEDER_IP, LEECHER_IP = "fd00:5e:7::1", "fd00:5e:7::2"
DEADLINE = 60


@pytest.fixture
def lan6() -> Iterator[tuple[str, str]]:
    """Two IPv6-only namespaces on one bridge (addresses without duplicate detection)."""
    tag = uuid.uuid4().hex[:6]
    br, a, b = f"s6br{tag}", f"s6a{tag}", f"s6b{tag}"
    made: list[str] = []
    try:
        for ns in (br, a, b):
            ip("netns", "add", ns)
            made.append(ns)
        ip("-n", br, "link", "add", "br0", "type", "bridge")
        ip("-n", br, "link", "set", "br0", "up")
        for ns, addr in ((a, SEEDER_IP), (b, LEECHER_IP)):
            veth = "v" + ns[2:]
            ip("-n", br, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", br, "link", "set", veth, "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{addr}/64", "dev", "eth0", "nodad")
            ip("-n", ns, "link", "set", "eth0", "up", "multicast", "on")
            ip("-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], timeout=10, check=False)


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
    try:
        assert seeder.stdout is not None
        first = seeder.stdout.readline()  # "listening on [fd00:5e:7::1]:PORT"
        if not first.startswith(f"listening on [{SEEDER_IP}]:"):
            seeder.kill()
            raise AssertionError(f"seeder did not start: {first!r} {seeder.communicate()[1]}")
        leecher = servent_in(leecher_ns, "-v", "get", torrent, "-o", tmp_path / "down", *lsd)
        try:
            out, err = leecher.communicate(timeout=DEADLINE)
        finally:
            if leecher.poll() is None:
                leecher.kill()
                leecher.wait(timeout=10)
    finally:
        seeder.kill()
        seeder.wait(timeout=10)
    assert leecher.returncode == 0, err
    assert "verified" in out and "from 1 peer(s)" in out, out
    assert (tmp_path / "down" / "movie.bin").read_bytes() == data
    # The IPv4 group could not even be joined: the namespaces have no IPv4 route.
    assert "LSD without IPv4 group" in err, err

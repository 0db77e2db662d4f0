"""The UDP sockets of ``servent get`` and ``servent seed`` (real processes), read from /proc.

With the DHT on and uTP on (the default), the DHT and uTP share one socket per
address family, on the TCP listener's port number: the DHT still answers
there (on IPv4 and IPv6), and a uTP leecher downloads over that same port.
``--no-utp`` leaves the command without any UDP socket for uTP.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from servent_cli import ServentProcess, servent

from servent.codec.metainfo import Metainfo
from servent.net.dht_driver import DhtDriver
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.ipv6_probe import ipv6_unavailable
from servent.proto.dht import DhtConfig
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

DEADLINE = 60.0
LOOPBACK = "127.0.0.1"
RELAXED = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0)
#: The address families a command listening on every address has (IPv4, and IPv6 if here).
FAMILIES = {4} if ipv6_unavailable() else {4, 6}


def udp_sockets(pid: int) -> list[tuple[int, int]]:
    """(family 4 or 6, local port) of every UDP socket the process holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for family, table in ((4, "udp"), (6, "udp6")):
        with open(f"/proc/{pid}/net/{table}") as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[9] in inodes:
                    found.append((family, int(fields[1].rsplit(":", 1)[1], 16)))
    return sorted(found)


def make_torrent(root: Path) -> tuple[Metainfo, Path, bytes]:
    data = os.urandom(300_000)
    (root / "share").mkdir(parents=True)
    (root / "share" / "data.bin").write_bytes(data)
    meta = create_torrent(root / "share" / "data.bin")
    torrent_file = root / "share" / "data.torrent"  # ``seed`` finds the payload beside it
    torrent_file.write_bytes(meta.to_bytes())
    return meta, torrent_file, data


async def started_port(child: ServentProcess, command: str) -> int:
    """The port the command listens on, once it serves (``get --seed``: after its download)."""
    if command == "get":
        line = await child.wait_line(r"^seeding on .*:(\d+);", stream="stderr", within=DEADLINE)
    else:
        line = await child.wait_line(r"^listening on .*:(\d+)$", within=DEADLINE)
    return int(line.group(1))


async def download_over_utp(meta: Metainfo, port: int, out: Path) -> bytes:
    """Fetch the torrent from 127.0.0.1:``port`` over uTP (TCP only if uTP fails)."""
    config = EngineConfig(listen_host=LOOPBACK, utp=True, utp_preference="prefer-utp")
    async with SwarmEngine(config) as leecher:
        session = await leecher.add_torrent(meta, out, peers=[(LOOPBACK, port)])
        async with asyncio.timeout(DEADLINE):
            await session.wait_complete()
        assert leecher.dialer.outcomes["utp"] >= 1, leecher.dialer.outcomes
        assert not leecher.dialer.outcomes["tcp"], leecher.dialer.outcomes
    return (out / "data.bin").read_bytes()


@pytest.mark.parametrize("command", ["get", "seed"])
async def test_dht_and_utp_share_one_udp_port_per_family(tmp_path: Path, command: str) -> None:
    """``get --bootstrap`` and ``seed --dht-port 0``: one UDP socket per family, all on the
    TCP port's number; the DHT answers on it over IPv4 and IPv6, uTP carries a torrent."""
    meta, torrent_file, data = make_torrent(tmp_path)
    async with (
        SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as origin,
        DhtDriver(host=LOOPBACK, config=RELAXED) as boot4,
    ):
        await origin.add_torrent(meta, tmp_path / "share")
        dht_flags = ("--bootstrap", f"{LOOPBACK}:{boot4.address[1]}", "--no-ip-restrictions")
        if command == "get":
            args = ("get", torrent_file, "-o", tmp_path / "got", "--seed",
                    "--peer", f"{LOOPBACK}:{origin.port}", *dht_flags)  # fmt: skip
        else:
            args = ("seed", torrent_file, "--dht-port", "0", "--no-ip-restrictions")
        async with servent(*args) as child:
            port = await started_port(child, command)
            sockets = udp_sockets(child.pid)
            assert sockets == sorted((family, port) for family in FAMILIES), sockets
            answer4 = await asyncio.wait_for(boot4.ping((LOOPBACK, port)), DEADLINE)
            assert answer4.node_id is not None
            if 6 in FAMILIES:
                async with DhtDriver(host=None, host6="::1", config=RELAXED) as boot6:
                    answer6 = await asyncio.wait_for(boot6.ping(("::1", port)), DEADLINE)
                assert answer6.node_id == answer4.node_id  # one DHT node on both families
            fetched = await download_over_utp(meta, port, tmp_path / "leecher")
            assert udp_sockets(child.pid) == sockets  # uTP opened none of its own
    assert fetched == data
    if command == "get":
        assert any("DHT: joined through 1 node(s)" in line for line in child.stderr), child.stderr
        assert (tmp_path / "got" / "data.bin").read_bytes() == data


@pytest.mark.parametrize("flags", [(), ("--no-utp",)])
async def test_no_utp_means_no_udp_socket_for_utp(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """Without the DHT, uTP alone holds UDP sockets (on the TCP port's number, and a
    torrent comes over them); with ``--no-utp`` the command has none."""
    meta, torrent_file, data = make_torrent(tmp_path)
    async with servent("seed", torrent_file, *flags) as child:
        port = await started_port(child, "seed")
        sockets = udp_sockets(child.pid)
        if flags:
            assert sockets == []
        else:
            assert sockets == sorted((family, port) for family in FAMILIES), sockets
            assert await download_over_utp(meta, port, tmp_path / "leecher") == data

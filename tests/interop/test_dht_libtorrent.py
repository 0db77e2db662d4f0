"""servent's DHT and libtorrent's DHT in one network on 127.0.0.1.

Ten libtorrent sessions (PyPI bindings) bootstrap to each other with the
loopback-friendly settings from the interop notes; servent nodes join
through one libtorrent address. Then each side must find what the other
announced or stored: peers (BEP 5), immutable and mutable items (BEP 44),
and samples (BEP 51). libtorrent's alerts are awaited in a worker thread
(``wait_for_alert``) under a deadline, so servent's event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import libtorrent as lt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from servent.net.dht_driver import DhtDriver
from servent.proto.dht import DhtConfig

pytestmark = pytest.mark.interop

LIBTORRENT_NODES = 10
SERVENT_NODES = 3
#: servent's per-IP defences are off on loopback, where every node shares one IP.
#: Bound on each wait. Answers take milliseconds; a loaded CI machine (two
#: workers, ten libtorrent sessions) has been seen to need 15 s.
DEADLINE = 60.0
LOOPBACK = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0, query_timeout=1.0)


class LibtorrentNode:
    """One libtorrent session with DHT on, bound to 127.0.0.1, and its buffered alerts."""

    def __init__(self) -> None:
        category = lt.alert.category_t
        self.session = lt.session(
            {
                "listen_interfaces": "127.0.0.1:0",
                "listen_system_port_fallback": False,
                "enable_dht": True,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
                "dht_bootstrap_nodes": "",
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                "dht_enforce_node_id": False,
                "dht_prefer_verified_node_ids": False,
                "dht_block_ratelimit": 100_000,
                "dht_upload_rate_limit": 10_000_000,
                "dht_sample_infohashes_interval": 0,
                "alert_mask": category.dht_notification
                | category.dht_operation_notification
                | category.status_notification,
            }
        )
        self.port: int = self.session.listen_port()
        self.alerts: list[Any] = []

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def routing_nodes(self) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            count: int = self.session.status().dht_nodes
        return count

    def _collect(self, wait_ms: int) -> None:
        if self.session.wait_for_alert(wait_ms) is not None:
            self.alerts.extend(self.session.pop_alerts())

    async def wait_for(self, match: Callable[[Any], bool], limit: float = DEADLINE) -> Any:
        """The first buffered or future alert for which ``match`` holds, within ``limit`` s."""
        async with asyncio.timeout(limit):
            while True:
                for index, alert in enumerate(self.alerts):
                    if match(alert):
                        del self.alerts[index]
                        return alert
                await asyncio.to_thread(self._collect, 100)


@pytest.fixture(scope="module")
def libtorrent_dht() -> Iterator[list[LibtorrentNode]]:
    nodes = [LibtorrentNode() for _ in range(LIBTORRENT_NODES)]
    rng = random.Random(7)
    for index, node in enumerate(nodes):
        others = [other for other in nodes if other is not node]
        for other in [nodes[(index + 1) % len(nodes)], *rng.sample(others, 3)]:
            node.session.add_dht_node(other.address)
    for node in nodes:  # a couple of random lookups fill the routing tables
        for _ in range(2):
            node.session.dht_get_peers(lt.sha1_hash(rng.randbytes(20)))
    deadline = time.monotonic() + 20
    while min(node.routing_nodes() for node in nodes) < 3:
        assert time.monotonic() < deadline, [node.routing_nodes() for node in nodes]
        nodes[0]._collect(100)  # waits on libtorrent, not a sleep
    yield nodes
    for node in nodes:
        node.session.pause()
    del nodes


@pytest.fixture
async def servent_dht(libtorrent_dht: list[LibtorrentNode]) -> AsyncIterator[list[DhtDriver]]:
    drivers = [
        DhtDriver(host="127.0.0.1", config=LOOPBACK, rng=random.Random(40 + i))
        for i in range(SERVENT_NODES)
    ]
    try:
        for driver in drivers:
            await driver.start()
        entry = libtorrent_dht[0].address  # servent joins through one bootstrap address
        async with asyncio.timeout(DEADLINE):
            for driver in drivers:
                await driver.bootstrap([entry])
        yield drivers
    finally:
        for driver in drivers:
            await driver.close()


def _lt_ports(nodes: list[LibtorrentNode]) -> set[int]:
    return {node.port for node in nodes}


async def test_servent_joins_libtorrent_dht_through_one_address(
    libtorrent_dht: list[LibtorrentNode], servent_dht: list[DhtDriver]
) -> None:
    table = servent_dht[0].node.routing_table
    known_lt = {addr[1] for _, addr in table.export_nodes()} & _lt_ports(libtorrent_dht)
    assert len(known_lt) >= 5, table.export_nodes()


async def test_libtorrent_finds_peer_announced_by_servent(
    libtorrent_dht: list[LibtorrentNode], servent_dht: list[DhtDriver]
) -> None:
    info_hash = hashlib.sha1(b"announced by servent").digest()
    async with asyncio.timeout(DEADLINE):
        done = await servent_dht[1].announce(info_hash, 45001)
    assert done.stored > 0
    reader = libtorrent_dht[6]
    reader.session.dht_get_peers(lt.sha1_hash(info_hash))
    reply = await reader.wait_for(
        lambda a: (
            isinstance(a, lt.dht_get_peers_reply_alert)
            and bytes(a.info_hash.to_bytes()) == info_hash
            and ("127.0.0.1", 45001) in [tuple(peer) for peer in a.peers()]
        )
    )
    assert reply.num_peers() >= 1


async def test_servent_finds_peer_announced_by_libtorrent(
    libtorrent_dht: list[LibtorrentNode], servent_dht: list[DhtDriver]
) -> None:
    info_hash = hashlib.sha1(b"announced by libtorrent").digest()
    announcer = libtorrent_dht[3]
    announcer.session.dht_announce(lt.sha1_hash(info_hash), 45002, 0)
    found: tuple[tuple[str, int], ...] = ()
    async with asyncio.timeout(DEADLINE):
        while ("127.0.0.1", 45002) not in found:  # libtorrent reports no "announce done"
            found = (await servent_dht[2].get_peers(info_hash)).peers
    assert ("127.0.0.1", 45002) in found


async def test_immutable_items_cross_both_ways(
    libtorrent_dht: list[LibtorrentNode], servent_dht: list[DhtDriver]
) -> None:
    async with asyncio.timeout(DEADLINE):
        put = await servent_dht[0].put_immutable(b"immutable from servent")
    assert put.stored > 0
    reader = libtorrent_dht[8]
    reader.session.dht_get_immutable_item(lt.sha1_hash(put.target))
    alert = await reader.wait_for(
        lambda a: (
            isinstance(a, lt.dht_immutable_item_alert) and bytes(a.target.to_bytes()) == put.target
        )
    )
    assert alert.item == b"immutable from servent"

    writer = libtorrent_dht[2]
    target = bytes(writer.session.dht_put_immutable_item(b"immutable from libtorrent").to_bytes())
    await writer.wait_for(
        lambda a: isinstance(a, lt.dht_put_alert) and bytes(a.target.to_bytes()) == target
    )
    async with asyncio.timeout(DEADLINE):
        got = await servent_dht[1].get_item(target)
    assert got.value == b"immutable from libtorrent"


def _libtorrent_secret_key(seed: bytes) -> bytes:
    """libtorrent's 64-byte ed25519 secret: SHA-512 of the seed with the scalar clamped."""
    expanded = bytearray(hashlib.sha512(seed).digest())
    expanded[0] &= 248
    expanded[31] &= 63
    expanded[31] |= 64
    return bytes(expanded)


async def test_mutable_items_cross_both_ways(
    libtorrent_dht: list[LibtorrentNode], servent_dht: list[DhtDriver]
) -> None:
    seed = bytes(range(32))
    public = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    async with asyncio.timeout(DEADLINE):
        put = await servent_dht[0].put_mutable(seed, b"mutable from servent", salt=b"s", seq=5)
    assert put.stored > 0 and put.error is None
    reader = libtorrent_dht[5]
    reader.session.dht_get_mutable_item(public, b"s")
    alert = await reader.wait_for(
        lambda a: (
            isinstance(a, lt.dht_mutable_item_alert)
            and bytes(a.key) == public
            and a.item == b"mutable from servent"
        )
    )
    assert alert.seq == 5 and alert.salt == b"s"

    seed2 = bytes(range(100, 132))
    public2 = (
        Ed25519PrivateKey.from_private_bytes(seed2)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    writer = libtorrent_dht[7]
    writer.session.dht_put_mutable_item(
        _libtorrent_secret_key(seed2), public2, b"mutable from libtorrent", b"salt2"
    )
    done = await writer.wait_for(
        lambda a: isinstance(a, lt.dht_put_alert) and bytes(a.public_key) == public2
    )
    assert done.num_success > 0
    target = hashlib.sha1(public2 + b"salt2").digest()
    async with asyncio.timeout(DEADLINE):
        got = await servent_dht[2].get_item(target, salt=b"salt2")
    assert got.value == b"mutable from libtorrent"
    assert got.seq == done.seq and got.public_key == public2


async def test_sample_infohashes_answered_both_ways(
    libtorrent_dht: list[LibtorrentNode], servent_dht: list[DhtDriver]
) -> None:
    # libtorrent asks a servent node that stores an info-hash.
    stored = hashlib.sha1(b"stored on servent").digest()
    async with asyncio.timeout(DEADLINE):
        await servent_dht[1].announce(stored, 45003)
    holder = next(
        (d for d in servent_dht if stored in d.node.peers.sample_hashes(50, random.Random(1))),
        None,
    )
    if holder is None:  # the closest nodes were libtorrent's: store on one servent node directly
        holder = servent_dht[0]
        holder.node.peers.add(stored, b"\x7f\x00\x00\x01\xaf\xcb", 0.0)
    asker = libtorrent_dht[4]
    asker.session.dht_sample_infohashes(holder.address, lt.sha1_hash(stored))
    alert = await asker.wait_for(
        lambda a: (
            isinstance(a, lt.dht_sample_infohashes_alert) and tuple(a.endpoint) == holder.address
        )
    )
    assert stored in [bytes(sample.to_bytes()) for sample in alert.samples]
    assert alert.num_infohashes >= 1

    # servent asks libtorrent nodes (which now store what servent announced).
    announced = hashlib.sha1(b"sampled from libtorrent").digest()
    async with asyncio.timeout(DEADLINE):
        done = await servent_dht[2].announce(announced, 45004)
        assert done.stored > 0
        samples = await servent_dht[0].sample_infohashes(announced)
    assert announced in samples.samples
    assert samples.num >= 1

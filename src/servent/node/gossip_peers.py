"""Finding gossip neighbours with no central server: the DHT rendezvous, supernodes, and
peer exchange, with the node's :class:`~servent.proto.gossip.neighbours.NeighbourBook`
deciding whom to dial and whom to drop.

Every ``TICK`` seconds (and at once when a channel closes or a channel is followed)
:class:`MeshPeers` announces this node under the rendezvous info-hash of each
channel it keeps when the book wants it (a BEP 5 ``announce`` that also answers
the nodes announced there), hands the book the supernodes the search service
knows, then carries out the book's decisions: dial a candidate (a node channel,
checked against the key when one is known) or, beyond ``degree_high``
neighbours, tell one about other nodes and close its channel. Contacts' channels,
and channels another protocol has a stream open on (a live broadcast), are never
dropped. Rules: ``docs/gossip.md``, *Finding neighbours*.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from servent.errors import ServentError
from servent.net.channel_host import ChannelHost
from servent.net.owned_tasks import cancel_and_wait
from servent.node.broadcasts import GOSSIP_PROTOCOL
from servent.proto.channel import CloseCode
from servent.proto.gossip.neighbours import Dial, Drop

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.node.broadcasts import Broadcasts

__all__ = ["TICK", "MeshPeers", "keys_used_by_other_protocols", "rendezvous_hash"]

log = logging.getLogger(__name__)

TICK = 2.0
LOOKUP_TIMEOUT = 30.0
DIAL_TIMEOUT = 20.0

Address = tuple[str, int]


def rendezvous_hash(channel: str) -> bytes:
    """The info-hash under which the nodes keeping ``channel`` announce themselves."""
    return hashlib.sha1(b"servent-gossip/1 channel:" + channel.encode("utf-8")).digest()


def keys_used_by_other_protocols(host: ChannelHost, protocol: str) -> frozenset[bytes]:
    """Nodes whose open channel carries a stream of another protocol than ``protocol``:
    trimming the mesh must not close a channel under, say, a live broadcast's viewer."""
    return frozenset(
        channel.peer_key
        for channel in host.connected()
        if channel.peer_key is not None
        and channel.close_event is None
        and any(stream.protocol != protocol for stream in channel.streams.values())
    )


class MeshPeers:
    """Keeps a node's gossip neighbours between ``degree_low`` and ``degree_high``."""

    def __init__(
        self,
        host: ChannelHost,
        broadcasts: Broadcasts,
        *,
        dht: Callable[[], DhtDriver | None],
        own_address: Callable[[], Address | None],
        supernodes: Callable[[], Iterable[tuple[bytes, Address]]],
        protected: Callable[[], frozenset[bytes]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self._broadcasts = broadcasts
        self.book = broadcasts.book
        self._dht = dht
        self._own_address = own_address
        self._supernodes = supernodes
        self._protected = protected
        self._clock = clock
        self._wake = asyncio.Event()
        self._looking = False
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._host.on_channel_closed.append(self._channel_closed)
        self._broadcasts.on_follow = self._followed
        self._broadcasts.listen_port = self._listen_port
        self._spawn(self._run(), "gossip-peers")

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self._host.on_channel_closed.remove(self._channel_closed)
        await cancel_and_wait(self._tasks)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _listen_port(self) -> int:
        own = self._own_address()
        return 0 if own is None else own[1]

    def _channel_closed(self, _: object) -> None:
        self._wake.set()

    def _followed(self, _: str) -> None:
        self.book.rendezvous_soon()  # look for the new channel's nodes
        self._wake.set()

    def network_ready(self) -> None:
        """The DHT is up: the rendezvous can be looked in now."""
        self.book.rendezvous_soon()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._upkeep()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK):
                    await self._wake.wait()

    def _upkeep(self) -> None:
        now = self._clock()
        own = self._own_address()
        if own is not None:
            self.book.own_addresses.add(own)
        for key, address in self._supernodes():
            self.book.learn(address, now, key)
        if not self._looking and self._dht() is not None and self.book.wants_rendezvous(now):
            self._looking = True
            self._spawn(self._look_in_rendezvous(), "gossip-rendezvous")
        router = self._broadcasts.router
        named = [c for c in router.subscriptions if c]
        keeping = {c: router.subscribers(c) for c in named}
        lacking = [c for c in named if len(keeping[c]) < self.book.config.channel_low]
        protected = self._protected().union(*keeping.values())
        protected |= keys_used_by_other_protocols(self._host, GOSSIP_PROTOCOL)
        for decision in self.book.tick(now, protected, lacking):
            if isinstance(decision, Dial):
                where, expected = decision.address, decision.key
                assert isinstance(where, tuple)
                assert expected is None or isinstance(expected, bytes)
                self._spawn(self._dial((str(where[0]), int(where[1])), expected), "gossip-dial")
            elif isinstance(decision, Drop):
                assert isinstance(decision.key, bytes)
                self._drop(decision.key)

    async def _look_in_rendezvous(self) -> None:
        """Announce under each kept channel's info-hash (or only look, with no port)."""
        try:
            dht = self._dht()
            own = self._own_address()
            for channel in self._broadcasts.followed():
                if dht is None:
                    return
                found = await self._announce(dht, rendezvous_hash(channel), own)
                now = self._clock()
                mine = {own, (dht.external_ip or "", own[1] if own else 0)}
                tag = channel.encode("utf-8") or None
                self.book.learn_many(((a, None) for a in found if a not in mine), now, tag)
        finally:
            self.book.rendezvous_done(self._clock())
            self._looking = False
            self._wake.set()

    @staticmethod
    async def _announce(dht: DhtDriver, target: bytes, own: Address | None) -> list[Address]:
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT):
                if own is not None:
                    return list((await dht.announce(target, own[1])).peers)
                return list((await dht.get_peers(target)).peers)
        except (TimeoutError, ServentError, OSError) as exc:
            log.debug("gossip rendezvous lookup failed: %s", exc)
            return []

    async def _dial(self, address: Address, key: bytes | None) -> None:
        answered: bytes | None = None
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                if key is not None:
                    channel = await self._host.connect(key, [address])
                else:
                    channel = await self._host.dial(*address)
            answered = channel.peer_key
            if answered == self._host.keys.public_key:
                channel.close(CloseCode.NORMAL, "dialled itself")
                self.book.own_addresses.add(address)
                answered = None
        except (ServentError, OSError, TimeoutError) as exc:
            log.debug("gossip neighbour %s:%s not reached: %s", *address, exc)
        now = self._clock()
        self.book.dial_finished(address, now, key=answered)
        if answered is not None:
            self.book.opened(answered, now, outbound=True, address=address)

    def _drop(self, key: bytes) -> None:
        """Too many neighbours: name other nodes to it, then close its channel."""
        channel = self._host.channel_to(key)
        if channel is None:
            self.book.closed(key, self._clock())
            return
        self._broadcasts.send_exchange(key)
        channel.close(CloseCode.NORMAL, "gossip mesh full")

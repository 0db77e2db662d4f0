"""Relays and hole punches for a node's channels (``docs/relay.md``).

:class:`NodeRelaying` starts the relay service and the introduction service
on the node's channel host, keeps a reservation on a relay while the node
is unreachable (and republishes its address record with it), and gives the
channel host its fallback: when no address of a node answers, look up its
record, and through each relay it names try a hole punch, then a circuit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from servent.codec.node_id import format_node_id
from servent.codec.node_record import RelayRef
from servent.errors import ServentError
from servent.net.holepunch import NodePunch
from servent.net.node_record import find_node_record
from servent.net.relay import RelayService, channel_peer_address
from servent.proto.channel import ChannelError
from servent.proto.node_routes import NodeAdvert, advert_to_offer

if TYPE_CHECKING:
    from servent.net.channel_host import ChannelHost
    from servent.net.dht_driver import DhtDriver
    from servent.net.node_channel import NodeChannel
    from servent.node.config import Config

__all__ = ["NodeRelaying"]

log = logging.getLogger(__name__)

#: How often an unreachable node without a relay asks its channels for one.
RESERVE_INTERVAL = 2.0
#: A node that refused a reservation is not asked again for this long.
REFUSAL_MEMORY = 600.0
PUNCH_TIMEOUT = 15.0


class NodeRelaying:
    """The relay part of one node; :meth:`start` after the channel host exists."""

    def __init__(
        self,
        config: Config,
        host: ChannelHost,
        *,
        dht: Callable[[], DhtDriver | None],
        unreachable: Callable[[], bool],
        reachable: Callable[[], bool],
        symmetric: Callable[[], bool],
        on_change: Callable[[], None],
    ) -> None:
        self.host = host
        self._dht = dht
        self._unreachable = unreachable
        self._reachable = reachable
        self._symmetric = symmetric
        self.relay = RelayService(
            host, enabled=config.relay_enabled, max_rate=config.relay_max_rate
        )
        self.relay.on_reservation_change.append(on_change)
        utp = host.dialer.utp if host.dialer is not None else None
        self.punch = NodePunch(host, utp, self.relay.book)
        host.fallbacks.append(self.reach_through_relays)
        self._refused: dict[bytes, float] = {}
        self._last_relay: RelayRef | None = None

    def relays(self) -> tuple[RelayRef, ...]:
        """What the address record names (our relay while we hold a reservation)."""
        ours = self.relay.reservation
        return () if ours is None else (ours,)

    async def keep_a_relay(self) -> None:
        """Owned task: while unreachable and without a relay, ask the open channels."""
        while True:
            if self._unreachable() and self.relay.reservation is None:
                await self._redial_last_relay()
                for channel in list(self.host.connected()):
                    if channel.close_event is None and await self._try_reserve(channel):
                        self._last_relay = self.relay.reservation
                        await self.relay.keep_reservation()
                        break
            await asyncio.sleep(RESERVE_INTERVAL)  # a periodic check, not a synchronisation

    async def _redial_last_relay(self) -> None:
        """The relay we had, when its channel went (it likely still relays for us)."""
        last = self._last_relay
        if last is None or self.host.channel_to(last.key) is not None:
            return
        try:
            await self.host.connect(last.key, [last.address])
        except (ServentError, OSError) as exc:
            log.debug("the last relay %s is gone: %s", format_node_id(last.key), exc)
            self._last_relay = None

    async def _try_reserve(self, channel: NodeChannel) -> bool:
        key = channel.peer_key
        now = asyncio.get_running_loop().time()
        if key is None or now - self._refused.get(key, -REFUSAL_MEMORY) < REFUSAL_MEMORY:
            return False
        if channel_peer_address(channel) is None:
            return False  # never a relay reached through a relay
        try:
            granted = await self.relay.reserve(channel)
        except (ServentError, OSError, ConnectionError) as exc:
            log.debug("no reservation from %s: %s", channel.peer_id, exc)
            granted = False
        if not granted:
            if len(self._refused) > 4096:
                self._refused.clear()
            self._refused[key] = now
        return granted

    async def reach_through_relays(self, target: bytes) -> NodeChannel:
        """The channel host's fallback: a hole punch, else a circuit, via ``target``'s relays."""
        dht = self._dht()
        record = None if dht is None else await find_node_record(dht, target)
        relays = () if record is None else record.relays
        if not relays:
            raise ChannelError(f"node {format_node_id(target)} names no relay")
        failures: list[str] = []
        for relay in relays:
            try:
                return await self._through(relay, target)
            except (ChannelError, OSError) as exc:
                failures.append(str(exc))
        raise ChannelError("; ".join(failures))

    def own_advert(self) -> NodeAdvert | None:
        """Who we are to our torrent peers (BEP 10 ``sv_node``, ``docs/relay.md``); None
        once we are known to be reachable without a relay (they dial us directly)."""
        return advert_to_offer(
            self.host.keys.public_key, self.relays(),
            symmetric=self._symmetric(), reachable=self._reachable(),
        )  # fmt: skip

    async def reach_node(self, advert: NodeAdvert) -> NodeChannel:
        """A channel to a torrent peer's node: the open one, else through the relays its
        advert names, else as its DHT record says (``ChannelHost.connect``)."""
        existing = self.host.channel_to(advert.key)
        if existing is not None:
            return existing
        failures: list[str] = []
        for relay in advert.relays:
            try:
                return await self._through(relay, advert.key, punch=not advert.symmetric)
            except (ChannelError, OSError) as exc:
                failures.append(str(exc))
        try:
            return await self.host.connect(advert.key)
        except (ChannelError, OSError) as exc:
            failures.append(str(exc))
        raise ChannelError("; ".join(failures))

    async def _through(self, relay: RelayRef, target: bytes, *, punch: bool = True) -> NodeChannel:
        introducer = await self.host.connect(relay.key, [relay.address])
        if punch and not self._symmetric():  # a symmetric NAT never punches through
            try:
                async with asyncio.timeout(PUNCH_TIMEOUT):
                    return await self.punch.punch(introducer, target)
            except (ChannelError, OSError) as exc:
                log.info("hole punch to %s failed (%s); relaying", format_node_id(target), exc)
        return await self.relay.dial_via(relay, target)

    async def close(self) -> None:
        self.relay.release()
        await self.punch.close()

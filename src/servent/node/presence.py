"""Who the node is and where: its identity, node channels and DHT address record.

:class:`NodePresence` is the part of :class:`~servent.node.node.Node` that is
about the node itself rather than its torrents (a mixin, so ``node.py``
stays about torrents).  The channel host shares the peer port of the default
engine; which engine owns that port is a detail kept here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from servent.codec.compact import Address
from servent.codec.node_id import parse_node_id
from servent.codec.node_record import NodeRecord, RelayRef
from servent.errors import NodeError
from servent.net.channel_host import ChannelHost
from servent.net.node_record import AddressPublisher, find_node_record
from servent.net.node_routes import NodeRoutes
from servent.net.peerwire_channel import ChannelPeerWire
from servent.node.identity import NodeIdentity, identity_record, load_or_create_identity
from servent.proto.channel import LocalKeys

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.net.engine import SwarmEngine
    from servent.net.node_channel import NodeChannel
    from servent.node.config import Config

__all__ = ["NodePresence", "locate_node", "reachable_addresses", "start_channel_host"]

_WILDCARDS = frozenset({"0.0.0.0", "::"})


def reachable_addresses(listen: Address | None, dht: DhtDriver | None) -> list[Address]:
    """Where other nodes may reach this one: the DHT's view of our IP with the peer
    port, and the listening address itself unless it is a wildcard."""
    if listen is None:
        return []
    addresses: list[Address] = []
    for external in (dht.external_ip, dht.external_ip6) if dht is not None else ():
        if external is not None:
            addresses.append((external, listen[1]))
    if listen[0] not in _WILDCARDS:
        addresses.append(listen)
    return list(dict.fromkeys(addresses))


async def locate_node(dht: DhtDriver | None, node_id: str) -> NodeRecord | None:
    """The address record of ``node_id`` from the DHT (None when none is found)."""
    public_key = parse_node_id(node_id)
    if dht is None:
        raise NodeError("finding a node by its ID needs the DHT (dht_enabled is off)")
    return await find_node_record(dht, public_key)


def start_channel_host(identity: NodeIdentity, swarm: SwarmEngine | None) -> ChannelHost | None:
    """A channel host sharing the swarm's listening port and connection limits, or
    None when the swarm does not listen."""
    if swarm is None or swarm.listener is None:
        return None
    host = ChannelHost(LocalKeys.create(identity.private_key), limits=swarm.limits)
    swarm.listener.channel_acceptor = host
    host.dialer = swarm.dialer  # channels go over uTP too when the node dials that way
    routes = swarm.dialer.node_routes = NodeRoutes()  # torrents over channels (docs/relay.md)
    ChannelPeerWire(host, swarm.listener.channel_stream_protocol, routes.address_of)
    return host


class NodePresence:
    """Identity, channels and address record of a :class:`~servent.node.node.Node`."""

    config: Config
    _swarm: SwarmEngine | None
    _dht: DhtDriver | None
    _tasks: set[asyncio.Task[None]]
    _mapped_address: Callable[[], Address | None]
    _listen_address: Callable[[], Address | None]
    """Our port as the router forwards it (from the reachability part), or None."""
    _record_relays: Callable[[], tuple[RelayRef, ...]]
    """The relays our address record names (from the reachability part)."""

    def _init_presence(self) -> None:
        self._identity: NodeIdentity | None = None
        self._channels: ChannelHost | None = None
        self._publisher: AddressPublisher | None = None

    @property
    def identity(self) -> NodeIdentity:
        """The node's Ed25519 key pair (made in the data directory on first start)."""
        if self._identity is None:
            raise NodeError("the node is not started")
        return self._identity

    @property
    def channels(self) -> ChannelHost:
        """Node channels: dial other nodes, register protocols (``docs/node-channel.md``)."""
        if self._channels is None:
            raise NodeError("node channels are not running (the node is not listening)")
        return self._channels

    def identity_info(self) -> dict[str, object]:
        """``{"id", "name", "addresses"}``: what ``servent id`` prints."""
        return identity_record(self.identity, self.config.name, self._addresses())

    def _addresses(self) -> list[Address]:
        found = reachable_addresses(self._listen_address(), self._dht)
        mapped = self._mapped_address()
        return found if mapped is None else list(dict.fromkeys([mapped, *found]))

    async def locate(self, node_id: str) -> NodeRecord | None:
        """Where the node ``node_id`` said it is (its signed DHT record), or None."""
        return await locate_node(self._dht, node_id)

    async def connect(self, node_id: str) -> NodeChannel:
        """A channel to ``node_id``: reused when open, else dialled where its record says."""
        return await self.channels.connect(parse_node_id(node_id))

    async def _resolve(self, public_key: bytes) -> tuple[Address, ...]:
        record = None if self._dht is None else await find_node_record(self._dht, public_key)
        if record is None or record.relays:
            # A node behind a relay is not dialable: a direct try would only leave a
            # stray mapping in its NAT that spoils the hole punch (docs/relay.md).
            return ()
        return record.addresses

    async def _load_identity(self) -> None:
        self._identity = await asyncio.to_thread(load_or_create_identity, self.config.data_dir)

    def _start_presence(self) -> None:
        """After the engine listens: accept channels on its port, publish where we are."""
        self._channels = start_channel_host(self.identity, self._swarm)
        if self._dht is None or self._channels is None:
            return
        self._channels.resolver = self._resolve
        self._publisher = AddressPublisher(
            self._dht, self.identity.private_key, self._addresses, name=self.config.name,
            relays=self._record_relays,
        )  # fmt: skip
        task = asyncio.get_running_loop().create_task(
            self._publisher.run(), name="node-address-record"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _addresses_changed(self) -> None:
        """A port mapping changed where we are: publish the record again."""
        self._presence_dht_ready()

    def _presence_dht_ready(self) -> None:
        if self._publisher is not None:
            self._publisher.addresses_changed()

    async def _stop_presence(self) -> None:
        self._publisher = None  # its task is one of the node's, cancelled with them
        if self._channels is not None:
            channels, self._channels = self._channels, None
            await channels.close()

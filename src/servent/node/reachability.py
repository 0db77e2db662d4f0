"""Can peers on the Internet dial this node?  Port mapping and what the node knows about it.

:class:`NodeReachability` is the part of the Node that maps the listening
ports on the router (``port_mapping``) and answers ``reachable``,
``external_address`` and ``nat`` for ``servent status`` from what it has
seen: the router's answer, the external IP the DHT's nodes report (BEP 42),
and the address the routing table sends from.  See ``docs/reachability.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servent.errors import NodeError, ServentError
from servent.net.pinholes import PinholeOpener, can_have_pinholes
from servent.net.port_mapper import MappingResult, PortMapper
from servent.net.reach import ConnectBackService, ask_connect_back
from servent.node.own_address import route_source
from servent.node.relaying import NodeRelaying
from servent.node.status import PinholeStatus

if TYPE_CHECKING:
    from servent.codec.compact import Address
    from servent.codec.node_record import RelayRef
    from servent.net.channel_host import ChannelHost
    from servent.net.dht_driver import DhtDriver
    from servent.net.node_channel import NodeChannel
    from servent.node.config import Config

log = logging.getLogger(__name__)

NAT_KINDS = ("none", "mapped", "cone", "symmetric", "unknown")


@dataclass(frozen=True, slots=True)
class Reachability:
    """What ``servent status`` shows about reaching this node from outside."""

    reachable: bool | None
    """True: peers outside can dial us; False: they cannot; None: not known yet."""
    external_address: tuple[str, int] | None
    nat: str
    """One of :data:`NAT_KINDS`."""
    relay: tuple[str, int] | None = None
    """The relay that forwards to us while we hold a reservation (``docs/relay.md``)."""


def _is_public(address: str | None) -> bool:
    if address is None:
        return False
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(address).is_global
    return False


def assess(
    mapping: MappingResult | None,
    *,
    local_ip: str | None,
    dht_ip: str | None,
    listen_port: int | None,
    connect_back: ConnectBack | None = None,
    nat_behaviour: str | None = None,
) -> Reachability:
    """Combine what the node saw into one verdict (pure: unit-tested case by case).

    ``nat_behaviour`` is what the DHT's answers say of our UDP port ("cone" when
    every node saw the same one, "symmetric" when not): the kind of an unmapped NAT."""
    verdict = _assess(mapping, local_ip=local_ip, dht_ip=dht_ip, listen_port=listen_port,
                      seen_ip=None if connect_back is None else connect_back.seen_ip)  # fmt: skip
    if verdict.nat == "unknown" and nat_behaviour in ("cone", "symmetric"):
        verdict = dataclasses.replace(verdict, nat=nat_behaviour)
    if connect_back is None:
        return verdict
    return dataclasses.replace(verdict, reachable=connect_back.accepted)


@dataclass(frozen=True, slots=True)
class ConnectBack:
    """The last answer of a node that tried to dial us (``servent/reach/1``)."""

    accepted: bool
    seen_ip: str


def _assess(
    mapping: MappingResult | None,
    *,
    local_ip: str | None,
    dht_ip: str | None,
    listen_port: int | None,
    seen_ip: str | None,
) -> Reachability:
    tcp = next((m for m in mapping.mappings if m.protocol == "tcp"), None) if mapping else None
    external_ip = (mapping.external_ip if mapping else None) or dht_ip or seen_ip
    if tcp is not None and external_ip is not None:
        return Reachability(True, (external_ip, tcp.external_port), "mapped")
    if _is_public(local_ip) and external_ip in (None, local_ip):
        address = (local_ip, listen_port) if local_ip and listen_port else None
        return Reachability(None, address, "none")  # no NAT; a firewall may still drop us
    behind_nat = (local_ip is not None and not _is_public(local_ip)) or (
        external_ip is not None and external_ip != local_ip
    )
    tried = mapping is not None and mapping.gateway is not None
    address = (external_ip, listen_port) if external_ip and listen_port else None
    return Reachability(False if behind_nat and tried else None, address, "unknown")


def pinhole_status(result: MappingResult, local_ip: str) -> PinholeStatus:
    """What ``servent status`` shows of the IPv6 pinholes (pure)."""
    tcp = next((m for m in result.mappings if m.protocol == "tcp"), None)
    state = "open" if result.mapped else "failed" if result.error is not None else "pending"
    address = None if tcp is None else (result.external_ip or local_ip, tcp.external_port)
    return PinholeStatus(
        state=state,
        address=address,
        protocol=result.protocol if result.mapped else None,
        ports=tuple(f"{m.protocol} {m.external_port}" for m in result.mappings),
        lifetime=min((m.lifetime for m in result.mappings), default=None),
        error=result.error,
    )


class NodeReachability:
    """Port mapping and the reachability verdict of a :class:`~servent.node.node.Node`."""

    config: Config
    _listen_address: Callable[[], Address | None]
    listen_addresses: Callable[[], list[Address]]
    _dht: DhtDriver | None
    _tasks: set[asyncio.Task[None]]

    _channels: ChannelHost | None

    def _init_reachability(self) -> None:
        self._mapper: PortMapper | None = None
        self._pinholes: PinholeOpener | None = None
        self._connect_back: ConnectBack | None = None
        self._checking = False
        self._relaying: NodeRelaying | None = None

    def reachability(self) -> Reachability:
        verdict = self._verdict()
        ours = None if self._relaying is None else self._relaying.relay.reservation
        return verdict if ours is None else dataclasses.replace(verdict, relay=ours.address)

    def _verdict(self) -> Reachability:
        listen = self._listen_address()
        return assess(
            None if self._mapper is None else self._mapper.result,
            local_ip=route_source(socket.AF_INET),
            dht_ip=None if self._dht is None else self._dht.external_ip,
            listen_port=None if listen is None else listen[1],
            connect_back=self._connect_back,
            nat_behaviour=self._nat_behaviour(),
        )

    def _nat_behaviour(self) -> str | None:
        ports = None if self._dht is None else self._dht.node.reflected_ports
        return None if ports is None else ports.behaviour()

    async def check_reachable(self, channel: NodeChannel) -> Reachability:
        """Ask the node at the end of ``channel`` to dial us back; the new verdict."""
        listen = self._listen_address()
        if listen is None:
            raise NodeError("the node is not listening: nobody can dial it")
        mapped = self._mapped_address()
        answer = await ask_connect_back(channel, listen[1] if mapped is None else mapped[1])
        self._connect_back = ConnectBack(answer.ok, answer.seen[0])
        log.info("connect-back by %s: %s", channel.peer_id, "reachable" if answer.ok else "not")
        return self.reachability()

    def _serve_connect_back(self) -> None:
        """Answer other nodes' checks; check ourselves on the first channel that opens."""
        if self._channels is None:
            return
        ConnectBackService(self._channels)
        self._channels.on_channel_open.append(self._maybe_check)
        self._relaying = NodeRelaying(
            self.config, self._channels, dht=lambda: self._dht,
            unreachable=lambda: self._verdict().reachable is False,
            reachable=lambda: self._verdict().reachable is True,
            symmetric=lambda: self._verdict().nat == "symmetric",
            on_change=self._addresses_changed,
        )  # fmt: skip
        routes = None if self._channels.dialer is None else self._channels.dialer.node_routes
        if routes is not None:  # torrent peers reached as nodes (docs/relay.md)
            routes.own, routes.reach = self._relaying.own_advert, self._relaying.reach_node
        task = asyncio.get_running_loop().create_task(
            self._relaying.keep_a_relay(), name="node-relay-reservation"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record_relays(self) -> tuple[RelayRef, ...]:
        """The relays our address record names (``docs/relay.md``)."""
        return () if self._relaying is None else self._relaying.relays()

    @property
    def relaying(self) -> NodeRelaying:
        """Relays and hole punches of node channels (the node must be listening)."""
        if self._relaying is None:
            raise NodeError("relays need node channels (the node is not listening)")
        return self._relaying

    def _maybe_check(self, channel: NodeChannel) -> None:
        if self._checking or self._connect_back is not None or not self._started_mapping():
            return
        self._checking = True
        task = asyncio.get_running_loop().create_task(self._check_quietly(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _started_mapping(self) -> bool:
        """Checked only once the router had its say (the answer depends on the mapping)."""
        mapper = self._mapper
        return mapper is not None and (mapper.result.mapped or mapper.result.error is not None)

    async def _check_quietly(self, channel: NodeChannel) -> None:
        try:
            await self.check_reachable(channel)
        except (ServentError, OSError, TimeoutError) as exc:
            log.info("connect-back check failed: %s", exc)
        finally:
            self._checking = False

    def _mapped_address(self) -> Address | None:
        """Our TCP port as the router forwards it, for the address record."""
        verdict = self.reachability()
        return verdict.external_address if verdict.nat == "mapped" else None

    def _start_port_mapping(self) -> None:
        """In the background (a router that never answers costs seconds, not the start)."""
        listen = self._listen_address()
        if not self.config.port_mapping or listen is None or _is_loopback(listen[0]):
            return
        udp = {self._dht.address[1]} if self._dht is not None else set()
        if self.config.utp_enabled:
            udp.add(listen[1])  # uTP: on the peer port's UDP side (shared with the DHT's)
        udp_ports = [("udp", port) for port in sorted(udp)]
        self._mapper = PortMapper([("tcp", listen[1]), *udp_ports])
        self._start_task(self._map_ports(self._mapper), "port-mapping")
        self._start_pinholes()

    def _start_pinholes(self) -> None:
        """Pinholes in the router's IPv6 firewall, when we listen on a global IPv6 address
        (``listen_host`` "", "::" or one IPv6 address): TCP and the UDP of that family."""
        ipv6 = [a for a in self.listen_addresses() if ":" in a[0]]
        if not ipv6:
            return
        host, port = ipv6[0]
        dht6 = None if self._dht is None else self._dht.address6
        udp = {dht6[1]} if dht6 is not None else set()
        if self.config.utp_enabled:
            udp.add(port)  # uTP: on the peer port's UDP side (shared with the DHT's)
        udp_ports = [("udp", number) for number in sorted(udp)]
        unspecified = host.split("%", 1)[0] in ("::", "")
        local_ip = route_source(socket.AF_INET6) if unspecified else host
        if local_ip is None or not can_have_pinholes(local_ip):
            return
        self._pinholes = PinholeOpener([("tcp", port), *udp_ports], local_ip=local_ip)
        self._start_task(self._open_pinholes(self._pinholes), "ipv6-pinholes")

    async def _open_pinholes(self, opener: PinholeOpener) -> None:
        await opener.start()

    def _start_task(self, work: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def ipv6_pinhole(self) -> PinholeStatus | None:
        """The pinholes' state; None when none are asked for (``servent status``)."""
        opener = self._pinholes
        return None if opener is None else pinhole_status(opener.result, opener.local_ip)

    async def _map_ports(self, mapper: PortMapper) -> None:
        result = await mapper.start()
        if result.mapped:
            self._addresses_changed()

    def _addresses_changed(self) -> None:
        """Overridden by the presence part: republish the address record."""

    async def _stop_relaying(self) -> None:
        if self._relaying is not None:
            await self._relaying.close()

    async def _stop_port_mapping(self) -> None:
        await self._stop_relaying()
        if self._mapper is not None:
            mapper, self._mapper = self._mapper, None
            await mapper.close()
        if self._pinholes is not None:
            opener, self._pinholes = self._pinholes, None
            await opener.close()


def _is_loopback(host: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return host == "localhost"

"""The node's DHT: DHT-NET's :class:`~servent.net.dht_driver.DhtDriver` with its
identity and routing table kept in the node's sqlite state instead of a file
(and :class:`NodeDht`, the part of :class:`~servent.node.node.Node` that runs it).

Bootstrapping resolves host names and waits for the lookup in a background
task owned by the node; failing to join only costs a log line, the node runs on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from servent.errors import ServentError
from servent.node.config import Config
from servent.node.events import DhtReady, EventHub
from servent.node.state import StateStore

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.net.port_reservation import PortReservation
    from servent.net.udp_demux import UdpPort

log = logging.getLogger(__name__)

DNS_TIMEOUT = 10.0
BOOTSTRAP_TIMEOUT = 60.0
NODE_ID_SETTING = "dht_node_id"


def split_host_port(entry: str) -> tuple[str, int]:
    host, _, port = entry.rpartition(":")
    return host.strip("[]"), int(port)


def dual_stack_config(config: Config, *, warn: bool = True) -> Config:
    """``config`` for this host: ``listen_host = ""`` (IPv4 and IPv6) becomes IPv4 only,
    with a warning (unless the caller's node gives it), where IPv6 is off or missing."""
    from servent.net.ipv6_probe import ipv6_unavailable

    if config.listen_host != "":
        return config
    reason = ipv6_unavailable()
    if reason is None:
        return config
    if warn:
        log.warning("IPv6 is unavailable (%s): listening on IPv4 only", reason)
    return dataclasses.replace(config, listen_host="0.0.0.0")


def listen_families(host: str) -> tuple[str | None, str | None]:
    """(IPv4 host, IPv6 host) of a ``listen_host``: "" is both wildcards."""
    if host == "":
        return "0.0.0.0", "::"
    return (None, host) if ":" in host else (host, None)


def bind_shared_ports(config: Config) -> tuple[UdpPort | None, UdpPort | None]:
    """The UDP sockets uTP and the DHT share, one per family listened on, on one port
    number; with ``listen_host = ""`` a host without IPv6 gets IPv4 only and a warning."""
    from servent.net.udp_demux import UdpPort

    host4, host6 = listen_families(config.listen_host)
    port4 = UdpPort.bind(host4, config.listen_port) if host4 is not None else None
    if host6 is None:
        return port4, None
    number = port4.address[1] if port4 is not None else config.listen_port
    try:
        return port4, UdpPort.bind(host6, number)
    except OSError as exc:
        if port4 is None:
            raise
        log.warning("uTP and the DHT on IPv4 only: cannot bind UDP [%s]:%d: %s", host6, number, exc)
        return port4, None


def _by_family(ports: Sequence[UdpPort]) -> tuple[UdpPort | None, UdpPort | None]:
    """(IPv4 port, IPv6 port) of reserved ports."""
    ipv4 = [port for port in ports if port.sock.family == socket.AF_INET]
    ipv6 = [port for port in ports if port.sock.family == socket.AF_INET6]
    return (ipv4[0] if ipv4 else None), (ipv6[0] if ipv6 else None)


def _close_ports(*ports: UdpPort | None) -> None:
    for port in ports:
        if port is not None:
            port.close()


async def start_dht(
    config: Config,
    store: StateStore | None,
    *,
    required: bool = False,
    ports: Sequence[UdpPort] = (),
) -> DhtDriver | None:
    """Bind the DHT on the listen address (IPv4 and IPv6 for ``listen_host = ""``) with
    the saved id and contacts (a fresh id without a ``store``: a one-shot command's);
    None if it cannot (a node runs on without), or with ``required`` a :class:`ServentError`.
    ``ports``: UDP ports reserved for the node (one per family), used instead of binding;
    the DHT shares them with uTP and closes them when it stops."""
    from servent.net.dht_driver import DhtDriver
    from servent.proto.dht.config import DhtConfig

    saved_id = store.settings().get(NODE_ID_SETTING) if store is not None else None
    node_id = bytes.fromhex(saved_id) if isinstance(saved_id, str) else None
    dht_config = DhtConfig()
    if not config.dht_restrict_ips:
        dht_config = dataclasses.replace(dht_config, restrict_ips=False, rate_limit_per_ip=0.0)
    host4, host6 = listen_families(config.listen_host)
    shared: tuple[UdpPort | None, UdpPort | None] = (None, None)
    try:
        # With uTP on, the DHT's sockets are shared: uTP datagrams are told apart by the demux.
        if ports:
            shared = _by_family(ports)
        elif config.utp_enabled:
            shared = bind_shared_ports(config)
        driver = DhtDriver(
            host=host4, port=config.listen_port, host6=host6, node_id=node_id,
            config=dht_config, udp_port=shared[0], udp_port6=shared[1],
            ipv6_optional=host4 is not None,
        )  # fmt: skip
        await driver.start()
    except OSError as exc:
        _close_ports(*shared)
        if required:
            port = config.listen_port
            reason = exc.strerror or exc
            raise ServentError(f"cannot open the DHT's UDP port {port}: {reason}") from None
        log.warning("DHT could not bind %s:%s: %s", config.listen_host, config.listen_port, exc)
        return None
    if store is not None:
        store.set_settings({NODE_ID_SETTING: driver.node_id.hex()})
        now = asyncio.get_running_loop().time()
        driver.node.routing_table.import_nodes(store.dht_nodes(), now)
    return driver


async def bootstrap_dht(driver: DhtDriver, entries: tuple[str, ...]) -> bool:
    """Resolve ``host:port`` entries and join through them; True when the lookup finished."""
    loop = asyncio.get_running_loop()
    addrs: list[tuple[str, int]] = []
    for entry in entries:
        host, port = split_host_port(entry)
        try:  # asyncio.timeout, not wait_for: that can lose the node's close on Python 3.11
            async with asyncio.timeout(DNS_TIMEOUT):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except (OSError, TimeoutError) as exc:
            log.info("DHT bootstrap %s unresolvable: %s", entry, exc)
            continue
        addrs.extend((str(info[4][0]), int(info[4][1])) for info in infos[:1])
    if not addrs and not driver.saved_contacts:
        return False
    try:  # (and a lost close would announce a closed node as ready)
        async with asyncio.timeout(BOOTSTRAP_TIMEOUT):
            await driver.bootstrap(addrs)
    except (TimeoutError, ServentError, OSError) as exc:
        log.info("DHT bootstrap did not finish: %s", exc)
        return False
    return True


def save_dht(driver: DhtDriver, store: StateStore) -> None:
    """Save the contacts and the node ID (BEP 42 may have changed it since start)."""
    store.save_dht_nodes(driver.node.routing_table.export_nodes())
    if store.settings().get(NODE_ID_SETTING) != driver.node_id.hex():
        store.set_settings({NODE_ID_SETTING: driver.node_id.hex()})


async def stop_dht(driver: DhtDriver, store: StateStore | None) -> None:
    try:
        if store is not None:
            save_dht(driver, store)
    finally:
        await driver.close()
        _close_ports(*driver.shared_ports)


class NodeDht:
    """The DHT of a running node; the state belongs to ``Node`` (declared for mypy)."""

    config: Config
    _dht: DhtDriver | None
    #: A DHT given by a one-shot command: used, never joined, saved or closed by the node.
    _given_dht: DhtDriver | None
    _store: StateStore | None
    _one_shot: bool
    _events: EventHub
    _tasks: set[asyncio.Task[None]]
    _presence_dht_ready: Callable[[], None]
    _messaging_network_ready: Callable[[], None]

    @property
    def dht(self) -> DhtDriver | None:
        """The node's DHT node (None when the DHT is off or the node is not started)."""
        return self._dht

    async def _open_dht(self, reserved: PortReservation | None) -> None:
        """The given DHT, or the node's own (on the reserved UDP ports when there are)."""
        if self._given_dht is not None:
            self._dht = self._given_dht
        elif self.config.dht_enabled:
            ports = reserved.take_udp() if reserved is not None else []
            self._dht = await start_dht(self.config, self._store, required=self._one_shot,
                                        ports=ports)  # fmt: skip

    def _start_dht_bootstrap(self) -> None:
        driver = self._dht
        if driver is None or driver is self._given_dht:  # a given DHT has joined already
            return
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._bootstrap_dht(driver), name="node-dht-bootstrap")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bootstrap_dht(self, driver: DhtDriver) -> None:
        if await bootstrap_dht(driver, self.config.dht_bootstrap):
            self._events.emit(DhtReady(nodes=len(driver.node.routing_table)))
            self._presence_dht_ready()
            self._messaging_network_ready()

    async def _stop_dht(self) -> None:
        driver, self._dht = self._dht, None
        if driver is not None and driver is not self._given_dht:  # a given one is the giver's
            await stop_dht(driver, self._store)

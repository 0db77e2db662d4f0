"""asyncio UDP driver for the sans-IO :class:`~servent.proto.dht.DhtNode`.

The driver owns the sockets (one IPv4, optionally one IPv6), one timer handle
and the state file; the node owns every decision. After each datagram, timer
or API call the driver *pumps*: it sends what the node queued, resolves the
futures of finished operations from the node's events, and re-arms the single
timer at ``next_timer()``. The loop's monotonic clock is the node's ``now``.

Answers carry the address responders see us at (BEP 42 ``ip``); the node
votes on them and, when they agree on a new external IP its ID does not fit,
takes a BEP 42 ID, which the driver saves at once.

The routing table is saved crash-safely (temporary file, fsync, rename) every
``save_interval`` seconds and on close, and reloaded on start: the node keeps
its ID across restarts and bootstraps from both the given addresses and the
saved contacts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.bencode import BValue
from servent.codec.compact import Address
from servent.errors import DhtStateError
from servent.net.dht_state import load_state, save_state
from servent.net.udp_demux import UdpPort, open_udp_socket
from servent.proto.dht import DhtNode
from servent.proto.dht.config import DhtConfig
from servent.proto.dht.events import (
    AnnounceDone,
    DhtEvent,
    ItemFound,
    NodeIdChanged,
    NodesFound,
    PeersArrived,
    PeersFound,
    PingDone,
    PutDone,
    SamplesFound,
)

logger = logging.getLogger(__name__)

__all__ = ["DhtDriver", "load_state", "save_state"]

_E = TypeVar("_E", bound=DhtEvent)

#: Unsolicited events (announces received ...) kept for ``next_event``; the oldest drop first.
MAX_QUEUED_EVENTS = 1000


#: Datagrams read per wake-up of a socket before the node's output is sent (batching:
#: one selector round and one pump per batch instead of per datagram).
READ_BATCH = 64
class DhtDriver:
    """A DHT node on real UDP sockets. Use ``async with DhtDriver(...) as dht:``."""

    def __init__(
        self,
        *,
        host: str | None = "0.0.0.0",
        port: int = 0,
        host6: str | None = None,
        port6: int | None = None,
        node_id: bytes | None = None,
        config: DhtConfig | None = None,
        state_path: Path | None = None,
        save_interval: float = 300.0,
        rng: random.Random | None = None,
        udp_port: UdpPort | None = None,
        udp_port6: UdpPort | None = None,
        ipv6_optional: bool = False,
    ) -> None:
        """``host`` / ``host6`` ``None``: no socket of that family; ``port6`` ``None``: the
        IPv4 socket's port number (any without one).  ``udp_port`` / ``udp_port6``: sockets
        shared with uTP, used instead of binding any (placed by their family).
        ``ipv6_optional``: an IPv6 socket that cannot be bound costs a warning, not the start
        (dual-stack on a host without IPv6)."""
        self.udp_port = udp_port
        self.udp_port6 = udp_port6
        self._ipv6_optional = ipv6_optional
        self._host = host
        self._port = port
        self._host6 = host6
        self._port6 = port6
        self._config = config if config is not None else DhtConfig()
        self._state_path = state_path
        self._save_interval = save_interval
        self._rng = rng if rng is not None else random.Random(int.from_bytes(os.urandom(8), "big"))
        self._node_id = node_id
        self._saved_nodes: list[tuple[bytes, Address]] = []
        self._node: DhtNode | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock4: socket.socket | None = None
        self._sock6: socket.socket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._waiters: dict[int, asyncio.Future[DhtEvent]] = {}
        #: Who hears a running get_peers' early peers (``PeersArrived``), by lookup ID.
        self._peer_listeners: dict[int, Callable[[tuple[Address, ...]], None]] = {}
        self._events: deque[DhtEvent] = deque(maxlen=MAX_QUEUED_EVENTS)
        self._event_ready = asyncio.Event()
        self._closed = False
        self.datagrams_received = 0
        self.datagrams_sent = 0
        self.datagrams_dropped = 0

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        if self._state_path is not None:
            try:
                saved_id, self._saved_nodes = load_state(self._state_path)
            except DhtStateError as exc:
                logger.warning("%s", exc)
                saved_id, self._saved_nodes = None, []
            if self._node_id is None:
                self._node_id = saved_id
        if self._node_id is None:
            self._node_id = self._rng.getrandbits(160).to_bytes(20, "big")
        self._node = DhtNode(self._node_id, config=self._config, rng=self._rng, now=loop.time())
        try:
            if self.shared_ports:
                self._attach_shared_ports()
            else:
                self._open_sockets(loop)
        except BaseException:
            await self.close()
            raise
        self._node.dual_stack = self._sock4 is not None and self._sock6 is not None
        if self._saved_nodes:
            imported = self._node.routing_table.import_nodes(self._saved_nodes, loop.time())
            logger.info("reloaded %d of %d saved DHT contacts", imported, len(self._saved_nodes))
        if self._state_path is not None:
            self._save_handle = loop.call_later(self._save_interval, self._periodic_save)
        self._pump()

    @property
    def shared_ports(self) -> list[UdpPort]:
        """The sockets shared with uTP (IPv4 first), owned by whoever gave them."""
        return [port for port in (self.udp_port, self.udp_port6) if port is not None]

    def _attach_shared_ports(self) -> None:
        for shared in self.shared_ports:
            if shared.sock.family == socket.AF_INET6:
                self._sock6 = shared.sock
            else:
                self._sock4 = shared.sock
            shared.other_handler = self._receive_batch
            shared.start()

    def _open_sockets(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._host is not None:
            self._sock4 = open_udp_socket(self._host, self._port)
            loop.add_reader(self._sock4.fileno(), self._read_ready, self._sock4)
        if self._host6 is not None:
            self._open_ipv6(loop, self._host6)

    def _open_ipv6(self, loop: asyncio.AbstractEventLoop, host6: str) -> None:
        port6 = self._port6
        if port6 is None:
            port6 = self._sock4.getsockname()[1] if self._sock4 is not None else 0
        try:
            self._sock6 = open_udp_socket(host6, port6)
        except OSError as exc:
            if not self._ipv6_optional or self._sock4 is None:
                raise
            logger.warning("DHT on IPv4 only: cannot bind [%s]:%d: %s", host6, port6, exc)
            return
        loop.add_reader(self._sock6.fileno(), self._read_ready, self._sock6)

    async def __aenter__(self) -> DhtDriver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Save the table, close the sockets, fail pending operations. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._save_handle is not None:
            self._save_handle.cancel()
        if self._node is not None and self._state_path is not None:
            try:
                self.save()
            except OSError as exc:
                logger.warning("could not save DHT state: %s", exc)
        for shared in self.shared_ports:
            shared.other_handler = None
            if shared.sock is self._sock4:
                self._sock4 = None  # the port's owner closes it
            if shared.sock is self._sock6:
                self._sock6 = None
        for sock in (self._sock4, self._sock6):
            if sock is not None:
                if self._loop is not None:
                    self._loop.remove_reader(sock.fileno())
                sock.close()
        for future in self._waiters.values():
            if not future.done():
                future.cancel()
        self._waiters.clear()
        self._event_ready.set()

    # -- properties ----------------------------------------------------------------

    @property
    def node(self) -> DhtNode:
        if self._node is None:
            raise RuntimeError("DhtDriver not started")
        return self._node

    @property
    def node_id(self) -> bytes:
        return self.node.node_id

    @property
    def external_ip(self) -> str | None:
        """Our IPv4 address as responders report it (BEP 42 ``ip``), once they agree."""
        return self.node.external_ip

    @property
    def external_ip6(self) -> str | None:
        """Our IPv6 address as IPv6 responders report it, once they agree."""
        return self.node.external_ip6

    @property
    def address(self) -> Address:
        """The bound IPv4 address (or IPv6 when there is no IPv4 socket)."""
        sock = self._sock4 or self._sock6
        if sock is None:
            raise RuntimeError("DhtDriver not started")
        name = sock.getsockname()
        return (name[0], name[1])

    @property
    def address6(self) -> Address | None:
        if self._sock6 is None:
            return None
        name = self._sock6.getsockname()
        return (name[0], name[1])

    @property
    def saved_contacts(self) -> list[tuple[bytes, Address]]:
        """Contacts read from the state file at start (for bootstrapping)."""
        return list(self._saved_nodes)

    def save(self) -> None:
        """Write the routing table to the state file now."""
        if self._state_path is None or self._node is None:
            return
        save_state(self._state_path, self.node_id, self._node.routing_table.export_nodes())

    def _periodic_save(self) -> None:
        if self._closed or self._loop is None:
            return
        try:
            self.save()
        except OSError as exc:
            logger.warning("could not save DHT state: %s", exc)
        self._save_handle = self._loop.call_later(self._save_interval, self._periodic_save)

    # -- the pump ----------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _read_ready(self, sock: socket.socket) -> None:
        """Feed up to READ_BATCH waiting datagrams to the node, then pump once."""
        node = self._node
        if self._closed or node is None:
            return
        now = self._now()
        received = 0
        receive = node.receive_datagram
        for _ in range(READ_BATCH):
            try:
                data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                logger.debug("UDP receive error: %s", exc)
                continue
            received += 1
            receive(data, (addr[0], addr[1]), now)
        self.datagrams_received += received
        self._pump()

    def _receive_batch(self, datagrams: list[tuple[bytes, Address]], now: float) -> None:
        """Datagrams a shared :class:`UdpPort` routed to the DHT."""
        node = self._node
        if self._closed or node is None:
            return
        for data, addr in datagrams:
            node.receive_datagram(data, addr, now)
        self.datagrams_received += len(datagrams)
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed or self._node is None:
            return
        self._node.handle_timer(self._now())
        self._pump()

    def _pump(self) -> None:
        node = self._node
        if node is None or self._closed:
            return
        outgoing = node.datagrams_to_send()
        if outgoing:
            sock4, sock6 = self._sock4, self._sock6
            sent = 0
            for data, addr in outgoing:
                sock = sock6 if ":" in addr[0] else sock4
                if sock is None:
                    continue
                try:
                    sock.sendto(data, addr)
                    sent += 1
                except BlockingIOError:
                    self.datagrams_dropped += 1  # send buffer full: UDP may lose it anyway
                except (OSError, ValueError) as exc:
                    logger.debug("cannot send to %s: %s", addr, exc)
            self.datagrams_sent += sent
        while True:
            event = node.next_event()
            if event is None:
                break
            if isinstance(event, PeersArrived):
                listener = self._peer_listeners.get(event.lookup_id)
                if listener is not None:
                    listener(event.peers)
                continue
            lookup_id = getattr(event, "lookup_id", None)
            if lookup_id is not None:
                self._peer_listeners.pop(lookup_id, None)
            future = self._waiters.pop(lookup_id, None) if lookup_id is not None else None
            if future is not None:
                if not future.done():
                    future.set_result(event)
            else:
                if isinstance(event, NodeIdChanged):
                    self._on_id_changed(event)
                self._events.append(event)
                self._event_ready.set()
        when = node.next_timer()
        if when != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = when
            if when is not None and self._loop is not None:
                self._timer = self._loop.call_at(when, self._on_timer)

    def _on_id_changed(self, event: NodeIdChanged) -> None:
        """Keep the new (BEP 42) ID across restarts: save it at once."""
        logger.info(
            "DHT node ID %s -> %s for external IP %s",
            event.old_id.hex(), event.new_id.hex(), event.ip,
        )  # fmt: skip
        try:
            self.save()
        except OSError as exc:
            logger.warning("could not save DHT state: %s", exc)

    async def _wait(self, lookup_id: int, kind: type[_E]) -> _E:
        assert self._loop is not None
        future: asyncio.Future[DhtEvent] = self._loop.create_future()
        self._waiters[lookup_id] = future
        self._pump()
        try:
            event = await future
        finally:
            self._waiters.pop(lookup_id, None)
        if not isinstance(event, kind):
            raise TypeError(f"expected {kind.__name__}, the node reported {event!r}")
        return event

    # -- operations (each returns the node's final event) ---------------------------

    async def next_event(self) -> DhtEvent:
        """The next unsolicited event (e.g. ``PeerAnnounced``); bound it with asyncio.timeout."""
        while not self._events:
            if self._closed:
                raise RuntimeError("DhtDriver closed")
            self._event_ready.clear()
            await self._event_ready.wait()
        return self._events.popleft()

    async def bootstrap(self, addrs: Iterable[Address] = ()) -> NodesFound:
        """Join through ``addrs`` and the saved contacts; returns the bootstrap lookup's event."""
        node = self.node
        targets = list(addrs) + [addr for _, addr in self._saved_nodes[: self._config.k * 2]]
        lookup_id = node.bootstrap(targets, self._now())
        return await self._wait(lookup_id, NodesFound)

    async def ping(self, addr: Address) -> PingDone:
        return await self._wait(self.node.ping(addr, self._now()), PingDone)

    async def find_node(self, target: bytes) -> NodesFound:
        return await self._wait(self.node.find_node(target, self._now()), NodesFound)

    async def get_peers(
        self,
        info_hash: bytes,
        *,
        on_peers: Callable[[tuple[Address, ...]], None] | None = None,
    ) -> PeersFound:
        """Every peer the lookup finds; ``on_peers`` hears each batch as soon as it arrives
        (a download can start long before the lookup ends)."""
        lookup_id = self.node.get_peers(info_hash, self._now())
        if on_peers is not None:
            self._peer_listeners[lookup_id] = on_peers
        try:
            return await self._wait(lookup_id, PeersFound)
        finally:
            self._peer_listeners.pop(lookup_id, None)

    async def iter_peers(self, info_hash: bytes) -> AsyncIterator[tuple[Address, ...]]:
        """Batches of new peers of ``info_hash`` as they arrive; ends with the lookup."""
        assert self._loop is not None
        batches: asyncio.Queue[tuple[Address, ...] | None] = asyncio.Queue()
        lookup_id = self.node.get_peers(info_hash, self._now())
        finished: asyncio.Future[DhtEvent] = self._loop.create_future()
        finished.add_done_callback(lambda _: batches.put_nowait(None))
        self._waiters[lookup_id] = finished
        self._peer_listeners[lookup_id] = batches.put_nowait
        self._pump()
        try:
            while (batch := await batches.get()) is not None:
                yield batch
            finished.result()  # raises CancelledError when the driver closed meanwhile
        finally:
            self._waiters.pop(lookup_id, None)
            self._peer_listeners.pop(lookup_id, None)

    async def announce(
        self,
        info_hash: bytes,
        port: int,
        *,
        implied_port: bool = False,
        on_peers: Callable[[tuple[Address, ...]], None] | None = None,
    ) -> AnnounceDone:
        """Look the torrent up and announce ``port`` to the closest nodes; ``on_peers``
        hears the peers found on the way as they arrive, as with :meth:`get_peers`."""
        lookup_id = self.node.announce(info_hash, port, self._now(), implied_port=implied_port)
        if on_peers is not None:
            self._peer_listeners[lookup_id] = on_peers
        try:
            return await self._wait(lookup_id, AnnounceDone)
        finally:
            self._peer_listeners.pop(lookup_id, None)

    async def get_item(self, target: bytes, *, salt: bytes = b"") -> ItemFound:
        return await self._wait(self.node.get_item(target, self._now(), salt=salt), ItemFound)

    async def put_immutable(self, value: BValue) -> PutDone:
        return await self._wait(self.node.put_immutable(value, self._now()), PutDone)

    async def put_mutable(
        self,
        private_key: bytes | Ed25519PrivateKey,
        value: BValue,
        *,
        salt: bytes = b"",
        seq: int | None = None,
        cas: int | None = None,
    ) -> PutDone:
        lookup_id = self.node.put_mutable(
            private_key, value, self._now(), salt=salt, seq=seq, cas=cas
        )
        return await self._wait(lookup_id, PutDone)

    async def sample_infohashes(self, target: bytes) -> SamplesFound:
        return await self._wait(self.node.sample_infohashes(target, self._now()), SamplesFound)

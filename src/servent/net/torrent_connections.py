"""A torrent's connections: who to dial, who to accept, what to remember when one ends.

:class:`TorrentConnections` is a part of
:class:`~servent.net.torrent_session.TorrentSession` with its own state (it
sees the session through :class:`ConnectionOwner`; its methods run on the
session's owner task).  The dial order comes from
:class:`~servent.net.known_peers.KnownPeers` (scored by
:mod:`servent.proto.connection_scoring`); a dropped connection is replaced at
once; our own address is never dialled (the listening port on a local host,
a socket that ends where it starts, or a peer that answers with our peer id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from servent.codec.metainfo import Metainfo
from servent.errors import MseError, ServentError
from servent.net.connection_facts import (
    LOCAL_HOSTS,
    describe,
    dialled_ourselves,
    is_self_connection,
    over_tcp,
    over_utp,
)
from servent.net.encrypted_transport import Connector, dial_peer
from servent.net.holepunch_priming import DIAL_DELAY, prime_nat
from servent.net.known_peers import Address, KnownPeer, KnownPeers
from servent.net.limits import GlobalLimits
from servent.net.peer_dialer import PeerDialer
from servent.net.peer_session import PeerHandler, PeerSession
from servent.net.peerwire_channel import channel_connector
from servent.net.swarm_peer import SwarmPeer
from servent.net.tcp_punch import TcpPuncher
from servent.net.torrent_config import TorrentConfig
from servent.net.utp_socket import UtpSocket
from servent.proto.mse import EncryptionPolicy
from servent.proto.peer_admission import (
    AdmissionPolicy,
    PeerActivity,
    admit_peer,
    keeps_new_duplicate,
)
from servent.proto.peerwire import PeerConnection, aria2_info_hash
from servent.proto.peerwire.extensions import ExtensionRegistry
from servent.proto.swarm import BanList
from servent.proto.tcp_punch import PunchRole, punch_role

if TYPE_CHECKING:
    from servent.net.node_channel import NodeChannel
    from servent.net.node_routes import NodeRoutes
    from servent.proto.node_routes import NodeAdvert

__all__ = ["ConnectionOwner", "TorrentConnections"]

#: Seconds per transport for dialling a PEX peer not flagged reachable (else the
#: torrent's ``connect_timeout``): a TCP SYN is sent three times within it.
BEHIND_NAT_CONNECT_TIMEOUT = 5.0

#: The torrent session's logger: these lines belong to it (and keep their old name).
log = logging.getLogger("servent.net.torrent_session")
#: How long finding a channel to a node may take (a record lookup, a punch, a circuit).
NODE_REACH_TIMEOUT = 60.0


class ConnectionOwner(PeerHandler, Protocol):
    """What :class:`TorrentConnections` needs of its torrent (a ``TorrentSession``)."""

    peers: dict[PeerSession, SwarmPeer]

    @property
    def complete(self) -> bool: ...

    @property
    def accepting(self) -> bool:
        """Running, and not stopping: new connections are welcome."""

    def start_task(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]: ...

    def register(self, session: PeerSession, *, dialled: Address | None) -> SwarmPeer: ...


class TorrentConnections:
    """Dialling, accepting and remembering the peers of one torrent.

    Its own state: the candidate addresses (:attr:`known`), our own addresses,
    the listening addresses of incoming peers, the dials in flight, counters.
    """

    def __init__(
        self,
        owner: ConnectionOwner,
        metainfo: Metainfo,
        config: TorrentConfig,
        *,
        peer_id: bytes,
        listen_port: int | None,
        limits: GlobalLimits,
        known: KnownPeers,
        bans: BanList,
        encryption: EncryptionPolicy,
        extension_registry: ExtensionRegistry,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.owner = owner
        self.metainfo = metainfo
        self.config = config
        self.peer_id = peer_id
        self.listen_port = listen_port
        self.limits = limits
        self.bans = bans
        self.encryption = encryption
        self.extension_registry = extension_registry
        self.loop = loop
        self.info_hash = metainfo.wire_info_hash
        #: aria2 1.36 names hybrid torrents by another hash; accepted as an alias.
        self.aria2_alias = aria2_info_hash(metainfo.info_bytes) if metainfo.is_hybrid else None
        self.num_pieces = metainfo.num_pieces
        self.known = known
        #: Addresses that turned out to be this node (never dialled again).
        self.own_addresses: set[Address] = set()
        #: Incoming peers that told us where they listen (BEP 10 ``p``) -> that address.
        self._incoming_listen: dict[SwarmPeer, Address] = {}
        self.dials: set[asyncio.Task[None]] = set()
        #: Addresses whose node we are seeking a channel to (``dial_node``).
        self.reaching: set[Address] = set()
        #: Set by the engine when uTP is on: dials TCP/uTP in the configured order.
        self.dialer: PeerDialer | None = None
        #: Incoming peers refused (per-address cap, or full with nobody idle) and idle
        #: connections closed to make room for one (counters for tests and status).
        self.refused_incoming = 0
        self.evicted = 0

    @property
    def peers(self) -> dict[PeerSession, SwarmPeer]:
        return self.owner.peers

    def add_peers(self, addresses: Iterable[Address], *, source: str = "manual") -> None:
        """Addresses to dial (given by the user, a tracker, the DHT ...)."""
        for host, port in addresses:
            if not self.bans.is_banned(host, port) and not self.is_own_address((host, port)):
                self.known.add((host, port), source=source)

    def is_own_address(self, address: Address) -> bool:
        """Whether dialling ``address`` would reach this node (seen before, or our port here)."""
        if address in self.own_addresses:
            return True
        host, port = address
        return port == self.listen_port and host in LOCAL_HOSTS

    def room(self) -> int:
        mine = self.config.max_connections - len(self.peers)
        return min(mine, self.limits.room)

    def dial_due(self, now: float) -> None:
        owner = self.owner
        if not owner.accepting:
            return
        # A seed skips addresses known to be seeds (two seeds have nothing to trade).
        for known in self.known.due(now, self.room(), seeding=owner.complete):
            if not self.limits.try_reserve():
                break
            self.known.dialling(known.address)
            conn = self._new_connection(initiator=True, alias=known.alias)
            session = PeerSession(conn, owner)
            # Registered before connecting: events may arrive before the dial task resumes.
            owner.register(session, dialled=known.address)
            dialer = self.dialer  # TCP only to a peer probably behind a NAT (see behind_nat)
            if dialer is not None and known.behind_nat:
                dialer = dialer.behind_nat(known.address)
            policy, timeout = known.dial_policy(self.encryption), self._dial_timeout(known)
            dial = owner.start_task(
                self._dial(session, known.address, policy, dialer, connect_timeout=timeout),
                "dial {}:{}".format(*known.address),
            )
            self._track(dial)  # so a stopping torrent cancels dials still in their handshake

    def _dial_timeout(self, known: KnownPeer) -> float:
        """A peer that PEX did not flag reachable probably sits behind a NAT: a dial that
        its router drops ends sooner, so that a hole punch starts sooner."""
        limit = self.config.connect_timeout
        return min(limit, BEHIND_NAT_CONNECT_TIMEOUT) if known.behind_nat else limit

    def punch(self, address: Address, seen_as: str | None = None) -> None:
        """BEP 55 ``connect``: prime our NAT towards ``address`` and dial it over uTP; and
        try TCP simultaneous open, in the role our endpoint (``seen_as``, our listening
        port) and the peer's give (decision 0048).  The first to connect holds the address,
        so the other is not dialled; duplicates that still happen end in :meth:`handshake_done`."""
        if not self.owner.accepting or self.is_own_address(address):
            return
        if any(p.dialled == address for p in self.peers.values()):
            return
        name = f"{address[0]}:{address[1]}"
        utp = None if self.dialer is None else self.dialer.utp
        if utp is not None:
            prime_nat(utp, address)
            self.owner.start_task(self._punch_dial(address, utp), f"punch {name}")
        puncher = None if self.dialer is None else self.dialer.tcp_punch
        if puncher is None or self._sealed():
            return
        role = None
        if seen_as is not None and self.listen_port:
            role = punch_role((seen_as, self.listen_port), address)
        if role is None:
            log.info("no TCP punch to %s: no public address of ours to compare (yourip)", name)
            return
        self.owner.start_task(self._tcp_punch(puncher, address, role), f"tcp punch {name}")

    def _sealed(self) -> bool:
        """A network torrent's peers come over its sealed wire only (never a TCP punch)."""
        network = None if self.dialer is None else self.dialer.network
        return network is not None and network.swarm_key(self.info_hash) is not None

    async def _tcp_punch(self, puncher: TcpPuncher, address: Address, role: PunchRole) -> None:
        """Simultaneous open; then speak first (initiator) or let the listener answer."""
        host, port = address
        log.info("TCP punch to %s:%d from port %d (we are the %s)", host, port,
                 puncher.port, role.value)  # fmt: skip
        try:
            sock = await puncher.open(address)
        except OSError as exc:  # TimeoutError included
            log.info("TCP punch to %s:%d failed: %s", host, port, describe(exc))
            return
        log.info("TCP punch to %s:%d connected", host, port)
        if not self.owner.accepting:
            sock.close()
        elif role is PunchRole.RESPONDER:
            with contextlib.suppress(OSError):
                await puncher.answer(sock)
        elif not self.limits.try_reserve():
            sock.close()
        else:
            self.known.add(address, source="holepunch")
            session = PeerSession(self._new_connection(initiator=True), self.owner)
            self.owner.register(session, dialled=address)
            await self._dial(session, address, self.encryption, connect=puncher.connector(sock))

    async def _punch_dial(self, address: Address, utp: UtpSocket) -> None:
        await asyncio.sleep(DIAL_DELAY)  # the other side primes meanwhile (decision 0042)
        entry = self.known.get(address)
        if (entry is not None and entry.busy) or not self.limits.try_reserve():
            return
        self.known.add(address, source="holepunch")
        self.known.dialling(address)
        session = PeerSession(self._new_connection(initiator=True), self.owner)
        self.owner.register(session, dialled=address)
        dialer = PeerDialer(utp=utp, preference="prefer-utp")
        await self._dial(session, address, self.encryption, dialer)

    def node_routes(self) -> NodeRoutes | None:  # set by the node on the engine's dialler
        return None if self.dialer is None else self.dialer.node_routes

    def dial_node(self, address: Address, advert: NodeAdvert) -> None:
        """Reach ``address`` as a node: a peer-wire stream of a channel (``docs/relay.md``);
        the address is not marked busy meanwhile (direct dials and BEP 55 go on)."""
        reach = None if (routes := self.node_routes()) is None else routes.reach
        if reach is None or address in self.reaching or self._busy(address):
            return
        if not self.owner.accepting or self._sealed() or not self.limits.try_reserve():
            return
        self.reaching.add(address)
        name = f"node dial {address[0]}:{address[1]}"
        self._track(self.owner.start_task(self._dial_node(address, reach(advert)), name))

    def _busy(self, address: Address) -> bool:
        return (entry := self.known.get(address)) is not None and entry.busy

    async def _dial_node(self, address: Address, reaching: Awaitable[NodeChannel]) -> None:
        """Holds the slot reserved by :meth:`dial_node` until the session takes it."""
        handed = False
        try:
            async with asyncio.timeout(NODE_REACH_TIMEOUT):
                channel = await reaching
            if not self.owner.accepting or self._busy(address):
                return  # stopped, or connected some other way meanwhile
            self.known.dialling(address)
            session = PeerSession(self._new_connection(initiator=True), self.owner)
            self.owner.register(session, dialled=address)
            handed = True
        except (ServentError, OSError, TimeoutError) as exc:
            log.info("no channel to the node at %s:%d: %s", *address, describe(exc))
            return
        finally:
            self.reaching.discard(address)
            if not handed:
                self.limits.release()
        connect = channel_connector(channel, address)  # plaintext: the channel encrypts
        await self._dial(session, address, EncryptionPolicy.OFF, connect=connect)

    async def _dial(
        self,
        session: PeerSession,
        address: Address,
        policy: EncryptionPolicy,
        dialer: PeerDialer | None = None,
        *,
        connect: Connector | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        """Dial ``session`` (``connect``: over a socket already connected, a punch's;
        ``connect_timeout``: per transport, the torrent's ``connect_timeout`` if None)."""
        host, port = address
        dialer = None if connect is not None else dialer or self.dialer
        try:
            await (dialer.dial if dialer is not None else dial_peer)(
                session, host, port,
                info_hash=session.conn.info_hash or self.info_hash,
                policy=policy,
                connect_timeout=connect_timeout or self.config.connect_timeout,
                **({} if connect is None else {"connect": connect}),
            )  # fmt: skip
        except (OSError, TimeoutError, MseError) as exc:
            reason = describe(exc)
            log.debug("dial %s:%d failed: %s", host, port, reason)
            if self.peers.pop(session, None) is not None:
                self.limits.release()
            self.known.failed(address, self.loop.time(), reason or type(exc).__name__)
            return
        if dialled_ourselves(session, self.listen_port):
            log.info("%s:%d is this node itself; not dialling it again", host, port)
            self.own_addresses.add(address)
            self.known.remove(address)
            session.close("connected to ourselves")
            return
        if not self.owner.accepting:
            session.close("torrent stopped")

    def _new_connection(self, *, initiator: bool, alias: bool = False) -> PeerConnection:
        meta = self.metainfo
        use_alias = alias and self.aria2_alias is not None
        return PeerConnection(
            peer_id=self.peer_id,
            info_hash=self.aria2_alias if use_alias else self.info_hash,
            info_hash_v2=meta.info_hash_v2 if meta.is_hybrid and not use_alias else None,
            num_pieces=self.num_pieces,
            initiator=initiator,
            config=self.config.connection,
            now=self.loop.time(),
            extensions=self.extension_registry,
        )

    def accept_incoming(self, session: PeerSession, now: float, *, node_full: bool = False) -> bool:
        """Take over an incoming connection whose handshake named this torrent.

        The caller (the listener) already reserved a global connection slot;
        on False it closes the session and releases the slot.  ``node_full``: that
        slot is over the node-wide limit, so an idle connection must make room.
        """
        host, port = session.address
        if not self.owner.accepting:
            return False
        handshake = session.conn.remote_handshake
        if self.bans.is_banned(host, port, handshake.peer_id if handshake else None):
            return False
        admission = admit_peer(
            self._activity(), host, now, self._admission_policy(), node_full=node_full
        )
        if not admission.accept:
            self.refused_incoming += 1
            log.debug("refusing %s:%d: %s", host, port, admission.reason)
            return False
        meta = self.metainfo
        if handshake is not None and handshake.info_hash == self.aria2_alias:
            session.conn.accept(self.aria2_alias, now=now, num_pieces=self.num_pieces)
        else:
            session.conn.accept(
                self.info_hash,
                now=now,
                info_hash_v2=meta.info_hash_v2 if meta.is_hybrid else None,
                num_pieces=self.num_pieces,
            )
        session.conn.extensions = self.extension_registry
        self.owner.register(session, dialled=None)
        session.handler = self.owner
        if isinstance(admission.evict, SwarmPeer):  # the keys _activity handed in
            self._evict(admission.evict, host)
        return True

    def handshake_done(self, peer: SwarmPeer, peer_id: bytes) -> str | None:
        """A peer said who it is: why to close it (banned, a duplicate), or None to go on.

        Of two connections to one peer (both dialled each other), the rule of
        :func:`keeps_new_duplicate` keeps one; the other is closed here."""
        host, port = peer.session.address
        if self.bans.is_banned(host, port, peer_id):
            return "banned"
        twin = next((p for p in self.peers.values() if p.open and p.identity[2] == peer_id), None)
        if twin is not None:
            if not keeps_new_duplicate(
                new_outgoing=peer.dialled is not None,
                old_outgoing=twin.dialled is not None,
                our_id=self.peer_id,
                their_id=peer_id,
                new_utp=over_utp(peer),
                old_utp=over_utp(twin),
            ):
                return "duplicate connection"
            self.close_twin(twin, peer)
        peer.identity = (host, port, peer_id)
        if peer.dialled is not None:
            self.known.connected(peer.dialled)
        return None

    def close_twin(self, twin: SwarmPeer, kept: SwarmPeer) -> None:
        """Close the older of two connections to one peer (both dialled each other); the
        address it held passes to the kept one, so it is not dialled again meanwhile."""
        held = twin.dialled if twin.dialled is not None else self._incoming_listen.pop(twin, None)
        twin.dialled = None  # its end no longer speaks for the address
        if held is not None and kept.dialled is None and kept not in self._incoming_listen:
            self._incoming_listen[kept] = held
        elif held is not None and held != kept.dialled:
            self.known.disconnected(held, self.loop.time())
        twin.closing = reason = "duplicate connection (the newer one is kept)"
        twin.session.close(reason)

    def _admission_policy(self) -> AdmissionPolicy:
        return AdmissionPolicy(
            max_peers=self.config.max_connections, max_per_ip=self.config.max_peers_per_ip
        )

    def _activity(self) -> list[PeerActivity]:
        """Every connection of the torrent as :func:`admit_peer` sees it (one already
        closing is leaving: it neither counts nor can be evicted twice)."""
        return [
            PeerActivity(
                key=peer,
                host=peer.session.address[0],
                incoming=peer.dialled is None,
                open=peer.open,
                connected_at=peer.connected_at,
                last_payload=peer.last_payload,
                interested=peer.session.conn.am_interested or peer.session.conn.peer_interested,
            )
            for peer in self.peers.values()
            if peer.session.close_reason is None
        ]

    def _evict(self, victim: SwarmPeer, newcomer: str) -> None:
        """Close an idle connection so an incoming peer gets its slot."""
        self.evicted += 1
        log.info("replacing idle peer %s with a new peer from %s", victim.label, newcomer)
        if victim.dialled is not None:
            self.known.penalise(victim.dialled, "idle, replaced by an incoming peer")
        victim.session.close("idle: replaced by an incoming peer")

    def remember_incoming(self, peer: SwarmPeer, listen_port: int | None) -> None:
        """An incoming peer said where it listens: keep that address as a candidate
        (source ``incoming``), busy while this connection lasts, so it can be dialled
        again after a drop and its delivered bytes count in its score."""
        if peer.dialled is not None or listen_port is None or peer in self._incoming_listen:
            return
        address = (peer.session.address[0], listen_port)
        if self.is_own_address(address) or self.bans.is_banned(*address):
            return
        entry = self.known.get(address)
        if entry is not None and entry.busy:
            return  # we are dialling it, or another connection holds it
        if entry is None and not self.known.add(address, source="incoming"):
            return  # the list is full
        self.known.connected(address)
        self._incoming_listen[peer] = address

    def peer_gone(self, peer: SwarmPeer, now: float) -> None:
        """A connection ended: what it tells about its address (ourselves, a seed, a failure)."""
        session = peer.session
        if peer.dialled is not None and is_self_connection(session):
            log.info("%s is this node itself; not dialling it again", peer.label)
            self.own_addresses.add(peer.dialled)
            self.known.remove(peer.dialled)
        elif (listening := self._incoming_listen.pop(peer, None)) is not None:
            self.known.disconnected(listening, now, peer.downloaded, seed=peer.has_all or None)
        elif peer.dialled is not None:
            if peer.open:
                seed = peer.has_all or None  # seen to be a seed: a seeding torrent skips it
                self.known.disconnected(peer.dialled, now, peer.downloaded, seed=seed)
            else:
                self.known.failed(peer.dialled, now, session.close_reason or "closed")
                early = session.conn.remote_handshake is None and over_tcp(peer)
                if early and self.dialer is not None:  # TCP accepted, dropped before handshake
                    self.dialer.tcp_closed_early(*peer.dialled)
                known = self.known.get(peer.dialled)
                if known is not None and self.aria2_alias is not None:
                    known.alias = not known.alias  # perhaps aria2: try its hash next

    def _track(self, dial: asyncio.Task[None]) -> None:
        self.dials.add(dial)
        dial.add_done_callback(self.dials.discard)

    def cancel_dials(self) -> None:
        for dial in list(self.dials):
            dial.cancel()

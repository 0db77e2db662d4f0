"""Dialling a peer (or a node channel) over TCP or uTP, in the order ``utp_preference`` gives.

``prefer-tcp`` dials TCP and falls back to uTP when TCP fails (refused,
unreachable, timed out); ``prefer-utp`` is the other way round (as libtorrent
does by default); ``tcp-only`` never dials uTP.  A peer that accepts TCP but
closes it before the BitTorrent handshake (libtorrent with TCP off does) is
dialled over uTP first from then on. Encryption (MSE, or the sealed
wire of a network torrent) runs on top of either, unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from servent.errors import MseError
from servent.net.encrypted_transport import Connector, dial_peer
from servent.net.node_routes import NodeRoutes
from servent.net.sealed_stream import NetworkTorrents, dial_sealed
from servent.net.tcp_punch import TcpPuncher
from servent.net.utp_socket import UtpSocket
from servent.proto.mse import EncryptionPolicy

__all__ = ["UTP_PREFERENCES", "PeerDialer"]

ProtocolFactory = Callable[[], asyncio.BaseProtocol]

log = logging.getLogger(__name__)

UTP_PREFERENCES = ("prefer-tcp", "prefer-utp", "tcp-only")
#: A uTP dial with TCP still to try gives up after this long (libtorrent waits about 3 s):
#: a peer without uTP never answers a SYN, it does not refuse it.
UTP_FALLBACK_AFTER = 3.0
#: Addresses remembered as dropping TCP before the handshake (the oldest forgotten first).
MAX_UTP_FIRST = 1024


@dataclass
class PeerDialer:
    """Tries each transport in turn; ``outcomes`` counts which one connected."""

    utp: UtpSocket | None = None
    preference: str = "prefer-tcp"
    outcomes: Counter[str] = field(default_factory=Counter)
    #: The node's network torrents, dialled over the sealed wire (``docs/networks.md`` 8).
    network: NetworkTorrents | None = None
    #: TCP simultaneous open from the listening port for BEP 55 punches (``holepunch_tcp``).
    tcp_punch: TcpPuncher | None = None
    #: Peers dialled over uTP first whatever the preference (an ordered set, bounded).
    utp_first: dict[tuple[str, int], None] = field(default_factory=dict)
    #: Torrent peers reached as nodes over channels (``docs/relay.md``); set by the node.
    node_routes: NodeRoutes | None = None

    def __post_init__(self) -> None:
        if self.preference not in UTP_PREFERENCES:
            raise ValueError(f"utp_preference: {self.preference!r} is not one of {UTP_PREFERENCES}")

    def order(self, address: tuple[str, int] | None = None) -> list[str]:
        """Transports to try, in turn, for ``address`` (or any peer)."""
        if self.utp is None or not self.utp.ports or self.preference == "tcp-only":
            return ["tcp"]
        if self.preference == "prefer-utp" or address in self.utp_first:
            return ["utp", "tcp"]
        return ["tcp", "utp"]

    def behind_nat(self, address: tuple[str, int]) -> PeerDialer:
        """The dialer for a direct dial to a peer probably behind a NAT: TCP only (unless
        it is known to want uTP, or the user prefers uTP).  A uTP dial that reached its
        router leaves there an unanswered UDP entry (30 s) that spoils the BEP 55 uTP
        punch to come; the punch dials uTP itself (docs/holepunch.md)."""
        if self.preference != "prefer-tcp" or address in self.utp_first:
            return self
        return replace(self, preference="tcp-only")  # counters and memory stay shared

    def tcp_closed_early(self, host: str, port: int) -> None:
        """TCP to ``host:port`` was accepted but closed before the BitTorrent handshake:
        a peer that speaks uTP only may do that, so try uTP first next time."""
        if len(self.utp_first) >= MAX_UTP_FIRST:
            del self.utp_first[next(iter(self.utp_first))]
        self.utp_first[(host, port)] = None

    async def dial(
        self,
        session: asyncio.BufferedProtocol,
        host: str,
        port: int,
        *,
        info_hash: bytes,
        policy: EncryptionPolicy,
        connect_timeout: float,
    ) -> str:
        """Connect ``session`` like :func:`dial_peer`; return "tcp" or "utp".

        A network torrent is dialled over its sealed wire only (never MSE or plain)."""
        network = self.network
        sealed = network is not None and network.swarm_key(info_hash) is not None

        async def attempt(connect: Connector | None, limit: float) -> None:
            if sealed:
                assert network is not None
                await dial_sealed(
                    session, host, port,
                    info_hash=info_hash, network=network, connect_timeout=limit, connect=connect,
                )  # fmt: skip
                return
            await dial_peer(
                session, host, port,
                info_hash=info_hash, policy=policy, connect_timeout=limit, connect=connect,
            )  # fmt: skip

        return await self._in_order(host, port, attempt, connect_timeout)

    async def open(
        self, protocol_factory: ProtocolFactory, host: str, port: int, *, connect_timeout: float
    ) -> str:
        """Connect a protocol (a node channel) to ``host:port`` in the same order."""

        async def attempt(connect: Connector | None, limit: float) -> None:
            opener = connect or asyncio.get_running_loop().create_connection
            async with asyncio.timeout(limit):  # not wait_for: it can lose a cancel (3.11)
                await opener(protocol_factory, host, port)

        return await self._in_order(host, port, attempt, connect_timeout)

    async def _in_order(
        self,
        host: str,
        port: int,
        attempt: Callable[[Connector | None, float], Awaitable[None]],
        connect_timeout: float,
    ) -> str:
        kinds = self.order((host, port))
        for number, kind in enumerate(kinds):
            utp = self.utp
            connect = utp.create_connection if kind == "utp" and utp is not None else None
            timeout = connect_timeout
            if connect is not None and number < len(kinds) - 1:
                timeout = min(connect_timeout, UTP_FALLBACK_AFTER)
            try:
                await attempt(connect, timeout)
            except (OSError, TimeoutError, MseError) as exc:
                if number == len(kinds) - 1 or isinstance(exc, MseError):
                    raise
                log.debug("%s:%d over %s failed (%r); trying %s", host, port, kind, exc,
                          kinds[number + 1])  # fmt: skip
                self.outcomes[f"{kind} failed"] += 1
                continue
            self.outcomes[kind] += 1
            return kind
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

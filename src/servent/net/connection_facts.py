"""Small facts about one peer connection that a torrent's connection logic asks.

Kept apart from :mod:`~servent.net.torrent_connections` (which decides what
to do with them): is it over uTP, did we dial ourselves, why did a dial fail.
"""

from __future__ import annotations

import os

from servent.net.peer_session import PeerSession
from servent.net.swarm_peer import SwarmPeer

__all__ = [
    "LOCAL_HOSTS",
    "describe",
    "dialled_ourselves",
    "is_self_connection",
    "over_tcp",
    "over_utp",
]

#: Host names that reach this machine when paired with our listening port.
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "0.0.0.0", "::", "localhost"})


def over_utp(peer: SwarmPeer) -> bool:
    transport = peer.session.transport
    return transport is not None and transport.get_extra_info("transport") == "utp"


def over_tcp(peer: SwarmPeer) -> bool:
    """Neither uTP nor a node channel's peer-wire stream (``docs/relay.md``)."""
    transport = peer.session.transport
    return transport is None or transport.get_extra_info("transport") not in ("utp", "channel")


def is_self_connection(session: PeerSession) -> bool:
    """The peer answered with our own peer id: we dialled ourselves."""
    return session.error is not None and "connected to ourselves" in str(session.error)


def dialled_ourselves(session: PeerSession, listen_port: int | None) -> bool:
    """The dialled socket ends where it starts: same host, and our listening port."""
    transport = session.transport
    if transport is None or not listen_port:
        return False
    local = transport.get_extra_info("sockname")
    remote = transport.get_extra_info("peername")
    return bool(local and remote and remote[1] == listen_port and remote[0] == local[0])


def describe(exc: BaseException) -> str:
    """A short reason for a failed dial ("Connection refused", "timed out")."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__

"""Whether a torrent takes one more incoming peer, and which open connection makes room.

Sans-IO and pure: the torrent session describes its connections and gets a
decision back.  Why a rule at all: a torrent holds a bounded number of
connections, so without one whoever connects first keeps the slots; one host
that opens 50 connections and then sends only keep-alives locks every real
peer out of a seeder.  Two rules, as libtorrent applies them:

* **Per-address cap**: at most ``max_per_ip`` incoming connections from one IP
  address.  A newcomer from an address at its cap may only take the slot of an
  idle incoming connection *of that same address* (a household behind one NAT
  still gets a working peer in; a flooding host only churns its own slots).
  Connections we dialled do not count: they are our own choice, and a node
  that dialled three peers on one host must still accept a fourth from it.
* **Replacement**: a full torrent (or a torrent of a node at its node-wide
  limit) gives a newcomer the slot of its least useful connection.  Useful
  means payload moved: a connection is idle when no block went either way for
  ``idle_grace`` seconds (``interested_grace`` when either side is
  interested: a choked leecher waits its turn a while).  Keep-alives,
  HAVEs and other chatter are not activity.  Least useful first: nobody
  interested, then the longest idle, then the oldest connection.

A connection still dialling (no handshake yet) is never evicted.

Since seeds dial too, two peers may dial each other at once; both ends then
must close the *same* one of the two connections, or both are lost
(:func:`keeps_new_duplicate`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Admission",
    "AdmissionPolicy",
    "PeerActivity",
    "admit_peer",
    "host_key",
    "keeps_new_duplicate",
    "least_useful_peer",
]

#: Connections with one IP address per torrent, unless configured otherwise.
DEFAULT_MAX_PER_IP = 3
#: Seconds without payload before a connection nobody is interested in may be replaced.
IDLE_GRACE = 10.0
#: Seconds without payload before a connection with interest may be replaced.
INTERESTED_GRACE = 120.0


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    max_peers: int
    max_per_ip: int = DEFAULT_MAX_PER_IP
    idle_grace: float = IDLE_GRACE
    interested_grace: float = INTERESTED_GRACE


@dataclass(frozen=True, slots=True)
class PeerActivity:
    """What the decision needs to know about one connection of the torrent."""

    key: object
    host: str
    #: The peer dialled us (only those count against the per-address cap).
    incoming: bool
    #: The handshake completed (a dial still connecting is never evicted).
    open: bool
    connected_at: float
    #: When a block last moved either way; ``None`` = never.
    last_payload: float | None
    #: Either side is interested in the other.
    interested: bool


@dataclass(frozen=True, slots=True)
class Admission:
    accept: bool
    #: The connection to close to make room (``None``: there is room already).
    evict: object | None = None
    #: Why the newcomer is refused (empty when accepted).
    reason: str = ""


def host_key(host: str) -> str:
    """One spelling per address: an IPv4-mapped IPv6 address counts as its IPv4 address."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host.lower()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _idle_since(peer: PeerActivity) -> float:
    return peer.last_payload if peer.last_payload is not None else peer.connected_at


def least_useful_peer(
    peers: Sequence[PeerActivity], now: float, policy: AdmissionPolicy
) -> object | None:
    """The key of the connection to give up for a newcomer, or None if all are useful."""
    idle = [
        peer
        for peer in peers
        if peer.open
        and now - _idle_since(peer)
        >= (policy.interested_grace if peer.interested else policy.idle_grace)
    ]
    if not idle:
        return None
    victim = min(idle, key=lambda peer: (peer.interested, _idle_since(peer), peer.connected_at))
    return victim.key


def admit_peer(
    peers: Sequence[PeerActivity],
    host: str,
    now: float,
    policy: AdmissionPolicy,
    *,
    node_full: bool = False,
) -> Admission:
    """Whether an incoming peer from ``host`` gets a slot, and whose slot it takes.

    ``node_full``: the node-wide connection limit is reached, so the newcomer
    comes in only in place of one of this torrent's idle connections."""
    address = host_key(host)
    same = [peer for peer in peers if peer.incoming and host_key(peer.host) == address]
    if len(same) >= policy.max_per_ip:
        victim = least_useful_peer(same, now, policy)
        if victim is None:
            return Admission(False, reason=f"{len(same)} connections from {address} already")
        return Admission(True, evict=victim)
    if policy.max_peers < 1 or len(peers) > policy.max_peers:
        return Admission(False, reason="over the connection limit")
    if node_full or len(peers) == policy.max_peers:
        victim = least_useful_peer(peers, now, policy)
        if victim is None:
            full = "node" if node_full else "torrent"
            return Admission(False, reason=f"{full} full and every connection in use")
        return Admission(True, evict=victim)
    return Admission(True)


def keeps_new_duplicate(
    *,
    new_outgoing: bool,
    old_outgoing: bool,
    our_id: bytes,
    their_id: bytes,
    new_utp: bool = False,
    old_utp: bool = False,
) -> bool:
    """A second connection to a peer (same peer id) completed its handshake: whether it
    is kept and the older one closed.  Both ends must pick the same connection, so the
    rule uses only what both know: the one dialled by the peer with the greater peer id
    survives (as in libtorrent).  Two connections dialled by the same side (a hole
    punch's uTP dial and its TCP simultaneous open): the uTP one, else the older one
    (which one completed first can differ between the two ends)."""
    if new_outgoing == old_outgoing:
        return new_utp and not old_utp
    return new_outgoing == (our_id > their_id)

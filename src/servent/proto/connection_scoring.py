"""Which peer addresses to dial first, and which idle connection to give up for them.

Sans-IO and pure: the connection manager of a torrent session hands in what
it knows about each candidate address (where it came from, how it behaved
before) and gets back an order.  Why score at all: a torrent can know
thousands of addresses and holds a few dozen connections, so the order
decides how fast a download starts and how well it survives churn.

* **Source**: an address the user typed is most likely right; tracker, LSD
  and DHT answers come from a party that saw the peer announce itself; PEX
  addresses are hearsay from any connected peer (and the cheapest to forge).
* **History**: bytes an address delivered before count most (peers that
  deliver are preferred); every failed attempt in a row lowers the score.
* **Seed or not** (BEP 11 PEX flags, or what an earlier connection showed): a
  downloading torrent prefers seeds, they have every piece; a seeding torrent
  dials every address that is not known to be a seed (two seeds have nothing
  to trade), as libtorrent, Transmission and aria2 do: a leecher that
  announced to a tracker before us may not announce again for half an hour,
  so waiting for it to dial would stall the download.  Only where a duplicate
  is likely does a seed wait (see :func:`dialable_while_seeding`).  An address
  PEX flags as reachable (its reporter dialled it) gets a small bonus over one
  only seen as an incoming connection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "SOURCE_WEIGHTS",
    "CandidateHistory",
    "ConnectedPeerView",
    "candidate_score",
    "dialable_while_seeding",
    "peer_to_replace",
    "rank_candidates",
]

T = TypeVar("T")

SOURCE_WEIGHTS: dict[str, float] = {
    "manual": 6.0,
    "tracker": 4.0,
    "lsd": 4.0,
    "dht": 3.0,
    "incoming": 3.0,
    "pex": 2.0,
}
#: Weight of a source not in the table.
UNKNOWN_SOURCE_WEIGHT = 1.0
#: Score lost per consecutive failure.
FAILURE_PENALTY = 2.5
#: Bonus for an address that once completed a handshake.
CONNECTED_BONUS = 1.0
#: Bonus for an address reported to be a seed, while we download (a PEX seed
#: then ranks with tracker and LSD answers).
SEED_BONUS = 2.0
#: Bonus for an address PEX reports as reachable (BEP 11 flag 0x10).
REACHABLE_BONUS = 0.5
#: Delivered bytes give log2(1 + bytes / unit) points, so 1 MiB ~ 6 points.
DELIVERY_UNIT = 16 * 1024


@dataclass(frozen=True, slots=True)
class CandidateHistory:
    source: str
    failures: int = 0
    ever_connected: bool = False
    #: Payload bytes received from this address over all past connections.
    delivered: int = 0
    #: Whether the address is a seed: True, False, or None (nobody said).
    seed: bool | None = None
    #: Whether a peer reported it reachable (it dialled it).
    reachable: bool = False


def candidate_score(history: CandidateHistory) -> float:
    """Higher is dialled first (see the module docstring for the reasons)."""
    score = SOURCE_WEIGHTS.get(history.source, UNKNOWN_SOURCE_WEIGHT)
    if history.seed:
        score += SEED_BONUS
    if history.reachable:
        score += REACHABLE_BONUS
    score -= FAILURE_PENALTY * history.failures
    if history.ever_connected:
        score += CONNECTED_BONUS
    if history.delivered > 0:
        score += math.log2(1 + history.delivered / DELIVERY_UNIT)
    return score


def dialable_while_seeding(history: CandidateHistory) -> bool:
    """Whether a seeding torrent dials this address: any from the user, a tracker, the
    DHT, LSD or PEX that is not known to be a seed.  Two kinds wait to be dialled
    instead, as both will dial us and two dials at once end in a duplicate: a PEX
    leecher not flagged reachable (it dialled out to its reporter), and an address
    known only because it dialled us before (decision 0021)."""
    if history.seed:
        return False
    if history.source == "incoming":
        return False
    if history.source == "pex" and history.seed is False:
        return history.reachable  # flags present: trust "reachable"
    return True


def rank_candidates(
    candidates: Iterable[T],
    history: Callable[[T], CandidateHistory],
    count: int,
    *,
    seeding: bool = False,
) -> list[T]:
    """The best ``count`` candidates, best first (ties keep the input order); while
    ``seeding``, only those :func:`dialable_while_seeding` (not known seeds)."""
    if count <= 0:
        return []
    histories = ((c, history(c)) for c in candidates)
    if seeding:
        histories = ((c, h) for c, h in histories if dialable_while_seeding(h))
    scored = [(candidate_score(h), n, c) for n, (c, h) in enumerate(histories)]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [candidate for _, _, candidate in scored[:count]]


@dataclass(frozen=True, slots=True)
class ConnectedPeerView:
    """What the manager needs to know about one open connection."""

    key: object
    connected_at: float
    #: Smoothed payload rate from the peer (bytes/s).
    download_rate: float
    #: Whether the peer has something we want (we are interested in it).
    interesting: bool
    #: Whether we upload to it right now (dropping it would hurt reciprocity).
    unchoked_by_us: bool


def peer_to_replace(
    peers: Sequence[ConnectedPeerView], now: float, *, min_age: float = 30.0
) -> object | None:
    """An open connection worth giving up for an untried candidate, or None.

    Only when the torrent is at its connection target is this asked.  The
    victim is the slowest peer that has been connected for ``min_age`` and
    delivers nothing now: first one with nothing we want, then one that
    simply does not send.  A peer we upload to is kept (it may be starting).
    """
    idle = [
        peer
        for peer in peers
        if now - peer.connected_at >= min_age
        and peer.download_rate < 1.0
        and not peer.unchoked_by_us
    ]
    if not idle:
        return None
    idle.sort(key=lambda peer: (peer.interesting, peer.connected_at))
    return idle[0].key

"""What a user chooses for one torrent, and what a running torrent reports.

Kept apart from :mod:`servent.net.torrent_session` so front ends and the
engine can build and read these without the session's machinery; both are
re-exported from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from servent.proto.peer_admission import DEFAULT_MAX_PER_IP
from servent.proto.peerwire import ConnectionConfig
from servent.proto.pipeline import PipelineConfig
from servent.proto.swarm import PeerState, SwarmCore

__all__ = ["TorrentConfig", "TorrentStatistics", "swarm_statistics"]


@dataclass(frozen=True, slots=True)
class TorrentConfig:
    """Per-torrent limits and timings chosen by the user (defaults suit the public swarm)."""

    max_connections: int = 50
    #: Connections with one IP address (a newcomer beyond it may only replace an idle one).
    max_peers_per_ip: int = DEFAULT_MAX_PER_IP
    #: Peers we upload to at once; ``None`` = every interested peer.
    upload_slots: int | None = 4
    download_rate: float | None = None
    upload_rate: float | None = None
    sequential: bool = False
    connect_timeout: float = 10.0
    max_dial_failures: int = 5
    reconnect_delay: float = 2.0
    tick_interval: float = 0.5
    #: Received bytes waiting for verification before reading from peers pauses.
    max_unverified_bytes: int = 64 * 1024 * 1024
    connection: ConnectionConfig = field(default_factory=ConnectionConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    client_name: str = "servent"
    #: Message stream encryption: "off", "enabled" (accept both, try MSE first when
    #: dialling) or "required"; ``None`` = the engine's setting.
    encryption: str | None = None
    #: Use the torrent's ``url-list`` HTTP servers (BEP 19) as extra sources.
    web_seeds: bool = True


@dataclass(frozen=True, slots=True)
class TorrentStatistics:
    wanted_bytes: int
    have_bytes: int
    downloaded: int
    uploaded: int
    download_rate: float
    upload_rate: float
    peers: int
    complete: bool
    hash_failures: int
    banned: int
    #: Payload bytes received per peer address (``host:port``), for tests and UIs.
    downloaded_from: dict[str, int]
    #: Payload bytes sent per peer address (incoming peers by their source port).
    uploaded_to: dict[str, int]
    #: Peers (two connections to one peer id count once) and web seeds that delivered
    #: payload: what ``downloaded_from`` counts by connection address.
    sources: int = 0


def swarm_statistics(
    core: SwarmCore,
    peers: Iterable[PeerState],
    now: float,
    *,
    downloaded_from: dict[str, int],
    uploaded_to: dict[str, int],
    complete: bool,
    delivered_by: frozenset[bytes | str] = frozenset(),
    web_sources: int = 0,
) -> TorrentStatistics:
    """The figures of a running torrent; per-peer totals add open peers to closed ones'.

    ``delivered_by``: the peer ids (else labels) of closed peers that delivered payload."""
    peers = list(peers)
    delivering = delivered_by | {peer.source for peer in peers if peer.downloaded}
    return TorrentStatistics(
        wanted_bytes=core.wanted_bytes,
        have_bytes=core.have_bytes,
        downloaded=core.downloaded,
        uploaded=core.uploaded,
        download_rate=core.down_meter.rate(now),
        upload_rate=core.up_meter.rate(now),
        peers=sum(1 for peer in peers if peer.open),
        complete=complete,
        hash_failures=core.hash_failures,
        banned=len(core.bans),
        downloaded_from=_add_counts(downloaded_from, peers, "downloaded"),
        uploaded_to=_add_counts(uploaded_to, peers, "uploaded"),
        sources=len(delivering) + web_sources,
    )


def _add_counts(closed: dict[str, int], peers: list[PeerState], counter: str) -> dict[str, int]:
    totals = dict(closed)
    for peer in peers:
        count: int = getattr(peer, counter)
        if count:
            totals[peer.label] = totals.get(peer.label, 0) + count
    return totals

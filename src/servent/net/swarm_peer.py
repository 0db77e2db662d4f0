"""A connected peer as the asyncio shell knows it: the core's state plus its driver.

Kept apart from :class:`~servent.net.peer_session.PeerSession` (the socket
driver, which a listener also uses before the torrent is known) so the
driver stays torrent-agnostic.  The swarm core (:mod:`servent.proto.swarm`)
sees only the :class:`~servent.proto.swarm.peer.PeerState` part.
"""

from __future__ import annotations

import asyncio

from servent.net.known_peers import Address
from servent.net.peer_session import PeerSession
from servent.proto.pipeline import PipelineConfig
from servent.proto.swarm.peer import RATE_GAIN, PeerState

__all__ = ["RATE_GAIN", "SwarmPeer"]


class SwarmPeer(PeerState):
    """Per-peer state of one torrent, with the session and uploader task that serve it."""

    __slots__ = ("session", "upload_wakeup", "uploader")

    def __init__(
        self,
        session: PeerSession,
        num_pieces: int,
        now: float,
        *,
        dialled: Address | None,
        pipeline: PipelineConfig | None = None,
    ) -> None:
        super().__init__(
            session.conn, num_pieces, now, dialled=dialled, address=session.address,
            pipeline=pipeline,
        )  # fmt: skip
        self.session = session
        self.upload_wakeup = asyncio.Event()
        self.uploader: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        """``host:port`` as users know the peer (the dialled address if we dialled it)."""
        host, port = self.dialled or self.session.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

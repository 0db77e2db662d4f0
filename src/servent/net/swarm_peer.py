"""What a torrent session knows about one connected peer.

Kept apart from :class:`~servent.net.peer_session.PeerSession` (the socket
driver, which a listener also uses before the torrent is known) so the
driver stays torrent-agnostic.  The picker and the choker use the
:class:`SwarmPeer` object itself as the peer key.
"""

from __future__ import annotations

import asyncio
from collections import deque

from servent.codec.bitfield import Bitfield
from servent.net.known_peers import Address
from servent.net.peer_session import PeerSession
from servent.net.provenance import PeerIdentity
from servent.proto.peerwire import Request
from servent.proto.pipeline import PipelineConfig, RequestPipeline

#: Smoothing of the per-peer rates shown to users and to the choker.
RATE_GAIN = 0.5


class SwarmPeer:
    """Per-peer state of one torrent: pieces, pipeline, uploads, counters."""

    __slots__ = (
        "_last_downloaded",
        "_last_uploaded",
        "connected_at",
        "dialled",
        "down_rate",
        "downloaded",
        "has_all",
        "identity",
        "last_payload",
        "open",
        "parole_piece",
        "pieces",
        "pipeline",
        "sent_at",
        "session",
        "snubbed",
        "up_rate",
        "upload_wakeup",
        "uploaded",
        "uploader",
        "uploads",
    )

    def __init__(
        self,
        session: PeerSession,
        num_pieces: int,
        now: float,
        *,
        dialled: Address | None,
        pipeline: PipelineConfig | None = None,
    ) -> None:
        self.session = session
        #: The address we dialled (``None`` for an incoming connection).
        self.dialled = dialled
        self.identity: PeerIdentity = (*session.address, b"")
        self.open = False  # handshake done, torrent state set up
        self.pieces = Bitfield(num_pieces)
        self.has_all = False
        self.pipeline = RequestPipeline(now, pipeline)
        #: ``(index, begin) -> when requested``; no longer filled for peer connections
        #: (the connection's request ledger keeps that time and hands it back with
        #: each block); popping from it is harmless.
        self.sent_at: dict[tuple[int, int], float] = {}
        self.uploads: deque[Request] = deque()
        self.upload_wakeup = asyncio.Event()
        self.uploader: asyncio.Task[None] | None = None
        self.downloaded = 0
        self.uploaded = 0
        self.down_rate = 0.0
        self.up_rate = 0.0
        self._last_downloaded = 0
        self._last_uploaded = 0
        self.connected_at = now
        #: When a block last moved either way (seen at a rate update); None = never.
        self.last_payload: float | None = None
        self.snubbed = False
        #: The piece a peer on parole is fetching alone.
        self.parole_piece: int | None = None

    def update_rates(self, elapsed: float, now: float) -> None:
        """Fold the bytes moved since the last call into the smoothed rates (and note
        ``now`` as the last payload exchange if any moved: keep-alives do not count)."""
        if elapsed <= 0:
            return
        if self.downloaded != self._last_downloaded or self.uploaded != self._last_uploaded:
            self.last_payload = now
        down = (self.downloaded - self._last_downloaded) / elapsed
        up = (self.uploaded - self._last_uploaded) / elapsed
        self._last_downloaded = self.downloaded
        self._last_uploaded = self.uploaded
        self.down_rate = RATE_GAIN * down + (1 - RATE_GAIN) * self.down_rate
        self.up_rate = RATE_GAIN * up + (1 - RATE_GAIN) * self.up_rate

    @property
    def label(self) -> str:
        """``host:port`` as users know the peer (the dialled address if we dialled it)."""
        host, port = self.dialled or self.session.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def __repr__(self) -> str:
        host, port, _ = self.identity
        return f"<SwarmPeer {host}:{port}>"

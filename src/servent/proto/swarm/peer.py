"""What the swarm core knows about one connected peer (no sockets, no tasks).

The picker, the choker and provenance use the :class:`PeerState` object itself
as the peer's key.  The asyncio shell subclasses it to attach its socket driver
and uploader task (:class:`servent.net.swarm_peer.SwarmPeer`); the simulator
uses it as it is.
"""

from __future__ import annotations

from collections import deque

from servent.codec.bitfield import Bitfield
from servent.proto.peerwire import PeerConnection, Request
from servent.proto.pipeline import PipelineConfig, RequestPipeline
from servent.proto.swarm.provenance import PeerIdentity

__all__ = ["RATE_GAIN", "Address", "PeerState"]

#: Smoothing of the per-peer rates shown to users and to the choker.
RATE_GAIN = 0.5

Address = tuple[str, int]


class PeerState:
    """Per-peer state of one torrent: pieces, pipeline, upload queue, counters."""

    __slots__ = (
        "_last_downloaded",
        "_last_uploaded",
        "closing",
        "conn",
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
        "snubbed",
        "up_rate",
        "uploaded",
        "uploads",
    )

    def __init__(
        self,
        conn: PeerConnection,
        num_pieces: int,
        now: float,
        *,
        dialled: Address | None,
        address: Address = ("", 0),
        pipeline: PipelineConfig | None = None,
    ) -> None:
        #: The sans-IO connection: the core writes messages into it, the shell moves its bytes.
        self.conn = conn
        #: The address we dialled (``None`` for an incoming connection).
        self.dialled = dialled
        self.identity: PeerIdentity = (*address, b"")
        self.open = False  # handshake done, torrent state set up
        #: Why the core asked the shell to close this peer (it is ignored from then on).
        self.closing: str | None = None
        self.pieces = Bitfield(num_pieces)
        self.has_all = False
        self.pipeline = RequestPipeline(now, pipeline)
        #: ``(index, begin) -> when requested``; no longer filled for peer connections
        #: (the connection's request ledger keeps that time and hands it back with
        #: each block); popping from it is harmless.
        self.sent_at: dict[tuple[int, int], float] = {}
        #: Requests accepted from the peer, waiting for the shell's uploader.
        self.uploads: deque[Request] = deque()
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

    @property
    def usable(self) -> bool:
        """Open and not being closed: the core may still talk to it."""
        return self.open and self.closing is None

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
        host, port = self.dialled or self.identity[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def source(self) -> bytes | str:
        """The peer as one source of data: its peer id (two connections to one peer are
        one source), else its :attr:`label` (before the handshake)."""
        return self.identity[2] or self.label

    def __repr__(self) -> str:
        host, port, _ = self.identity
        return f"<{type(self).__name__} {host}:{port}>"

"""A torrent's uploads and choking: serving requested blocks, paced and back-pressured.

:class:`TorrentUploads` is the upload half of
:class:`~servent.net.torrent_session.TorrentSession` (a mixin like
:class:`~servent.net.torrent_connections.TorrentConnections`: the session is
its only user, and its methods run on the session's owner task or on the
per-peer uploader tasks the session owns).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from servent.errors import StorageError
from servent.net.limits import GlobalLimits
from servent.net.swarm_peer import SwarmPeer
from servent.proto.choker import Choker, PeerStats
from servent.proto.peerwire import Choke, Piece, RejectRequest, Request, Unchoke
from servent.proto.rate_meter import RateMeter
from servent.proto.ratelimit import TokenBucket, delay_for
from servent.storage import TorrentStorage

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo

__all__ = ["UPLOAD_BATCH", "TorrentUploads"]

#: The torrent session's logger: these lines belong to it (and keep their old name).
log = logging.getLogger("servent.net.torrent_session")

#: Blocks an uploader sends before it yields to the loop.
UPLOAD_BATCH = 16


class TorrentUploads:
    """Answering requests and choking peers of one torrent (mixed into TorrentSession)."""

    # State owned by TorrentSession.__init__ (declared for the type checker).
    metainfo: Metainfo
    storage: TorrentStorage
    loop: asyncio.AbstractEventLoop
    limits: GlobalLimits
    upload_bucket: TokenBucket
    choker: Choker
    uploaded: int
    up_meter: RateMeter

    @property
    def complete(self) -> bool:
        raise NotImplementedError

    @property
    def open_peers(self) -> list[SwarmPeer]:
        raise NotImplementedError

    def _on_request(self, peer: SwarmPeer, request: Request) -> None:
        index = request.index
        if request.begin + request.length > self.metainfo.piece_size(index):
            peer.session.close("request beyond the end of the piece")
            return
        if index not in self.storage.have:
            if peer.session.conn.fast:
                peer.session.send(RejectRequest(index, request.begin, request.length))
            else:
                peer.session.close("request for a piece we do not have")
            return
        peer.uploads.append(request)
        peer.upload_wakeup.set()

    async def _serve_uploads(self, peer: SwarmPeer) -> None:
        """Per-peer uploader: reads requested blocks and sends them, paced and back-pressured."""
        session = peer.session
        conn = session.conn
        buckets = tuple(b for b in (self.upload_bucket, self.limits.upload) if not b.unlimited)
        sent = 0
        while not session.is_closed:
            if not peer.uploads:
                peer.upload_wakeup.clear()
                await peer.upload_wakeup.wait()
                continue
            request = peer.uploads.popleft()
            if not conn.is_request_pending(request):
                continue
            if not session.writable:
                await session.wait_writable()
            if buckets:
                delay = delay_for(request.length, self.loop.time(), *buckets)
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing, not synchronisation
                now = self.loop.time()
                for bucket in buckets:
                    bucket.consume(request.length, now)
            try:
                # A cached piece is served as a view, without a copy or an await.
                block = self.storage.cached_block(
                    request.index, request.begin, request.length
                ) or await self.storage.read_block(request.index, request.begin, request.length)
            except StorageError as exc:
                log.warning("cannot read piece %d for upload: %s", request.index, exc)
                session.close("storage error")
                return
            if session.close_reason is not None:
                return
            conn.send(Piece(request.index, request.begin, block))
            peer.uploaded += request.length
            payload = self.metainfo.block_payload_size(request.index, request.begin, request.length)
            self.uploaded += payload
            self.up_meter.add(payload, self.loop.time())
            sent += 1
            if sent % UPLOAD_BATCH == 0:
                session.flush()
                await asyncio.sleep(0)  # let reads and other peers run
            else:
                session.schedule_flush()

    def _run_choker(self, now: float) -> None:
        peers = self.open_peers
        stats = [
            PeerStats(
                peer,
                peer.session.conn.peer_interested,
                download_rate=peer.down_rate,
                upload_rate=peer.up_rate,
                uploaded=peer.uploaded,
                connected_at=peer.connected_at,
                snubbed=peer.snubbed,
            )
            for peer in peers
        ]
        decision = self.choker.run(stats, now, seeding=self.complete)
        for peer in peers:
            conn = peer.session.conn
            unchoke = peer in decision.unchoke
            if unchoke and conn.am_choking:
                peer.session.send(Unchoke())
            elif not unchoke and not conn.am_choking:
                peer.uploads.clear()
                peer.session.send(Choke())

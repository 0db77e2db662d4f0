"""A torrent's uploader tasks: serving requested blocks, paced and back-pressured.

The swarm core decides *whom* we serve (choking) and which requests are
accepted (each peer's ``uploads`` queue); :class:`TorrentUploads` is the I/O
half: one task per open peer reads the blocks from storage and queues them on
the connection, within the torrent's and the node's upload rate limits and
the socket's write buffer.
"""

from __future__ import annotations

import asyncio
import logging

from servent.codec.metainfo import Metainfo
from servent.errors import StorageError
from servent.net.swarm_peer import SwarmPeer
from servent.proto.peerwire import Piece
from servent.proto.ratelimit import TokenBucket, delay_for
from servent.proto.swarm import SwarmCore
from servent.storage import TorrentStorage

__all__ = ["UPLOAD_BATCH", "TorrentUploads"]

#: The torrent session's logger: these lines belong to it (and keep their old name).
log = logging.getLogger("servent.net.torrent_session")

#: Blocks an uploader sends before it yields to the loop.
UPLOAD_BATCH = 16


class TorrentUploads:
    """Per-peer uploader tasks of one torrent (owned by its ``TorrentSession``)."""

    def __init__(
        self,
        core: SwarmCore,
        metainfo: Metainfo,
        storage: TorrentStorage,
        buckets: tuple[TokenBucket, ...],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.core = core
        self.metainfo = metainfo
        self.storage = storage
        self.loop = loop
        #: Upload limits (the torrent's, the node's); each uploader uses those limited
        #: when it starts.
        self.buckets = buckets

    async def serve(self, peer: SwarmPeer) -> None:
        """Reads requested blocks and sends them until the peer's session closes."""
        session = peer.session
        buckets = tuple(bucket for bucket in self.buckets if not bucket.unlimited)
        sent = 0
        while not session.is_closed:
            if not peer.uploads:
                peer.upload_wakeup.clear()
                await peer.upload_wakeup.wait()
                continue
            request = peer.uploads.popleft()
            if not session.conn.is_request_pending(request):
                continue
            if not session.writable:
                await session.wait_writable()
            if buckets:
                await self._pace(request.length, buckets)
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
            session.conn.send(Piece(request.index, request.begin, block))  # cues a write
            self._count(peer, request.index, request.begin, request.length)
            sent += 1
            if sent % UPLOAD_BATCH == 0:
                session.flush()
                await asyncio.sleep(0)  # let reads and other peers run

    async def _pace(self, length: int, buckets: tuple[TokenBucket, ...]) -> None:
        delay = delay_for(length, self.loop.time(), *buckets)
        if delay > 0:
            await asyncio.sleep(delay)  # pacing, not synchronisation
        now = self.loop.time()
        for bucket in buckets:
            bucket.consume(length, now)

    def _count(self, peer: SwarmPeer, index: int, begin: int, length: int) -> None:
        peer.uploaded += length
        payload = self.metainfo.block_payload_size(index, begin, length)
        core = self.core
        core.uploaded += payload
        core.up_meter.add(payload, self.loop.time())

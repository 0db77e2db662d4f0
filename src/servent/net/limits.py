"""Limits shared by every torrent of one engine: connections and global rate buckets.

Per-torrent limits live in each torrent session; these are the node-wide ones
a torrent must also respect (a connection counts against both).
"""

from __future__ import annotations

from servent.proto.ratelimit import TokenBucket


class GlobalLimits:
    """Node-wide connection budget and upload/download token buckets."""

    def __init__(
        self,
        *,
        max_connections: int | None,
        download_rate: float | None,
        upload_rate: float | None,
        now: float,
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.connections = 0
        self.download = TokenBucket(download_rate, now)
        self.upload = TokenBucket(upload_rate, now)

    def try_reserve(self) -> bool:
        """Take one connection slot if any is left."""
        if self.max_connections is not None and self.connections >= self.max_connections:
            return False
        self.connections += 1
        return True

    def release(self) -> None:
        self.connections = max(0, self.connections - 1)

    @property
    def room(self) -> int:
        """Connections that may still be opened (a large number when unlimited)."""
        if self.max_connections is None:
            return 1 << 30
        return max(0, self.max_connections - self.connections)

"""What a running torrent tells its owner as it happens (no polling).

The net layer knows nothing of node events; a :class:`SessionWatcher` given
to :meth:`~servent.net.engine.SwarmEngine.add_torrent` is told of the moments
that matter to front ends, and the node turns them into its typed events.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["IGNORE_SESSION", "SessionWatcher"]


class SessionWatcher(Protocol):
    def torrent_completed(self) -> None:
        """Every wanted piece is verified."""

    def torrent_stopped(self, error: BaseException | None) -> None:
        """The session ended: stopped, or (``error``) stopped by a fatal error."""

    def peer_banned(self, host: str, port: int, reason: str) -> None:
        """A peer was banned for sending bad data."""


class _IgnoreSession:
    def torrent_completed(self) -> None:
        return None

    def torrent_stopped(self, error: BaseException | None) -> None:
        return None

    def peer_banned(self, host: str, port: int, reason: str) -> None:
        return None


#: The watcher of a session nobody watches.
IGNORE_SESSION: SessionWatcher = _IgnoreSession()

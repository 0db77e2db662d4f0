"""When a version that downloads with no peers asks the DHT for its holders again.

A member asks for a version's holders once, as its download starts; the
holders it was given may leave (killed, restarted elsewhere) and others
announce later.  A download seen with no peers asks again after
``FIRST_REASK`` seconds, then at doubling intervals up to ``MAX_REASK``: a
bounded cost per share, never a busy loop.  Any peer resets the schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.node.status import AddResult

FIRST_REASK = 10.0
MAX_REASK = 60.0


class VersionHost(Protocol):
    """What adding a version needs of the node."""

    def peer_address(self) -> tuple[str, int] | None: ...

    async def add_torrent(
        self,
        source: bytes | str | Path,
        save_path: str | Path | None = None,
        *,
        peers: Sequence[tuple[str, int]] = (),
    ) -> AddResult: ...


class PeerReasks:
    """The re-ask schedule of each share's download."""

    def __init__(
        self,
        first: float = FIRST_REASK,
        most: float = MAX_REASK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._first = first
        self._most = most
        #: share id -> (the version's info-hash, when to ask next, the interval after that)
        self._due: dict[str, tuple[bytes, float, float]] = {}

    def due(self, share_id: str, info_hash: bytes, peers: int) -> bool:
        """Whether the download of ``info_hash``, with ``peers`` peers now, asks again."""
        now = self._clock()
        if peers > 0:
            self._due.pop(share_id, None)
            return False
        entry = self._due.get(share_id)
        if entry is None or entry[0] != info_hash:  # none seen yet for this version
            self._due[share_id] = (info_hash, now + self._first, self._first)
            return False
        _, ask_at, interval = entry
        if now < ask_at:
            return False
        interval = min(2 * interval, self._most)
        self._due[share_id] = (info_hash, now + interval, interval)
        return True


async def add_version(
    node: VersionHost, driver: DhtDriver, info_hash: bytes, save_path: Path
) -> str:
    """Add a version's torrent with the holders the DHT knows (ourselves aside), or give
    the running one those it lacks; its torrent ID."""
    own = node.peer_address()
    peers = [p for p in (await driver.get_peers(info_hash)).peers if p != own]
    magnet = f"magnet:?xt=urn:btih:{info_hash.hex()}"
    return (await node.add_torrent(magnet, save_path, peers=peers)).id

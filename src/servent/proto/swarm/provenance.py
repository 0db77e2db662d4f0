"""Who sent bad data: block provenance, parole and bans for one torrent.

A piece that fails its hash was assembled from blocks, each remembered with
the peer that sent it.  If one peer sent every block, it is guilty and banned
at once.  If several did, the culprit is not known yet, so:

* every contributor goes **on parole**: until it delivers a piece that
  verifies, it is only given whole pieces to fetch alone, so its next failure
  names it (the torrent session enforces this when it picks requests);
* the failed blocks' digests are kept (**smart ban**): when the piece later
  verifies, any contributor whose block differs from the good data is banned.

Peers are named by an *identity* ``(host, port, peer_id)``.  Bans cover the
whole IP address except on loopback, where many honest peers share 127.0.0.1
(tests, several local nodes), so there the endpoint and the peer id are
banned instead.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Mapping

#: Keeps its old name: these lines have always been the torrent's provenance log.
log = logging.getLogger("servent.net.provenance")

PeerIdentity = tuple[str, int, bytes]
#: Failed pieces whose block digests are kept for the smart ban.
MAX_REMEMBERED_PIECES = 256


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BanList:
    """Peers we refuse to talk to."""

    def __init__(self) -> None:
        self._hosts: set[str] = set()
        self._endpoints: set[tuple[str, int]] = set()
        self._peer_ids: set[bytes] = set()

    def ban(self, identity: PeerIdentity) -> None:
        host, port, peer_id = identity
        if _is_loopback(host):
            self._endpoints.add((host, port))
        else:
            self._hosts.add(host)
        if peer_id:
            self._peer_ids.add(peer_id)

    def is_banned(self, host: str, port: int, peer_id: bytes | None = None) -> bool:
        if host in self._hosts or (host, port) in self._endpoints:
            return True
        return peer_id is not None and peer_id in self._peer_ids

    def __len__(self) -> int:
        return len(self._hosts) + len(self._endpoints)


class Provenance:
    """Turns hash failures into bans (see the module docstring)."""

    def __init__(self) -> None:
        self.parole: set[PeerIdentity] = set()
        self._failed: dict[int, dict[int, tuple[PeerIdentity, bytes]]] = {}

    def on_parole(self, identity: PeerIdentity) -> bool:
        return identity in self.parole

    def piece_failed(
        self, index: int, data: bytes | bytearray, sources: Mapping[int, PeerIdentity]
    ) -> set[PeerIdentity]:
        """The piece failed verification; returns the peers to ban now."""
        contributors = set(sources.values())
        if len(contributors) == 1:
            return contributors
        view = memoryview(data)
        begins = sorted(sources)
        blocks: dict[int, tuple[PeerIdentity, bytes]] = {}
        for number, begin in enumerate(begins):
            end = begins[number + 1] if number + 1 < len(begins) else len(data)
            blocks[begin] = (sources[begin], hashlib.sha1(view[begin:end]).digest())
        # Keep the first failed copy of each block: enough to convict its sender later.
        previous = self._failed.setdefault(index, {})
        for begin, record in blocks.items():
            previous.setdefault(begin, record)
        while len(self._failed) > MAX_REMEMBERED_PIECES:
            del self._failed[next(iter(self._failed))]
        self.parole |= contributors
        log.info("piece %d failed; %d contributors on parole", index, len(contributors))
        return set()

    def piece_verified(
        self, index: int, data: bytes | bytearray, sources: Mapping[int, PeerIdentity]
    ) -> set[PeerIdentity]:
        """The piece verified; returns earlier senders of blocks that differ from it."""
        if self.parole:
            for identity in set(sources.values()):
                self.parole.discard(identity)  # it just helped deliver a good piece
        failed = self._failed.pop(index, None)
        if not failed:
            return set()
        view = memoryview(data)
        guilty: set[PeerIdentity] = set()
        begins = sorted(failed)
        for number, begin in enumerate(begins):
            end = begins[number + 1] if number + 1 < len(begins) else len(data)
            identity, digest = failed[begin]
            if hashlib.sha1(view[begin:end]).digest() != digest:
                guilty.add(identity)
        for identity in guilty:
            self.parole.discard(identity)
        return guilty

"""Collect a v2 torrent's piece layers from peers with BEP 52 hash requests.

A magnet gives the info dictionary (``ut_metadata``) but not the ``piece
layers`` of the ``.torrent`` file, without which pieces of files longer than
one piece cannot be verified.  :class:`PieceLayerCollector` asks for each such
file's whole piece layer (padded to a power of two, in runs of at most 512
hashes, no proofs) and checks the assembled layer against the file's
``pieces root`` from the verified info dictionary: a layer that does not hash
to the root is discarded and its senders are reported as bad.

Sans-IO: peers are opaque hashable keys, time is an argument.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from servent.codec.merkle import blocks_per_piece, next_power_of_two, root_from_piece_layer
from servent.codec.metainfo import Metainfo
from servent.proto.peerwire import Hashes, HashReject, HashRequest

__all__ = ["PieceLayerCollector"]

HASH_SIZE = 32
#: BEP 52: a request SHOULD NOT ask for more than 512 hashes.
MAX_RUN = 512
REQUEST_TIMEOUT = 20.0


@dataclass(slots=True)
class _FileLayer:
    root: bytes
    count: int  # pieces of the file = hashes wanted
    runs: dict[int, bytes] = field(default_factory=dict)  # index -> hashes received
    senders: dict[int, Hashable] = field(default_factory=dict)


class PieceLayerCollector:
    """Asks peers for the piece layers a v2 torrent needs and verifies them."""

    def __init__(self, meta: Metainfo) -> None:
        self.piece_length = meta.piece_length
        self.base_layer = blocks_per_piece(meta.piece_length).bit_length() - 1
        self._files: dict[bytes, _FileLayer] = {}
        for entry in meta.files:
            root = entry.pieces_root
            if root is None or entry.pad or entry.length <= meta.piece_length:
                continue  # a one-piece file's root is its piece hash
            count = -(-entry.length // meta.piece_length)
            self._files.setdefault(root, _FileLayer(root, count))
        self._in_flight: dict[HashRequest, tuple[Hashable, float]] = {}
        self._rejected: dict[Hashable, set[HashRequest]] = {}
        self.layers: dict[bytes, bytes] = {}
        self.bad_peers: set[Hashable] = set()

    @property
    def done(self) -> bool:
        return len(self.layers) == len(self._files)

    def _runs(self, layer: _FileLayer) -> list[HashRequest]:
        width = next_power_of_two(layer.count)
        length = max(2, min(width, MAX_RUN))
        return [
            HashRequest(layer.root, self.base_layer, index, length, 0)
            for index in range(0, layer.count, length)
            if index not in layer.runs
        ]

    def next_requests(self, peer: Hashable, now: float, limit: int = 8) -> list[HashRequest]:
        """Requests to send to ``peer`` now (none once done or for a bad peer)."""
        if peer in self.bad_peers:
            return []
        rejected = self._rejected.get(peer, set())
        out: list[HashRequest] = []
        for root, layer in self._files.items():
            if root in self.layers:
                continue
            for request in self._runs(layer):
                if len(out) >= limit:
                    return out
                flight = self._in_flight.get(request)
                if request in rejected or (flight and now - flight[1] < REQUEST_TIMEOUT):
                    continue
                self._in_flight[request] = (peer, now)
                out.append(request)
        return out

    def remove_peer(self, peer: Hashable) -> None:
        for request in [r for r, (who, _) in self._in_flight.items() if who == peer]:
            del self._in_flight[request]

    def receive(self, peer: Hashable, answer: Hashes | HashReject) -> None:
        """Handle an answer (the connection already checked that we asked for it)."""
        request = HashRequest(
            answer.pieces_root, answer.base_layer, answer.index, answer.length,
            answer.proof_layers,
        )  # fmt: skip
        flight = self._in_flight.pop(request, None)
        layer = self._files.get(answer.pieces_root)
        if layer is None or answer.pieces_root in self.layers:
            return
        if isinstance(answer, HashReject):
            self._rejected.setdefault(peer, set()).add(request)
            return
        if flight is None or flight[0] != peer or len(answer.hashes) < HASH_SIZE * answer.length:
            return
        layer.runs[answer.index] = answer.hashes[: HASH_SIZE * answer.length]
        layer.senders[answer.index] = peer
        if all(i in layer.runs for i in range(0, layer.count, answer.length)):
            self._check(layer)

    def _check(self, layer: _FileLayer) -> None:
        joined = b"".join(layer.runs[i] for i in sorted(layer.runs))[: HASH_SIZE * layer.count]
        hashes = [joined[i : i + HASH_SIZE] for i in range(0, len(joined), HASH_SIZE)]
        if len(hashes) == layer.count and root_from_piece_layer(hashes, self.piece_length) == (
            layer.root
        ):
            self.layers[layer.root] = joined
            return
        self.bad_peers |= set(layer.senders.values())
        layer.runs.clear()
        layer.senders.clear()

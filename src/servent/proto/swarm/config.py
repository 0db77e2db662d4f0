"""What a swarm core is built from: the torrent's piece sizes and the knobs of its parts.

Apart from :mod:`~servent.proto.swarm.core` so that the core module holds
the decisions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from servent.proto.pipeline import PipelineConfig

__all__ = ["PieceLayout", "SwarmConfig"]


class PieceLayout(Protocol):
    """Sizes of a torrent's pieces (a :class:`~servent.codec.metainfo.Metainfo`)."""

    @property
    def num_pieces(self) -> int: ...

    @property
    def piece_length(self) -> int: ...

    def piece_size(self, index: int) -> int: ...

    def piece_payload_size(self, index: int) -> int: ...

    def block_payload_size(self, index: int, begin: int, length: int) -> int: ...


@dataclass(frozen=True, slots=True)
class SwarmConfig:
    """The knobs of the core's parts (defaults: the picker's and the choker's own)."""

    upload_slots: int | None = 4
    optimistic_slots: int = 1
    #: Seconds between two regular choking rounds.
    choke_interval: float = 10.0
    #: Peers asked for one block at once in endgame.
    endgame_max_requesters: int = 3
    sequential: bool = False
    #: Received bytes waiting for verification before reading from peers pauses.
    max_unverified_bytes: int = 64 * 1024 * 1024
    pipeline: PipelineConfig | None = None

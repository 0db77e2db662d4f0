"""What the swarm core asks its shell to do (see decision 0024).

Messages to peers are not actions: the core writes them into each peer's
sans-IO :class:`~servent.proto.peerwire.PeerConnection`, whose output hook
tells the shell to write.  What the core cannot do itself (verify and store
a piece, close a connection, record a ban, tell the owner the torrent is
complete, pause reading while the disk is behind) comes out as one of the
frozen values below, in :attr:`SwarmCore.actions`, in the order decided.
None of them is made per block.
"""

from __future__ import annotations

from dataclasses import dataclass

from servent.proto.swarm.peer import PeerState
from servent.proto.swarm.provenance import PeerIdentity

__all__ = [
    "Action",
    "ClosePeer",
    "Completed",
    "HoldOff",
    "PeerBanned",
    "Reopened",
    "VerifyPiece",
]


@dataclass(frozen=True, slots=True)
class VerifyPiece:
    """Hash (and, if good, store) a complete piece; answer with ``SwarmCore.piece_checked``."""

    index: int
    data: bytearray
    sources: dict[int, PeerIdentity]


@dataclass(frozen=True, slots=True)
class ClosePeer:
    """End the connection (``abort``: at once, dropping queued output)."""

    peer: PeerState
    reason: str
    abort: bool = False


@dataclass(frozen=True, slots=True)
class PeerBanned:
    """The core banned ``identity`` (its connections are closed by ``ClosePeer`` actions)."""

    identity: PeerIdentity
    reason: str


@dataclass(frozen=True, slots=True)
class HoldOff:
    """Pause (or resume) reading from every peer: verification is behind."""

    paused: bool


@dataclass(frozen=True, slots=True)
class Completed:
    """Every wanted piece is verified."""


@dataclass(frozen=True, slots=True)
class Reopened:
    """A complete torrent wants more pieces again (its file priorities changed)."""


Action = VerifyPiece | ClosePeer | PeerBanned | HoldOff | Completed | Reopened

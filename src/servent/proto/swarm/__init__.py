"""The swarm core: one torrent's download and upload decisions, sans-IO (decision 0024)."""

from servent.proto.swarm.actions import (
    Action,
    ClosePeer,
    Completed,
    HoldOff,
    PeerBanned,
    Reopened,
    VerifyPiece,
)
from servent.proto.swarm.core import PieceLayout, SwarmConfig, SwarmCore
from servent.proto.swarm.peer import Address, PeerState
from servent.proto.swarm.provenance import BanList, PeerIdentity, Provenance

__all__ = [
    "Action",
    "Address",
    "BanList",
    "ClosePeer",
    "Completed",
    "HoldOff",
    "PeerBanned",
    "PeerIdentity",
    "PeerState",
    "PieceLayout",
    "Provenance",
    "Reopened",
    "SwarmConfig",
    "SwarmCore",
    "VerifyPiece",
]

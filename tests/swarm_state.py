"""A swarm core's state as plain values, and open connections for its peers, for tests
that drive two cores alike and compare them."""

from __future__ import annotations

from peerwire_pair import exchange_handshakes
from servent.proto.peerwire import ConnectionState, PeerConnection
from servent.proto.swarm import PeerState, SwarmCore, VerifyPiece


def open_connection(peer_id: bytes, num_pieces: int) -> PeerConnection:
    """Our end of a connection whose handshakes are done (the other end is dropped)."""
    ours = PeerConnection(
        peer_id=peer_id, info_hash=bytes(20), initiator=True, num_pieces=num_pieces, now=0.0
    )
    theirs = PeerConnection(
        peer_id=b"S" * 20, info_hash=bytes(20), initiator=False, num_pieces=num_pieces, now=0.0
    )
    exchange_handshakes(ours, theirs)
    assert ours.state is ConnectionState.OPEN
    return ours


def core_snapshot(core: SwarmCore, peers: list[PeerState]) -> tuple[object, ...]:
    """The picker, piece buffers, actions and counters, with peers as their numbers."""
    ids = {peer: i for i, peer in enumerate(peers)}
    partials = {
        index: (
            bytes(p.state), p.free, p.received,
            {b: [ids[r] for r in (rs if type(rs) is list else [rs])]
             for b, rs in p.requesters.items()},
            {b: ids[s] for b, s in p.sources.items()},
        )
        for index, p in core.picker._partial.items()
    }  # fmt: skip
    mine = {ids[p]: sorted(keys) for p, keys in core.picker._peer_blocks.items()}
    buffers = {index: bytes(b) for index, b in core._buffers.items()}
    actions = [
        (type(a).__name__, getattr(a, "index", None), bytes(getattr(a, "data", b"")))
        for a in core.actions
    ]
    counters = (core.downloaded, core.wasted, core.down_meter.total)
    return partials, mine, buffers, actions, counters, core.picker.have.to_bytes()


def verify_pieces(core: SwarmCore, now: float) -> None:
    """Carry out the core's actions as a shell whose every piece passes its hash."""
    actions, core.actions = core.actions, []
    for action in actions:
        if isinstance(action, VerifyPiece):
            core.have.set(action.index)
            core.piece_checked(action.index, action.data, action.sources, True, now)

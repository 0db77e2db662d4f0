"""Two sans-IO peer-wire connections brought past their handshakes (and an unchoke), for tests."""

from __future__ import annotations

from servent.proto.peerwire import ConnectionConfig, HandshakeReceived, PeerConnection, Unchoke


def exchange_handshakes(ours: PeerConnection, theirs: PeerConnection) -> PeerConnection:
    """Each side reads the other's handshake (and whatever followed it); returns ``ours``.

    The events both sides raised are drained unread: the callers test what comes next.
    """
    theirs.receive_data(ours.data_to_send(), 0.0)
    while theirs.next_event() is not None:
        pass
    ours.receive_data(theirs.data_to_send(), 0.0)
    while ours.next_event() is not None:
        pass
    return ours


def open_unchoked(
    num_pieces: int, *, now: float = 0.0, config: ConnectionConfig | None = None
) -> tuple[PeerConnection, PeerConnection]:
    """A leecher (``config``, dialling) and its seeder past their handshakes, unchoked."""
    info_hash = b"\x11" * 20
    leecher = PeerConnection(
        peer_id=b"L" * 20, info_hash=info_hash, initiator=True, now=now,
        num_pieces=num_pieces, config=config,
    )  # fmt: skip
    seeder = PeerConnection(
        peer_id=b"S" * 20, info_hash=info_hash, initiator=False, now=now, num_pieces=num_pieces
    )
    seeder.receive_data(leecher.data_to_send(), now)
    assert isinstance(seeder.next_event(), HandshakeReceived)
    leecher.receive_data(seeder.data_to_send(), now)
    assert isinstance(leecher.next_event(), HandshakeReceived)
    seeder.send(Unchoke())
    leecher.receive_data(seeder.data_to_send(), now)
    assert leecher.next_event() == Unchoke()
    return leecher, seeder

"""Two sans-IO peer-wire connections brought past their handshakes, for tests."""

from __future__ import annotations

from servent.proto.peerwire import PeerConnection


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

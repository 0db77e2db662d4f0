"""A live session's rules without sockets: the broadcaster's 3 copies, duplicate streams,
the end piece reaching a viewer that lost its neighbours."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.net.live_session import BROADCASTER_COPIES, LiveSession, Neighbour
from servent.proto.live import live_topic
from servent.proto.live_wire import (
    Busy,
    Have,
    LiveMessage,
    Peers,
    PieceMessage,
    Want,
    decode_live_message,
    encode_live_message,
)


class RecordingStream:
    """Stands in for a node channel stream: keeps what is sent, remembers a reset."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.closed_for_sending = False
        self.was_reset = False

    def send(self, data: bytes) -> None:
        self.sent.append(decode_live_message(data))

    def reset(self, code: int = 0, reason: str = "") -> None:
        self.was_reset = self.closed_for_sending = True


def session(node_key: bytes = b"\x05" * 32) -> LiveSession:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    return LiveSession(live_topic(public), public, key=key, clock=lambda: 0.0, node_key=node_key)


def neighbour(key: bytes, *, outgoing: bool) -> Neighbour:
    return Neighbour(RecordingStream(), None, outgoing, key)  # type: ignore[arg-type]


def viewer_of(broadcast: LiveSession) -> LiveSession:
    return LiveSession(broadcast.topic, broadcast.public_key, clock=lambda: 0.0)


def join(viewer: LiveSession, key: bytes) -> Neighbour:
    """What ``LiveSession.run`` does when a stream starts (the hellos exchanged)."""
    joined = neighbour(key, outgoing=True)
    assert viewer._admit(joined)
    viewer.neighbours[joined.stream] = joined
    viewer.scheduler.add_peer(joined.stream)
    return joined


def deliver(viewer: LiveSession, sender: Neighbour, messages: list[LiveMessage]) -> None:
    """Messages as they arrive off the wire (encoded and parsed)."""
    for message in messages:
        viewer._handle(sender, decode_live_message(encode_live_message(message)))


def test_the_broadcaster_sends_a_piece_three_times_then_answers_busy() -> None:
    broadcast = session()
    index = broadcast.publish(b"frame")
    viewers = [neighbour(bytes([i]) * 32, outgoing=False) for i in range(5)]
    for viewer in viewers:
        broadcast._handle(viewer, Want(index))
    answers = [viewer.stream.sent[-1] for viewer in viewers]  # type: ignore[attr-defined]
    assert [type(a) for a in answers] == [PieceMessage] * BROADCASTER_COPIES + [Busy] * 2
    assert sum(v.bytes_up for v in viewers) == BROADCASTER_COPIES * len(b"frame")
    broadcast._handle(viewers[0], Want(99))  # not held: busy, never an error
    assert viewers[0].stream.sent[-1] == Busy(99)  # type: ignore[attr-defined]


def test_the_empty_end_piece_is_served_to_every_viewer_that_asks() -> None:
    broadcast = session()
    broadcast.publish(b"frame")
    end = broadcast.publish(b"")
    viewers = [neighbour(bytes([i]) * 32, outgoing=False) for i in range(5)]
    for viewer in viewers:
        broadcast._handle(viewer, Want(end))
    answers = [viewer.stream.sent[-1] for viewer in viewers]  # type: ignore[attr-defined]
    assert [type(a) for a in answers] == [PieceMessage] * 5
    assert all(a.piece.data == b"" and a.piece.index == end for a in answers)


def test_of_two_streams_between_the_same_nodes_the_smaller_keys_stays() -> None:
    small, large = b"\x01" * 32, b"\x09" * 32
    # We are the larger key: our own outgoing stream gives way to the peer's.
    ours = session(node_key=large)
    dialled = neighbour(small, outgoing=True)
    assert ours._admit(dialled)
    ours.neighbours[dialled.stream] = dialled
    accepted = neighbour(small, outgoing=False)
    assert ours._admit(accepted)
    assert dialled.stream.was_reset and dialled.stream not in ours.neighbours  # type: ignore[attr-defined]
    # The smaller end decides alike: its outgoing stream stays, the incoming one goes.
    theirs = session(node_key=small)
    own = neighbour(large, outgoing=True)
    theirs.neighbours[own.stream] = own
    assert not theirs._admit(neighbour(large, outgoing=False))
    assert not own.stream.was_reset  # type: ignore[attr-defined]


def test_a_viewer_whose_neighbours_dropped_before_the_end_gets_it_when_it_dials_again() -> None:
    """Seen under load: the broadcaster daemon's gossip mesh closed the channels of its
    direct viewers; every data piece had arrived, the end piece then reached nobody
    because an ended node refused new neighbours, and each viewer waited for ever."""
    broadcast = session()
    viewer = viewer_of(broadcast)
    link = join(viewer, b"\x07" * 32)
    for index in (broadcast.publish(b"frame 0"), broadcast.publish(b"frame 1")):
        deliver(viewer, link, [Have(index), PieceMessage(broadcast.pieces[index])])
    assert sorted(viewer.pieces) == [0, 1] and not viewer.ended
    assert broadcast.refusal() == [Peers(())]  # full before the end: addresses only
    viewer._forget(link)  # the channel was closed under the stream
    end = broadcast.publish(b"")  # announced to no one: the broadcaster has no neighbour
    assert viewer.scheduler.next_requests(1.0, busy=viewer._busy) == []  # nobody to ask
    # The viewer dials the broadcaster again; it is over (or full): hello, peers, the end.
    again = join(viewer, b"\x07" * 32)
    deliver(viewer, again, broadcast.refusal())
    assert viewer.ended and viewer.end_index == end and viewer.pieces[end].data == b""
    # ... and a viewer that has the end hands it on the same way.
    late = viewer_of(broadcast)
    deliver(late, join(late, b"\x08" * 32), viewer.refusal())
    assert late.ended and late.end_index == end


def test_an_end_piece_that_overtook_a_data_piece_does_not_end_the_search_for_it() -> None:
    broadcast = session()
    viewer = viewer_of(broadcast)
    link = join(viewer, b"\x07" * 32)
    first, second = broadcast.publish(b"frame 0"), broadcast.publish(b"frame 1")
    deliver(viewer, link, [Have(first), PieceMessage(broadcast.pieces[first]), Have(second)])
    viewer._forget(link)
    broadcast.publish(b"")
    deliver(viewer, join(viewer, b"\x07" * 32), broadcast.refusal())  # the end, unasked
    assert viewer.ended and second not in viewer.pieces
    assert viewer.scheduler.lacks()  # the viewer keeps dialling for the piece it lacks
    deliver(viewer, join(viewer, b"\x09" * 32), [PieceMessage(broadcast.pieces[second])])
    assert not viewer.scheduler.lacks()

"""A live session's rules without sockets: the broadcaster's 3 copies, duplicate streams."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.net.live_session import BROADCASTER_COPIES, LiveSession, Neighbour
from servent.proto.live import live_topic
from servent.proto.live_wire import Busy, PieceMessage, Want, decode_live_message


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

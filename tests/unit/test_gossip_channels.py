"""Channel subscriptions, peer exchange and author keys in the gossip router and frames."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.bencode import encode
from servent.proto.gossip import (
    Deliver,
    Disconnect,
    Exchanged,
    GossipConfig,
    GossipError,
    GossipMessage,
    GossipRouter,
    IHave,
    Publish,
    Send,
)
from servent.proto.gossip.frames import (
    MAX_EXCHANGED,
    PeerExchange,
    Subscribe,
    decode_frame,
    encode_frame,
)

NOW = 1_800_000_000.0
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
AUTHOR = KEY.public_key().public_bytes_raw()


def signed(channel: bytes, sequence: int = 1) -> GossipMessage:
    unsigned = GossipMessage(AUTHOR, sequence, int(NOW), channel, b"hello")
    return GossipMessage(
        AUTHOR, sequence, int(NOW), channel, b"hello", KEY.sign(unsigned.signed_bytes())
    )


def router(*neighbours: str) -> GossipRouter:
    node = GossipRouter(rng=random.Random(1), now=NOW, verify=lambda _: True)
    for peer in neighbours:
        node.add_neighbour(peer, NOW)
    node.actions()
    return node


def publishes(actions: list[object]) -> set[object]:
    return {a.peer for a in actions if isinstance(a, Send) and isinstance(a.frame, Publish)}


def test_px_and_sub_frames_round_trip() -> None:
    entry = AUTHOR + bytes([127, 0, 0, 1, 0x1A, 0xE1])
    for frame in (PeerExchange(6881, (entry,)), Subscribe((b"", b"club"))):
        assert decode_frame(encode_frame(frame)) == frame


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({b"y": b"px", b"l": 70000, b"p": []}, "port"),
        ({b"y": b"px", b"l": 1, b"p": [AUTHOR + b"\x00" * 5]}, "32-byte key"),
        ({b"y": b"px", b"l": 1, b"p": [AUTHOR + b"\x00" * 6] * (MAX_EXCHANGED + 1)}, "at most"),
        ({b"y": b"px", b"l": 1, b"p": [bytes(32) + b"\x00" * 6]}, "low-order"),
        ({b"y": b"sub", b"c": [b"x" * 65]}, "at most 64"),
        ({b"y": b"sub", b"c": b"club"}, "list"),
    ],
)
def test_hostile_px_and_sub_frames_are_refused(value: dict[bytes, object], problem: str) -> None:
    with pytest.raises(GossipError, match=problem):
        decode_frame(encode(value))  # type: ignore[arg-type]


def test_a_node_drops_channels_it_does_not_keep_and_relays_those_it_does() -> None:
    node = router("a", "b", "c")
    node.receive("a", Publish(signed(b"club")), NOW)
    actions = node.actions()
    assert not [a for a in actions if isinstance(a, Deliver)] and not publishes(actions)
    assert node.statistics.unsubscribed == 1

    node = router("a", "b", "c")
    node.subscribe(b"club")
    told = {a.peer for a in node.actions() if isinstance(a, Send)}
    assert told == {"a", "b", "c"}  # every neighbour hears the new subscription
    node.receive("b", Subscribe((b"club",)), NOW)
    node.receive("a", Publish(signed(b"club")), NOW)
    actions = node.actions()
    assert [a.message.channel for a in actions if isinstance(a, Deliver)] == [b"club"]
    assert publishes(actions) == {"b"}  # c does not keep the channel


def test_own_broadcast_on_a_channel_subscribes_and_reaches_only_its_keepers() -> None:
    node = router("a", "b")
    node.receive("a", Subscribe((b"club",)), NOW)
    node.publish(signed(b"club"), NOW)
    assert b"club" in node.subscriptions
    assert publishes(node.actions()) == {"a"}
    assert node.unsubscribe(b"club") and not node.unsubscribe(b"")


def test_a_new_neighbour_is_offered_the_recent_messages() -> None:
    node = router("a")
    node.receive("a", Publish(signed(b"")), NOW)
    node.actions()
    node.add_neighbour("late", NOW)
    offers = [
        a for a in node.actions() if isinstance(a.frame if isinstance(a, Send) else None, IHave)
    ]
    assert [a.peer for a in offers if isinstance(a, Send)] == ["late"]


def test_a_peer_exchange_is_handed_to_the_driver() -> None:
    node = router("a")
    exchange = PeerExchange(6881, ())
    node.receive("a", exchange, NOW)
    assert node.actions() == [Exchanged("a", exchange)]


def test_a_message_from_a_low_order_author_is_invalid_and_penalised() -> None:
    node = GossipRouter(
        rng=random.Random(1), now=NOW, verify=lambda _: True, config=GossipConfig(penalty_limit=2)
    )
    node.add_neighbour("a", NOW)
    node.actions()
    zero = GossipMessage(bytes(32), 1, int(NOW), b"", b"x", bytes(64))
    with pytest.raises(GossipError, match="low-order"):
        GossipMessage.decode(zero.encode())
    for _ in range(2):
        node.receive_bytes("a", encode({b"y": b"pub", b"m": zero.to_dict()}), NOW)
    actions = node.actions()
    assert not [a for a in actions if isinstance(a, Deliver)]
    assert [a for a in actions if isinstance(a, Disconnect)] == [
        Disconnect("a", "malformed gossip frame")
    ]

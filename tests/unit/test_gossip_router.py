"""The gossip mesh router: forwarding, de-duplication, repair, limits, penalties."""

from __future__ import annotations

import random

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from servent.proto.gossip import (
    Deliver,
    Disconnect,
    GossipConfig,
    GossipMessage,
    GossipRouter,
    Graft,
    IHave,
    IWant,
    Prune,
    Publish,
    Send,
    message_id,
)

NOW = 1_800_000_000.0


def sign(key: Ed25519PrivateKey, sequence: int, payload: bytes, time: float = NOW) -> GossipMessage:
    author = key.public_key().public_bytes_raw()
    unsigned = GossipMessage(author, sequence, int(time), b"", payload)
    return GossipMessage(
        author, sequence, int(time), b"", payload, key.sign(unsigned.signed_bytes())
    )


def verify(message: GossipMessage) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(message.author).verify(
            message.signature, message.signed_bytes()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def router(config: GossipConfig | None = None) -> GossipRouter:
    return GossipRouter(rng=random.Random(3), now=NOW, verify=verify, config=config)


def sends(actions: list[object]) -> list[Send]:
    return [action for action in actions if isinstance(action, Send)]


def test_new_neighbours_are_grafted_until_the_mesh_has_its_degree() -> None:
    node = router(GossipConfig(degree=3))
    for peer in range(5):
        node.add_neighbour(peer, NOW)
    grafts = [a.peer for a in sends(node.actions()) if isinstance(a.frame, Graft)]
    assert grafts == [0, 1, 2]
    assert node.mesh == {0, 1, 2}


def test_a_valid_message_is_delivered_once_and_forwarded_to_the_mesh_except_its_source() -> None:
    node = router(GossipConfig(degree=3))
    for peer in range(5):
        node.add_neighbour(peer, NOW)
    node.actions()
    message = sign(Ed25519PrivateKey.generate(), 1, b"hello")
    node.receive(0, Publish(message), NOW)
    actions = node.actions()
    delivered = [a for a in actions if isinstance(a, Deliver)]
    assert [d.message.payload for d in delivered] == [b"hello"]
    assert delivered[0].id == message_id(message) and delivered[0].source == 0
    assert sorted(a.peer for a in sends(actions)) == [1, 2]  # mesh {0,1,2} minus the source
    node.receive(1, Publish(message), NOW)
    assert node.actions() == []
    assert node.statistics.duplicates == 1


def test_own_messages_are_flooded_to_every_neighbour() -> None:
    node = router(GossipConfig(degree=2))
    for peer in range(6):
        node.add_neighbour(peer, NOW)
    node.actions()
    node.publish(sign(Ed25519PrivateKey.generate(), 1, b"mine"), NOW)
    assert sorted(a.peer for a in sends(node.actions())) == list(range(6))


def test_a_forged_signature_is_dropped_and_penalised_until_disconnect() -> None:
    node = router(GossipConfig(penalty_limit=3))
    node.add_neighbour("liar", NOW)
    node.actions()
    real = sign(Ed25519PrivateKey.generate(), 1, b"x")
    for sequence in range(3):
        forged = GossipMessage(real.author, sequence, real.time, b"", b"forged", real.signature)
        node.receive("liar", Publish(forged), NOW)
    actions = node.actions()
    assert not any(isinstance(a, Deliver) for a in actions)
    assert Disconnect("liar", "bad signature") in actions
    assert "liar" not in node.neighbours and node.statistics.invalid == 3


def test_malformed_bytes_count_against_the_sender() -> None:
    node = router(GossipConfig(penalty_limit=2))
    node.add_neighbour("junk", NOW)
    node.receive_bytes("junk", b"d1:y3:pube", NOW)
    node.receive_bytes("junk", b"\xff" * 100, NOW)
    assert any(isinstance(a, Disconnect) for a in node.actions())


def test_one_author_cannot_flood_past_its_rate() -> None:
    node = router(GossipConfig(author_rate=1.0, author_burst=5.0))
    node.add_neighbour("p", NOW)
    node.actions()
    key = Ed25519PrivateKey.generate()
    for sequence in range(50):
        node.receive("p", Publish(sign(key, sequence, b"spam %d" % sequence)), NOW)
    assert sum(isinstance(a, Deliver) for a in node.actions()) == 5
    assert node.statistics.rate_limited == 45
    # Ten seconds later the bucket has refilled for a few more.
    later = NOW + 10
    node.receive("p", Publish(sign(key, 99, b"later", later)), later)
    assert sum(isinstance(a, Deliver) for a in node.actions()) == 1


def test_blocked_authors_are_neither_delivered_nor_forwarded() -> None:
    node = router()
    node.add_neighbour("a", NOW)
    node.add_neighbour("b", NOW)
    node.actions()
    key = Ed25519PrivateKey.generate()
    node.blocked.add(key.public_key().public_bytes_raw())
    node.receive("a", Publish(sign(key, 1, b"unwanted")), NOW)
    assert node.actions() == []


def test_stale_or_future_messages_are_dropped_without_penalty() -> None:
    node = router(GossipConfig(penalty_limit=1))
    node.add_neighbour("p", NOW)
    node.actions()
    key = Ed25519PrivateKey.generate()
    node.receive("p", Publish(sign(key, 1, b"old", NOW - 3600)), NOW)
    node.receive("p", Publish(sign(key, 2, b"future", NOW + 3600)), NOW)
    assert node.actions() == [] and node.statistics.untimely == 2


def test_ihave_iwant_repairs_a_message_a_node_missed() -> None:
    config = GossipConfig(degree=1, degree_low=1, lazy_degree=4)
    a, b = router(config), router(config)
    a.add_neighbour("mesh-peer", NOW)
    a.add_neighbour("b", NOW)  # outside a's mesh (degree 1)
    b.add_neighbour("a", NOW)
    a.actions(), b.actions()
    message = sign(Ed25519PrivateKey.generate(), 1, b"repair me")
    a.receive("mesh-peer", Publish(message), NOW)
    assert all(s.peer != "b" for s in sends(a.actions()))  # not forwarded outside the mesh
    a.handle_timer(NOW + 1)
    ihave = [s.frame for s in sends(a.actions()) if s.peer == "b"]
    assert ihave == [IHave((message_id(message),))]
    b.receive("a", ihave[0], NOW + 1)
    iwant = sends(b.actions())
    assert iwant == [Send("a", IWant((message_id(message),)))]
    a.receive("b", iwant[0].frame, NOW + 1)
    answer = sends(a.actions())
    assert answer == [Send("b", Publish(message))]
    b.receive("a", answer[0].frame, NOW + 1)
    assert [x.message for x in b.actions() if isinstance(x, Deliver)] == [message]


def test_iwant_answers_are_bounded_per_neighbour_per_heartbeat() -> None:
    node = router(GossipConfig(iwant_budget=3, author_burst=100))
    node.add_neighbour("src", NOW)
    node.add_neighbour("greedy", NOW)
    node.actions()
    key = Ed25519PrivateKey.generate()
    ids = []
    for sequence in range(6):
        message = sign(key, sequence, b"m%d" % sequence)
        node.receive("src", Publish(message), NOW)
        ids.append(message_id(message))
    node.actions()
    node.receive("greedy", IWant(tuple(ids)), NOW)
    node.receive("greedy", IWant(tuple(ids)), NOW)
    assert len(sends(node.actions())) == 3


def test_a_short_mesh_is_topped_up_at_the_heartbeat() -> None:
    node = router(GossipConfig(degree=3, degree_low=2, degree_high=4))
    for peer in range(8):
        node.add_neighbour(peer, NOW)
    node.remove_neighbour(0)
    node.remove_neighbour(1)
    node.actions()
    node.handle_timer(NOW + 1)
    grafts = [s.peer for s in sends(node.actions()) if isinstance(s.frame, Graft)]
    assert len(node.mesh) == 3 and len(grafts) == 2 and set(grafts) <= node.mesh


def test_a_graft_beyond_the_high_mark_is_answered_with_prune() -> None:
    node = router(GossipConfig(degree=2, degree_low=1, degree_high=2))
    for peer in range(3):
        node.add_neighbour(peer, NOW)
        node.receive(peer, Graft(), NOW)
    assert Send(2, Prune()) in node.actions() and node.mesh == {0, 1}


def test_seen_ids_expire_after_their_ttl() -> None:
    node = router(GossipConfig(seen_ttl=5.0))
    node.add_neighbour("p", NOW)
    node.actions()
    message = sign(Ed25519PrivateKey.generate(), 1, b"x")
    node.receive("p", Publish(message), NOW)
    node.handle_timer(NOW + 6)
    node.actions()
    # After the TTL the message is too old to be told from a replay: dropped, not delivered.
    node.receive("p", Publish(message), NOW + 6)
    assert node.actions() == [] and node.statistics.untimely == 1


def test_frames_from_strangers_are_ignored() -> None:
    node = router()
    node.receive("stranger", Publish(sign(Ed25519PrivateKey.generate(), 1, b"x")), NOW)
    assert node.actions() == []


@pytest.mark.parametrize("payload_size", [0, 65_536])
def test_message_bounds_accept_the_limits(payload_size: int) -> None:
    sign(Ed25519PrivateKey.generate(), 1, bytes(payload_size)).check_bounds()

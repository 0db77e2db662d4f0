"""More admins, and invitations redeemed at another admin while the issuer is offline
(``docs/networks.md`` sections 4 and 4.1), between in-process nodes on loopback."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from network_nodes import address, has_epoch, running_node, running_nodes, wait_for
from servent.errors import NetworkError
from servent.node.network_wire import ask
from servent.node.node import Node
from servent.proto.network import Hello, Join, Welcome, membership_proof, parse_invitation

pytestmark = pytest.mark.e2e


def is_admin(node: Node, network: str, member: Node) -> bool:
    return node.networks.by_name(network).is_admin(member.identity.public_key)


def uses_left(node: Node, network: str, token: str) -> int | None:
    record = node.networks.by_name(network).invite(parse_invitation(token).invite_id)
    return None if record is None else record.uses_left


async def test_a_promoted_admin_invites_and_revokes_and_a_demoted_one_cannot(
    tmp_path: Path,
) -> None:
    names = ("ann", "bob", "carol", "dave", "eve")
    async with running_nodes(tmp_path, *names) as (ann, bob, carol, dave, eve):
        ann.networks.create("crew")
        await bob.networks.join(ann.networks.invite("crew")["invite"])
        with pytest.raises(NetworkError, match="only an admin"):
            await bob.networks.set_admin("crew", carol.identity_info()["id"], True)
        promoted = await ann.networks.set_admin("crew", bob.identity_info()["id"], True)
        assert promoted["sequence"] == ann.networks.by_name("crew").sequence
        await wait_for(lambda: is_admin(bob, "crew", bob), "bob holds the roster naming him")
        assert bob.networks.describe(bob.networks.by_name("crew"))["admin"]

        # bob invites carol and dave; carol joins through him, then he revokes dave
        await carol.networks.join(bob.networks.invite("crew")["invite"])
        await dave.networks.join(bob.networks.invite("crew")["invite"])
        await wait_for(lambda: ann.networks.by_name("crew").is_member(dave.identity.public_key),
                       "ann learns of bob's admissions")  # fmt: skip
        revoked = await bob.networks.revoke("crew", dave.identity_info()["id"])
        assert revoked["epoch"] == 2
        for node in (ann, carol):
            await wait_for(lambda n=node: has_epoch(n, "crew", 2), "the new epoch reaches all")
        assert dave.identity.public_key in ann.networks.by_name("crew").revoked

        # ann demotes bob: he can neither invite nor revoke nor promote any more; what he
        # issued before still admits through ann (the roster holds its accounting)
        issued = bob.networks.invite("crew")["invite"]
        assert [k for k, _ in parse_invitation(issued).others] == [ann.identity.public_key]
        await wait_for(lambda: uses_left(ann, "crew", issued) == 1, "ann holds bob's invite")
        await ann.networks.set_admin("crew", bob.identity_info()["id"], False)
        await wait_for(lambda: not is_admin(bob, "crew", bob), "bob holds his demotion")
        joined = await eve.networks.join(issued)
        assert joined["name"] == "crew"
        assert ann.networks.by_name("crew").is_member(eve.identity.public_key)
        assert uses_left(ann, "crew", issued) == 0
        with pytest.raises(NetworkError, match="only an admin"):
            bob.networks.invite("crew")
        with pytest.raises(NetworkError, match="only an admin"):
            await bob.networks.revoke("crew", carol.identity_info()["id"])
        with pytest.raises(NetworkError, match="creator"):
            await ann.networks.set_admin("crew", ann.identity_info()["id"], False)

        # bob forges his promotion back and sends it to ann and carol: nobody takes it
        held = ann.networks.by_name("crew")
        forged = held.with_admin(bob.identity.public_key, True, 0)
        forged = forged.signed(bob.identity.public_key, bob.identity.sign)
        key = bob.networks.current_key(held.network_id)
        assert key is not None
        for other in (ann, carol):
            proof = membership_proof(key, held.network_id, held.epoch, bob.identity.public_key,
                                     other.identity.public_key)  # fmt: skip
            answer = await ask(bob.channels, other.identity.public_key,
                               Hello(held.network_id, forged.encode(), held.epoch, proof),
                               addresses=[address(other)])  # fmt: skip
            assert isinstance(answer, Hello)
            assert not is_admin(other, "crew", bob)
            assert other.networks.by_name("crew").sequence == held.sequence


async def test_a_second_admin_admits_while_the_issuer_is_offline_within_the_uses(
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        bob = await stack.enter_async_context(running_node(tmp_path, "bob"))
        carol = await stack.enter_async_context(running_node(tmp_path, "carol"))
        dave = await stack.enter_async_context(running_node(tmp_path, "dave"))
        async with running_node(tmp_path, "ann") as ann:
            ann.networks.create("crew")
            await bob.networks.join(ann.networks.invite("crew")["invite"])
            await ann.networks.set_admin("crew", bob.identity_info()["id"], True)
            await wait_for(lambda: is_admin(bob, "crew", bob), "bob is an admin")
            token = ann.networks.invite("crew", uses=1)["invite"]
            assert [k for k, _ in parse_invitation(token).others] == [bob.identity.public_key]
            await wait_for(lambda: uses_left(bob, "crew", token) == 1, "bob holds the invite")
        # ann (the issuer) is stopped: carol's join is answered by bob
        joined = await carol.networks.join(token)
        assert joined["name"] == "crew"
        crew = bob.networks.by_name("crew")
        assert crew.is_member(carol.identity.public_key)
        assert crew.signer == bob.identity.public_key
        assert uses_left(bob, "crew", token) == 0
        with pytest.raises(NetworkError, match="used up"):
            await dave.networks.join(token)
        assert not bob.networks.by_name("crew").is_member(dave.identity.public_key)

        # ann comes back: she takes bob's newer roster and refuses the spent token too
        ann = await stack.enter_async_context(running_node(tmp_path, "ann"))
        await wait_for(lambda: uses_left(ann, "crew", token) == 0, "ann holds bob's roster")
        assert ann.networks.by_name("crew").is_member(carol.identity.public_key)
        dave.networks.remember_addresses(ann.identity.public_key, [address(ann)])
        answer = await ask(dave.channels, ann.identity.public_key,
                           _join_frame(token), addresses=[address(ann)])  # fmt: skip
        assert getattr(answer, "reason", None) == "invitation used up"
        assert len(ann.networks.by_name("crew").members) == 3


def _join_frame(token: str) -> Join:
    invitation = parse_invitation(token)
    return Join(invitation.network_id, invitation.invite_id, invitation.secret)


def same_roster(*nodes: Node) -> bool:
    held = [n.networks.by_name("crew").encode() for n in nodes]
    return all(h == held[0] for h in held)


async def test_concurrent_changes_at_two_admins_settle_and_uses_are_not_exceeded(
    tmp_path: Path,
) -> None:
    names = ("ann", "bob", "carol", "dave", "eve")
    async with running_nodes(tmp_path, *names) as (ann, bob, carol, dave, eve):
        ann.networks.create("crew")
        for node in (bob, carol):
            await node.networks.join(ann.networks.invite("crew")["invite"])
        await ann.networks.set_admin("crew", bob.identity_info()["id"], True)
        await wait_for(lambda: is_admin(bob, "crew", bob), "bob is an admin")
        before = ann.networks.by_name("crew").sequence
        # both sign the same next sequence before either hears of the other's change
        token = bob.networks.invite("crew", uses=1)["invite"]
        await ann.networks.set_admin("crew", carol.identity_info()["id"], True)
        assert ann.networks.by_name("crew").sequence == bob.networks.by_name("crew").sequence
        await wait_for(lambda: same_roster(ann, bob, carol), "the admins settle on one roster")
        settled = ann.networks.by_name("crew")
        assert settled.sequence == before + 2  # the losing change was made again on top
        assert settled.is_admin(carol.identity.public_key) and uses_left(ann, "crew", token) == 1

        # one use left, two joiners at two admins at once: exactly one ends up a member
        frame = _join_frame(token)
        answers = await asyncio.gather(
            ask(dave.channels, ann.identity.public_key, frame, addresses=[address(ann)]),
            ask(eve.channels, bob.identity.public_key, frame, addresses=[address(bob)]),
        )
        assert any(isinstance(a, Welcome) for a in answers)
        await wait_for(lambda: same_roster(ann, bob, carol), "the admins settle again")
        settled = ann.networks.by_name("crew")
        admitted = [n for n in (dave, eve) if settled.is_member(n.identity.public_key)]
        assert len(admitted) == 1 and uses_left(ann, "crew", token) == 0


def same_key(*nodes: Node) -> bool:
    network = nodes[0].networks.by_name("crew").network_id
    keys = [n.networks.current_key(network) for n in nodes]
    return keys[0] is not None and all(k == keys[0] for k in keys)


async def test_two_revocations_at_once_both_hold_in_one_roster_with_one_key(tmp_path: Path) -> None:
    names = ("ann", "bob", "carol", "dave", "eve")
    async with running_nodes(tmp_path, *names) as (ann, bob, carol, dave, eve):
        ann.networks.create("crew")
        for node in (bob, carol, dave, eve):
            await node.networks.join(ann.networks.invite("crew")["invite"])
        await ann.networks.set_admin("crew", bob.identity_info()["id"], True)
        await wait_for(lambda: is_admin(bob, "crew", bob), "bob is an admin")
        await wait_for(lambda: same_roster(ann, bob, carol), "everyone holds the promotion")
        await asyncio.gather(
            ann.networks.revoke("crew", dave.identity_info()["id"]),
            bob.networks.revoke("crew", eve.identity_info()["id"]),
        )
        gone = (dave.identity.public_key, eve.identity.public_key)

        def settled() -> bool:
            roster = ann.networks.by_name("crew")
            revoked = all(k in roster.revoked for k in gone)
            return revoked and same_roster(ann, bob, carol) and same_key(ann, bob, carol)

        # one revocation wins the tie, the other admin revokes again on top of it
        await wait_for(settled, "both revoked in one roster, one key, at every member")
        final = ann.networks.by_name("crew")
        assert final.epoch == 3 and not any(final.is_member(k) for k in gone)
        assert carol.networks.by_name("crew").is_member(carol.identity.public_key)

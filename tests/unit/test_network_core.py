"""Invite-only network cores: roster rules, invitations and their accounting, keys, frames."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.errors import InvitationError, NetworkError, RosterError
from servent.proto.network import (
    Hello,
    Invitation,
    InviteRecord,
    Join,
    Query,
    Refusal,
    Result,
    Results,
    Roster,
    check_redeem,
    check_successor,
    decode_frame,
    decode_roster,
    encode_frame,
    membership_proof,
    network_id,
    parse_invitation,
    proof_matches,
    rendezvous_hash,
    secret_digest,
    swarm_key,
)
from servent.proto.network.roster import prefers

NOW = 1_700_000_000


class Signer:
    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.key = self.private.public_key().public_bytes_raw()

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def new_network(admin: Signer, name: str = "friends") -> Roster:
    return Roster.first(admin.key, b"n" * 16, name, NOW).signed(admin.key, admin.sign)


def test_a_new_roster_round_trips_and_names_its_creator_admin() -> None:
    admin = Signer()
    roster = new_network(admin)
    back = decode_roster(roster.encode())
    assert back == roster
    assert back.is_admin(admin.key) and back.epoch == 1 and back.sequence == 1
    assert back.network_id == network_id(admin.key, b"n" * 16)


def test_adding_and_revoking_members_moves_forward_and_rotates_the_epoch() -> None:
    admin, alice, bob = Signer(), Signer(), Signer()
    first = new_network(admin)
    second = first.with_member(alice.key, NOW).with_member(bob.key, NOW)
    second = second.signed(admin.key, admin.sign)
    check_successor(first, second)
    assert second.is_member(alice.key) and not second.is_admin(alice.key)
    third = second.without_member(bob.key, NOW).signed(admin.key, admin.sign)
    check_successor(second, third)
    assert third.epoch == 2 and not third.is_member(bob.key) and bob.key in third.revoked
    with pytest.raises(RosterError, match="revoked"):
        third.with_member(bob.key, NOW)


def test_a_roster_signed_by_a_plain_member_is_refused() -> None:
    admin, alice = Signer(), Signer()
    first = new_network(admin)
    second = first.with_member(alice.key, NOW).signed(admin.key, admin.sign)
    forged = second.with_member(Signer().key, NOW).signed(alice.key, alice.sign)
    with pytest.raises(RosterError, match="not one of its admins"):
        decode_roster(forged.encode())


def test_a_roster_whose_bytes_were_changed_does_not_verify() -> None:
    admin = Signer()
    raw = new_network(admin, "aaaa").encode()
    tampered = raw.replace(b"4:aaaa", b"4:bbbb")
    with pytest.raises(RosterError, match="signature"):
        decode_roster(tampered)


def test_a_network_id_claimed_by_another_creator_is_refused() -> None:
    admin, thief = Signer(), Signer()
    real = new_network(admin)
    fake = dataclasses.replace(
        Roster.first(thief.key, b"x" * 16, "friends", NOW), network_id=real.network_id
    ).signed(thief.key, thief.sign)
    with pytest.raises(RosterError, match="network ID"):
        decode_roster(fake.encode())


def test_an_old_roster_cannot_replace_a_newer_one_or_undo_a_revocation() -> None:
    admin, bob = Signer(), Signer()
    first = new_network(admin)
    second = first.with_member(bob.key, NOW).signed(admin.key, admin.sign)
    third = second.without_member(bob.key, NOW).signed(admin.key, admin.sign)
    with pytest.raises(RosterError, match="not newer"):
        check_successor(third, second)
    undo = dataclasses.replace(third, sequence=9, revoked=()).signed(admin.key, admin.sign)
    with pytest.raises(RosterError, match="revocation back"):
        check_successor(third, undo)


def test_a_revoked_admin_cannot_sign_the_next_roster() -> None:
    creator, deputy = Signer(), Signer()
    first = new_network(creator)
    promoted = dataclasses.replace(
        first.with_member(deputy.key, NOW),
        members=(*first.members, dataclasses.replace(first.members[0], key=deputy.key)),
    ).signed(creator.key, creator.sign)
    revoked = promoted.without_member(deputy.key, NOW).signed(creator.key, creator.sign)
    # deputy signs a roster that drops the creator's revocation of it, on top of ``promoted``
    comeback = promoted.with_member(Signer().key, NOW)
    comeback = dataclasses.replace(comeback, sequence=revoked.sequence + 1)
    comeback = comeback.signed(deputy.key, deputy.sign)
    with pytest.raises(RosterError):
        check_successor(revoked, comeback)


def test_the_creator_cannot_be_revoked() -> None:
    admin = Signer()
    with pytest.raises(RosterError, match="creator"):
        new_network(admin).without_member(admin.key, NOW)


def invitation(admin: Signer, expires: int = 0) -> Invitation:
    return Invitation(
        network_id(admin.key, b"n" * 16), "friends", admin.key,
        (("127.0.0.1", 6881), ("::1", 6882)), b"i" * 16, b"s" * 16, expires,
    )  # fmt: skip


def test_an_invitation_round_trips_through_its_text() -> None:
    invite = invitation(Signer(), expires=NOW + 60)
    text = invite.text()
    assert text.startswith("snet1")
    assert parse_invitation("  " + text.upper() + "\n") == invite


@pytest.mark.parametrize(
    "text", ["", "snet1", "snet1!!!!", "xnet1abcd", "snet1" + "a" * 1000, "snet1mfrggzdf"]
)
def test_a_broken_invitation_text_is_refused_with_its_own_error(text: str) -> None:
    with pytest.raises(InvitationError):
        parse_invitation(text)


def test_the_admin_refuses_wrong_secret_expired_and_used_up_invitations() -> None:
    ident = b"n" * 16
    record = InviteRecord(b"i" * 16, ident, secret_digest(b"s" * 16), 1, NOW + 60)
    assert check_redeem(record, ident, b"s" * 16, NOW) is None
    assert check_redeem(record, ident, b"t" * 16, NOW) == "invalid invitation"
    assert check_redeem(None, ident, b"s" * 16, NOW) == "invalid invitation"
    assert check_redeem(record, b"m" * 16, b"s" * 16, NOW) == "invalid invitation"
    assert check_redeem(record, ident, b"s" * 16, NOW + 60) == "invitation expired"
    used = dataclasses.replace(record, uses_left=0)
    assert check_redeem(used, ident, b"s" * 16, NOW) == "invitation used up"
    forever = dataclasses.replace(record, expires=0)
    assert check_redeem(forever, ident, b"s" * 16, NOW + 10**9) is None


def test_derived_keys_differ_by_epoch_key_and_torrent() -> None:
    k1, k2 = b"1" * 32, b"2" * 32
    ih = b"h" * 20
    assert swarm_key(k1, ih) != swarm_key(k2, ih)
    assert swarm_key(k1, ih) != swarm_key(k1, b"g" * 20)
    assert len(swarm_key(k1, ih)) == 20 and swarm_key(k1, ih) != ih
    assert rendezvous_hash(k1, b"n" * 16, 1) != rendezvous_hash(k1, b"n" * 16, 2)
    proof = membership_proof(k1, b"n" * 16, 1, b"a" * 32, b"b" * 32)
    assert proof_matches(k1, b"n" * 16, 1, (b"a" * 32, b"b" * 32), proof)
    assert not proof_matches(k2, b"n" * 16, 1, (b"a" * 32, b"b" * 32), proof)
    assert not proof_matches(k1, b"n" * 16, 1, (b"b" * 32, b"a" * 32), proof)
    with pytest.raises(ValueError):
        swarm_key(b"short", ih)


def test_frames_round_trip() -> None:
    frames = [
        Join(b"n" * 16, b"i" * 16, b"s" * 16, (("127.0.0.1", 1),), "Zoë"),
        Hello(b"n" * 16, b"roster", 3, b"m" * 32, (("::1", 2),), ((b"k" * 32, (("::1", 3),)),)),
        Query(b"n" * 16, "blue danube", 50),
        Results((Result(b"h" * 20, "Blue", 10, ("127.0.0.1", 5), b"k" * 32),)),
        Refusal("not allowed"),
    ]
    for frame in frames:
        assert decode_frame(encode_frame(frame)) == frame


@pytest.mark.parametrize(
    "raw",
    [b"", b"le", b"d1:y3:zzze", b"d1:y4:joine", b"d1:i3:abc1:y1:qe", b"x" * 70_000],
)
def test_malformed_frames_raise_network_error(raw: bytes) -> None:
    with pytest.raises(NetworkError):
        decode_frame(raw)


def test_admins_are_promoted_and_demoted_and_the_creator_stays_one() -> None:
    creator, deputy, plain = Signer(), Signer(), Signer()
    members = new_network(creator).with_member(deputy.key, NOW).with_member(plain.key, NOW)
    held = members.signed(creator.key, creator.sign)
    promoted = held.with_admin(deputy.key, True, NOW).signed(creator.key, creator.sign)
    check_successor(held, promoted)
    assert promoted.is_admin(deputy.key)
    # the new admin signs the next change, and every node holding ``promoted`` takes it
    by_deputy = promoted.with_member(Signer().key, NOW).signed(deputy.key, deputy.sign)
    check_successor(promoted, decode_roster(by_deputy.encode()))
    with pytest.raises(RosterError, match="creator"):
        promoted.with_admin(creator.key, False, NOW)
    with pytest.raises(RosterError, match="already an admin"):
        promoted.with_admin(deputy.key, True, NOW)
    with pytest.raises(RosterError, match="not a member"):
        promoted.with_admin(Signer().key, True, NOW)
    demoted = promoted.with_admin(deputy.key, False, NOW).signed(creator.key, creator.sign)
    check_successor(promoted, demoted)
    # the demoted admin's rosters are refused from then on
    late = demoted.with_member(Signer().key, NOW)
    late = dataclasses.replace(late, sequence=demoted.sequence + 3)
    with pytest.raises(RosterError, match="not an admin"):
        check_successor(demoted, late.signed(deputy.key, deputy.sign))


def test_a_plain_member_promoting_itself_is_refused() -> None:
    creator, plain = Signer(), Signer()
    held = new_network(creator).with_member(plain.key, NOW).signed(creator.key, creator.sign)
    forged = held.with_admin(plain.key, True, NOW).signed(plain.key, plain.sign)
    decode_roster(forged.encode())  # valid on its own: plain is an admin *of that roster*
    with pytest.raises(RosterError, match="not an admin"):
        check_successor(held, forged)


def record(ident: bytes, uses: int, expires: int = 0, tag: bytes = b"i") -> InviteRecord:
    return InviteRecord(tag * 16, ident, secret_digest(b"s" * 16), uses, expires)


def test_published_invitations_count_uses_in_the_roster() -> None:
    admin, joiner, late = Signer(), Signer(), Signer()
    held = new_network(admin)
    published = held.with_invite(record(held.network_id, 1), NOW).signed(admin.key, admin.sign)
    back = decode_roster(published.encode())
    assert back == published and back.invite(b"i" * 16) == record(held.network_id, 1)
    used = back.redeemed(b"i" * 16, joiner.key, NOW, "jo").signed(admin.key, admin.sign)
    check_successor(back, used)
    assert used.is_member(joiner.key) and used.sequence == back.sequence + 1
    entry = used.invite(b"i" * 16)
    assert entry is not None and entry.uses_left == 0
    assert check_redeem(entry, held.network_id, b"s" * 16, NOW) == "invitation used up"
    with pytest.raises(RosterError, match="used up"):
        used.redeemed(b"i" * 16, late.key, NOW)
    # a roster without invitations signs the same bytes as before they existed
    assert b"1:u" not in held.encode()


def test_published_invitations_are_bounded_and_spent_ones_make_room() -> None:
    admin = Signer()
    roster = new_network(admin)
    for n in range(100):
        roster = roster.with_invite(record(roster.network_id, 0, tag=bytes([n])), NOW)
    fresh = roster.with_invite(record(roster.network_id, 3, tag=b"\xff"), NOW)
    assert len(fresh.invites) == 100 and fresh.invite(b"\xff" * 16) is not None
    full = fresh
    for n in range(99):
        full = full.with_invite(record(full.network_id, 1, tag=bytes([n])), NOW)
    with pytest.raises(RosterError, match="at most 100"):
        full.with_invite(record(full.network_id, 1, tag=b"\xfe"), NOW)
    assert len(decode_roster(full.signed(admin.key, admin.sign).encode()).invites) == 100


def test_two_admins_admitting_at_once_settle_on_one_roster() -> None:
    creator, deputy, first, second = Signer(), Signer(), Signer(), Signer()
    base = new_network(creator).with_member(deputy.key, NOW).with_admin(deputy.key, True, NOW)
    held = base.with_invite(record(base.network_id, 1), NOW).signed(creator.key, creator.sign)
    at_creator = held.redeemed(b"i" * 16, first.key, NOW).signed(creator.key, creator.sign)
    at_deputy = held.redeemed(b"i" * 16, second.key, NOW).signed(deputy.key, deputy.sign)
    assert at_creator.sequence == at_deputy.sequence
    winner, loser = (at_creator, at_deputy) if prefers(at_creator, at_deputy) else (
        at_deputy, at_creator)  # fmt: skip
    assert not prefers(loser, winner)
    check_successor(loser, winner)  # whoever holds the loser moves to the winner
    with pytest.raises(RosterError, match="not newer"):
        check_successor(winner, loser)
    # one use in the roster everyone ends on: the loser's joiner is not in it
    assert sum(winner.is_member(j.key) for j in (first, second)) == 1
    entry = winner.invite(b"i" * 16)
    assert entry is not None and entry.uses_left == 0


def test_an_invitation_names_other_admins_to_try() -> None:
    admin, deputy = Signer(), Signer()
    invite = dataclasses.replace(
        invitation(admin), others=((deputy.key, (("127.0.0.1", 7000),)), (Signer().key, ()))
    )
    assert parse_invitation(invite.text()) == invite
    assert len(invite.text()) <= 1000


def test_a_revocation_wins_over_a_concurrent_change_of_the_same_sequence() -> None:
    creator, deputy, bad = Signer(), Signer(), Signer()
    base = new_network(creator).with_member(deputy.key, NOW).with_member(bad.key, NOW)
    held = base.with_admin(deputy.key, True, NOW).signed(creator.key, creator.sign)
    revoking = held.without_member(bad.key, NOW).signed(creator.key, creator.sign)
    admitting = held.with_member(Signer().key, NOW).signed(deputy.key, deputy.sign)
    assert prefers(revoking, admitting) and not prefers(admitting, revoking)
    check_successor(admitting, revoking)
    with pytest.raises(RosterError):
        check_successor(revoking, admitting)

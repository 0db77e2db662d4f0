"""The signed member roster of a network (``docs/networks.md`` section 3).

A roster says who belongs (members, admins), who never will again (revoked)
and which key epoch is current.  Admins sign it; a node holding one accepts a
newer one only by the rules of :func:`check_successor`, so what it holds only
moves forward and a revocation can never be undone by replaying an old roster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from servent.codec.bencode import BValue, encode
from servent.errors import RosterError
from servent.proto.network.fields import (
    MAX_MESSAGE,
    as_dict,
    get_bytes,
    get_int,
    get_list,
    get_text,
)
from servent.proto.network.keys import NETWORK_ID_LENGTH, NONCE_LENGTH, network_id

__all__ = [
    "MAX_INVITES",
    "MAX_MEMBERS",
    "MAX_NAME",
    "InviteRecord",
    "Member",
    "Roster",
    "check_successor",
    "decode_roster",
    "prefers",
]

MAX_MEMBERS = 1000
MAX_INVITES = 100
MAX_USES = 1000
MAX_NAME = 64
SIGNED_PREFIX = b"servent-network-roster/1\x00"
KEY = 32


@dataclass(frozen=True, slots=True)
class Member:
    key: bytes
    admin: bool = False
    name: str = ""


@dataclass(frozen=True, slots=True)
class InviteRecord:
    """The published accounting of one invitation (any admin holding it may admit)."""

    invite_id: bytes
    network_id: bytes
    digest: bytes
    uses_left: int
    expires: int


@dataclass(frozen=True, slots=True)
class Roster:
    """One version of a network's roster; ``signature`` is empty until :meth:`signed`."""

    network_id: bytes
    creator: bytes
    nonce: bytes
    name: str
    sequence: int
    epoch: int
    members: tuple[Member, ...]
    revoked: tuple[bytes, ...] = ()
    time: int = 0
    signer: bytes = b""
    signature: bytes = b""
    invites: tuple[InviteRecord, ...] = ()

    @classmethod
    def first(cls, creator: bytes, nonce: bytes, name: str, now: int, own_name: str = "") -> Roster:
        """The roster of a new network: its creator, sole admin, epoch 1."""
        check_name(name)
        return cls(
            network_id(creator, nonce), creator, nonce, name, 1, 1,
            (Member(creator, admin=True, name=own_name[:MAX_NAME]),), time=now,
        )  # fmt: skip

    # -- reading ---------------------------------------------------------------

    def member(self, key: bytes) -> Member | None:
        return next((m for m in self.members if m.key == key), None)

    def is_member(self, key: bytes) -> bool:
        return self.member(key) is not None and key not in self.revoked

    def is_admin(self, key: bytes) -> bool:
        found = self.member(key)
        return found is not None and found.admin and key not in self.revoked

    def invite(self, invite_id: bytes) -> InviteRecord | None:
        return next((r for r in self.invites if r.invite_id == invite_id), None)

    # -- changing (each gives a new unsigned roster with the next sequence) -----

    def with_invite(self, record: InviteRecord, now: int) -> Roster:
        """Publish an invitation; spent and expired ones make room first."""
        if self.invite(record.invite_id) is not None:
            raise RosterError("the invitation is published already")
        live = [r for r in self.invites if r.uses_left > 0 and not _expired(r, now)]
        if len(live) >= MAX_INVITES:
            raise RosterError(f"a network has at most {MAX_INVITES} outstanding invitations")
        room = MAX_INVITES - 1 - len(live)
        spent = [r for r in self.invites if r not in live][-room:] if room else []
        following = self._next(now, self.members, self.revoked, self.epoch)
        return dataclasses.replace(following, invites=(*spent, *live, record))

    def redeemed(self, invite_id: bytes, key: bytes, now: int, name: str = "") -> Roster:
        """``key`` joins by invitation ``invite_id``: one use counted in the same roster."""
        if self.member(key) is not None:
            raise RosterError("already a member")
        record = self.invite(invite_id)
        if record is None or record.uses_left <= 0:
            raise RosterError("invitation used up")
        used = dataclasses.replace(record, uses_left=record.uses_left - 1)
        invites = tuple(used if r.invite_id == invite_id else r for r in self.invites)
        return dataclasses.replace(self.with_member(key, now, name), invites=invites)

    def with_admin(self, key: bytes, admin: bool, now: int) -> Roster:
        """Promote (``admin``) or demote a member; the creator stays an admin."""
        found = self.member(key)
        if found is None or key in self.revoked:
            raise RosterError("not a member of this network")
        if found.admin == admin:
            raise RosterError("already an admin" if admin else "not an admin")
        if not admin and key == self.creator:
            raise RosterError("the creator of a network cannot be demoted")
        changed = dataclasses.replace(found, admin=admin)
        members = tuple(changed if m.key == key else m for m in self.members)
        if not any(m.admin for m in members):
            raise RosterError("a network keeps at least one admin")
        return self._next(now, members, self.revoked, self.epoch)

    def with_member(self, key: bytes, now: int, name: str = "") -> Roster:
        if key in self.revoked:
            raise RosterError("a revoked node cannot be added again")
        if self.member(key) is not None:
            return self
        members = (*self.members, Member(key, name=name[:MAX_NAME]))
        return self._next(now, members, self.revoked, self.epoch)

    def without_member(self, key: bytes, now: int) -> Roster:
        """Revoke ``key``: removed, revoked for ever, and a new key epoch."""
        if key == self.creator:
            raise RosterError("the creator of a network cannot be revoked")
        if self.member(key) is None:
            raise RosterError("not a member of this network")
        members = tuple(m for m in self.members if m.key != key)
        return self._next(now, members, (*self.revoked, key), self.epoch + 1)

    def _next(
        self, now: int, members: tuple[Member, ...], revoked: tuple[bytes, ...], epoch: int
    ) -> Roster:
        return dataclasses.replace(
            self, sequence=self.sequence + 1, time=now, signer=b"", signature=b"",
            members=members, revoked=revoked, epoch=epoch,
        )  # fmt: skip

    # -- signing and bytes -----------------------------------------------------

    def _body(self) -> dict[bytes | str, Any]:
        members: list[BValue] = [
            {b"k": m.key, b"a": int(m.admin), b"n": m.name.encode()} for m in self.members
        ]
        body: dict[bytes | str, Any] = {
            b"v": 1, b"i": self.network_id, b"c": self.creator, b"o": self.nonce,
            b"n": self.name.encode(), b"s": self.sequence, b"e": self.epoch,
            b"m": members, b"r": list(self.revoked), b"t": self.time, b"w": self.signer,
        }  # fmt: skip
        if self.invites:
            body[b"u"] = [
                {b"t": r.invite_id, b"d": r.digest, b"u": r.uses_left, b"x": r.expires}
                for r in self.invites
            ]
        return body

    def signed_bytes(self) -> bytes:
        return SIGNED_PREFIX + encode(self._body())

    def signed(self, signer: bytes, sign: Callable[[bytes], bytes]) -> Roster:
        unsigned = dataclasses.replace(self, signer=signer, signature=b"")
        return dataclasses.replace(unsigned, signature=sign(unsigned.signed_bytes()))

    def encode(self) -> bytes:
        if not self.signature:
            raise RosterError("the roster is not signed")
        return encode({**self._body(), b"sig": self.signature})


def check_name(name: str) -> None:
    size = len(name.encode("utf-8"))
    if not 1 <= size <= MAX_NAME or name != name.strip() or any(c < " " for c in name):
        raise RosterError(f"a network name is 1..{MAX_NAME} bytes of printable text")


def _member(value: BValue) -> Member:
    if not isinstance(value, dict):
        raise RosterError("a member is not a dictionary")
    key = get_bytes(value, b"k", length=KEY, error=RosterError)
    admin = get_int(value, b"a", high=2, error=RosterError) == 1
    name = get_text(value, b"n", max_length=MAX_NAME, error=RosterError) if b"n" in value else ""
    return Member(key, admin, name)


def _invite(network: bytes, value: BValue) -> InviteRecord:
    if not isinstance(value, dict):
        raise RosterError("an invitation entry is not a dictionary")
    return InviteRecord(
        get_bytes(value, b"t", length=16, error=RosterError), network,
        get_bytes(value, b"d", length=32, error=RosterError),
        get_int(value, b"u", high=MAX_USES + 1, error=RosterError),
        get_int(value, b"x", error=RosterError),
    )  # fmt: skip


def _expired(record: InviteRecord, now: int) -> bool:
    return record.expires != 0 and now >= record.expires


def _revoked(values: list[BValue]) -> tuple[bytes, ...]:
    if not all(isinstance(v, bytes) and len(v) == KEY for v in values):
        raise RosterError("a revoked key is not 32 bytes")
    return tuple(v for v in values if isinstance(v, bytes))


def decode_roster(data: bytes) -> Roster:
    """A roster from the network, checked: bounds, ID, signature, consistency."""
    if len(data) > MAX_MESSAGE:
        raise RosterError(f"a roster has at most {MAX_MESSAGE} bytes")
    values = as_dict(data, RosterError)
    ident = get_bytes(values, b"i", length=NETWORK_ID_LENGTH, error=RosterError)
    invites = (
        tuple(_invite(ident, v) for v in get_list(values, b"u", max_items=MAX_INVITES,
                                                  error=RosterError))
        if b"u" in values else ()
    )  # fmt: skip
    if get_int(values, b"v", low=1, high=2, error=RosterError) != 1:
        raise RosterError("unknown roster version")
    roster = Roster(
        network_id=ident,
        creator=get_bytes(values, b"c", length=KEY, error=RosterError),
        nonce=get_bytes(values, b"o", length=NONCE_LENGTH, error=RosterError),
        name=get_text(values, b"n", max_length=MAX_NAME, error=RosterError),
        sequence=get_int(values, b"s", low=1, error=RosterError),
        epoch=get_int(values, b"e", low=1, high=2**32, error=RosterError),
        members=tuple(
            _member(v) for v in get_list(values, b"m", max_items=MAX_MEMBERS, error=RosterError)
        ),
        revoked=_revoked(get_list(values, b"r", max_items=MAX_MEMBERS, error=RosterError)),
        time=get_int(values, b"t", error=RosterError),
        signer=get_bytes(values, b"w", length=KEY, error=RosterError),
        signature=get_bytes(values, b"sig", length=64, error=RosterError),
        invites=invites,
    )
    check_roster(roster)
    return roster


def check_roster(roster: Roster) -> None:
    """Raise :class:`RosterError` unless the roster is valid on its own."""
    check_name(roster.name)
    if network_id(roster.creator, roster.nonce) != roster.network_id:
        raise RosterError("the network ID does not belong to the roster's creator")
    keys = [m.key for m in roster.members]
    if len(set(keys)) != len(keys):
        raise RosterError("a member appears twice")
    if set(keys) & set(roster.revoked):
        raise RosterError("a key is both a member and revoked")
    ids = [r.invite_id for r in roster.invites]
    if len(set(ids)) != len(ids) or len(ids) > MAX_INVITES:
        raise RosterError("an invitation appears twice")
    if not roster.is_admin(roster.creator):
        raise RosterError("the creator is not an admin of the roster")
    if not roster.is_admin(roster.signer):
        raise RosterError("the roster is signed by a node that is not one of its admins")
    try:
        Ed25519PublicKey.from_public_bytes(roster.signer).verify(
            roster.signature, roster.signed_bytes()
        )
    except InvalidSignature:
        raise RosterError("the roster's signature does not verify") from None


def check_successor(held: Roster, new: Roster) -> None:
    """Raise :class:`RosterError` unless a node holding ``held`` may take ``new``."""
    if (new.network_id, new.creator, new.nonce) != (held.network_id, held.creator, held.nonce):
        raise RosterError("the roster is of another network")
    if not prefers(new, held):
        raise RosterError(f"roster {new.sequence} is not newer than {held.sequence}")
    if new.epoch < held.epoch:
        raise RosterError("the roster goes back to an older key epoch")
    if new.sequence > held.sequence and not set(held.revoked) <= set(new.revoked):
        # (at equal sequence two admins revoked at once: the loser revokes again on top)
        raise RosterError("the roster takes a revocation back")
    if not held.is_admin(new.signer):
        raise RosterError("the roster is signed by a node that is not an admin")


def prefers(new: Roster, held: Roster) -> bool:
    """Whether ``new`` wins over ``held`` by the order of section 4: higher sequence; at
    equal sequence (two admins changed the same roster) the higher epoch, so a revocation
    is never lost to a concurrent change, then the smaller SHA-256 of the encoding."""
    if (new.sequence, new.epoch) != (held.sequence, held.epoch):
        return (new.sequence, new.epoch) > (held.sequence, held.epoch)
    return _rank(new) < _rank(held)


def _rank(roster: Roster) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(roster.encode())
    return digest.finalize()

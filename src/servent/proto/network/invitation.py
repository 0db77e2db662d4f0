"""Invitation tokens and their accounting at the admin (``docs/networks.md`` section 4).

A token is a bearer secret: network, issuing admin (and where to reach it),
an invite ID and a secret.  Its uses and expiry are published in the signed
roster, so any admin holding the newest one decides with :func:`check_redeem`.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes

from servent.codec.bencode import BValue, encode
from servent.codec.compact import decode_peer, encode_peer
from servent.errors import CompactEncodingError, InvitationError
from servent.proto.network.fields import as_dict, get_bytes, get_int, get_list, get_text
from servent.proto.network.keys import NETWORK_ID_LENGTH
from servent.proto.network.roster import MAX_NAME, MAX_USES, InviteRecord

__all__ = [
    "MAX_OTHER_ADMINS",
    "MAX_USES",
    "Invitation",
    "InviteRecord",
    "check_redeem",
    "parse_invitation",
    "secret_digest",
]

PREFIX = "snet1"
MAX_TOKEN = 1000
MAX_ADDRESSES = 8
MAX_OTHER_ADMINS = 3
ID_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Invitation:
    network_id: bytes
    name: str
    admin: bytes
    addresses: tuple[tuple[str, int], ...]
    invite_id: bytes
    secret: bytes
    expires: int = 0
    """Unix seconds; 0 = never."""
    others: tuple[tuple[bytes, tuple[tuple[str, int], ...]], ...] = ()
    """Other admins to try when ``admin`` is offline: (key, addresses)."""

    def text(self) -> str:
        body: dict[bytes | str, Any] = {
            b"i": self.network_id, b"n": self.name.encode(), b"a": self.admin,
            b"p": [encode_peer(a) for a in self.addresses[:MAX_ADDRESSES]],
            b"t": self.invite_id, b"s": self.secret, b"x": self.expires,
        }  # fmt: skip
        if self.others:
            body[b"b"] = [
                {b"k": key, b"p": [encode_peer(a) for a in addresses[:2]]}
                for key, addresses in self.others[:MAX_OTHER_ADMINS]
            ]
        return PREFIX + base64.b32encode(encode(body)).decode("ascii").rstrip("=").lower()


def parse_invitation(text: str) -> Invitation:
    """A token as the user pasted it (case and surrounding white space do not matter)."""
    token = text.strip().lower()
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN:
        raise InvitationError(
            f"an invitation starts with {PREFIX!r} and has at most {MAX_TOKEN} characters"
        )
    body = token[len(PREFIX) :].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise InvitationError("the invitation is not valid base32 (cut or mistyped?)") from None
    try:
        values = as_dict(raw, InvitationError)
    except InvitationError as exc:
        raise InvitationError(f"the invitation is damaged ({exc})") from None
    try:
        addresses = tuple(
            decode_peer(a)
            for a in get_list(values, b"p", max_items=MAX_ADDRESSES, error=InvitationError)
            if isinstance(a, bytes)
        )  # fmt: skip
        others = _others(values)
    except CompactEncodingError as exc:
        raise InvitationError(f"the invitation has a bad address: {exc}") from None
    return Invitation(
        network_id=get_bytes(values, b"i", length=NETWORK_ID_LENGTH, error=InvitationError),
        name=get_text(values, b"n", max_length=MAX_NAME, error=InvitationError),
        admin=get_bytes(values, b"a", length=32, error=InvitationError),
        addresses=addresses,
        invite_id=get_bytes(values, b"t", length=ID_LENGTH, error=InvitationError),
        secret=get_bytes(values, b"s", length=ID_LENGTH, error=InvitationError),
        expires=get_int(values, b"x", error=InvitationError),
        others=others,
    )


def _others(values: dict[bytes, BValue]) -> tuple[tuple[bytes, tuple[tuple[str, int], ...]], ...]:
    """The token's other admins (``b``), each a key and at most two addresses."""
    if b"b" not in values:
        return ()
    found = []
    for entry in get_list(values, b"b", max_items=MAX_OTHER_ADMINS, error=InvitationError):
        if not isinstance(entry, dict):
            raise InvitationError("the invitation's other admins are damaged")
        key = get_bytes(entry, b"k", length=32, error=InvitationError)
        raw = get_list(entry, b"p", max_items=2, error=InvitationError)
        found.append((key, tuple(decode_peer(a) for a in raw if isinstance(a, bytes))))
    return tuple(found)


def secret_digest(secret: bytes) -> bytes:
    """What the admin stores of a secret (a database leak gives no usable token)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"servent-network/1 invite:" + secret)
    return digest.finalize()


def check_redeem(
    record: InviteRecord | None, network: bytes, secret: bytes, now: float
) -> str | None:
    """Why the admin refuses this redemption, or None when it may count one use."""
    if record is None or record.network_id != network:
        return "invalid invitation"
    if not hmac.compare_digest(record.digest, secret_digest(secret)):
        return "invalid invitation"
    if record.expires and now >= record.expires:
        return "invitation expired"
    if record.uses_left <= 0:
        return "invitation used up"
    return None

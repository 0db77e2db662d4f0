"""Write tokens (BEP 5): proof that a node asked us from the IP it announces from.

A token is a hash of the requester's IP and a secret that rotates every
``rotation`` seconds; tokens made with the previous secret stay valid, so a
token lives between one and two rotation periods.
"""

from __future__ import annotations

import hashlib
import hmac
import random

TOKEN_LENGTH = 8


class TokenIssuer:
    __slots__ = ("_current", "_next_rotation", "_previous", "_rng", "_rotation")

    def __init__(self, rng: random.Random, now: float, rotation: float) -> None:
        self._rng = rng
        self._rotation = rotation
        self._current = rng.randbytes(16)
        self._previous = self._current
        self._next_rotation = now + rotation

    def _make(self, secret: bytes, ip: str) -> bytes:
        return hashlib.sha1(secret + ip.encode()).digest()[:TOKEN_LENGTH]

    def token_for(self, ip: str) -> bytes:
        return self._make(self._current, ip)

    def is_valid(self, token: object, ip: str) -> bool:
        if type(token) is not bytes or len(token) != TOKEN_LENGTH:
            return False
        return hmac.compare_digest(token, self._make(self._current, ip)) or hmac.compare_digest(
            token, self._make(self._previous, ip)
        )

    def maybe_rotate(self, now: float) -> None:
        if now >= self._next_rotation:
            self._previous = self._current
            self._current = self._rng.randbytes(16)
            self._next_rotation = now + self._rotation

    @property
    def next_rotation(self) -> float:
        return self._next_rotation

"""Bookkeeping of block requests in both directions of one connection.

BEP 6 makes every request get exactly one answer (a piece or a reject), and
an unsolicited piece is a protocol violation; without BEP 6 a choke silently
voids all pending requests.  :class:`RequestLedger` holds what the
connection needs to apply those rules: the requests we sent and not yet got
answered, recently cancelled or choked-away ones (a late piece for them is
legitimate), and the requests the peer sent that we still owe an answer.
"""

from __future__ import annotations

from typing import TypeAlias

#: ``(index, begin, length)`` of a block request.  Plain tuples, not
#: :class:`~servent.proto.peerwire.messages.Request`: this is the per-block
#: hot path and a tuple is several times cheaper to build and hash.
BlockKey: TypeAlias = tuple[int, int, int]

_MAX_REMEMBERED = 4096


class RequestLedger:
    """Requests in flight, ours (``outstanding``) and the peer's (``owed``)."""

    __slots__ = ("cancelled", "outstanding", "owed")

    def __init__(self) -> None:
        #: Requests we sent, oldest first, with the time each was sent.
        self.outstanding: dict[BlockKey, float] = {}
        #: Requests from the peer that still need a piece or a reject, oldest first.
        self.owed: dict[BlockKey, None] = {}
        #: Requests voided by a cancel or a choke (no BEP 6): a late piece is still
        #: legal.  Bounded (the oldest forgotten first).
        self.cancelled: dict[BlockKey, None] = {}

    # Ours -----------------------------------------------------------------

    def sent(self, request: BlockKey, now: float) -> None:
        self.outstanding[request] = now

    def cancel_sent(self, request: BlockKey, fast: bool) -> None:
        """We cancelled: with BEP 6 an answer still comes, without it maybe a late piece."""
        if not fast and self.outstanding.pop(request, None) is not None:
            self._remember(request)

    def piece_arrived(self, request: BlockKey) -> bool:
        """Settle a request by its piece; False if we never asked (a violation)."""
        if self.outstanding.pop(request, None) is not None:
            return True
        if request in self.cancelled:
            del self.cancelled[request]
            return True
        return False

    def expects_blocks(self) -> bool:
        """Whether a piece may still legally arrive (asked, or cancelled without BEP 6)."""
        return bool(self.outstanding or self.cancelled)

    def reject_arrived(self, request: BlockKey) -> bool:
        """Settle a request by a reject; False if it was not outstanding (ignore it)."""
        if self.outstanding.pop(request, None) is not None:
            return True
        self.cancelled.pop(request, None)
        return False

    def drop_outstanding(self) -> tuple[BlockKey, ...]:
        """A choke without BEP 6 voids every outstanding request; late pieces stay legal."""
        dropped = tuple(self.outstanding)
        for request in dropped:
            self._remember(request)
        self.outstanding.clear()
        return dropped

    def _remember(self, request: BlockKey) -> None:
        self.cancelled[request] = None
        if len(self.cancelled) > _MAX_REMEMBERED:
            del self.cancelled[next(iter(self.cancelled))]

    # Theirs ---------------------------------------------------------------

    def peer_requested(self, request: BlockKey) -> bool:
        """Record a request from the peer; False for a duplicate."""
        if request in self.owed:
            return False
        self.owed[request] = None
        return True

    def settle_owed(self, request: BlockKey) -> bool:
        """We answer (piece, reject) or the peer cancelled; False if nothing was owed."""
        if request in self.owed:
            del self.owed[request]
            return True
        return False

    def void_owed_on_choke(self, keep: set[int]) -> list[BlockKey]:
        """We choked the peer: drop what we owe except pieces in ``keep`` (allowed-fast)."""
        voided = [request for request in self.owed if request[0] not in keep]
        for request in voided:
            del self.owed[request]
        return voided

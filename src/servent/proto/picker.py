"""Which blocks to request from which peer: a pure, deterministic piece picker.

Order of preference for a peer asking for work (:meth:`PiecePicker.pick`):

1. free blocks of pieces already in progress ("finish partial pieces first",
   so verified pieces, and ``have`` messages, come out early);
2. a new piece: highest priority first, then rarest first (lowest
   availability among connected peers), ties broken by a random rank drawn
   once from the seeded RNG; in sequential mode lowest index first instead
   of rarest (streaming);
0. pieces with a deadline (streaming, :meth:`set_deadline`) before all of
   the above, earliest deadline first; a deadline piece whose deadline is
   near (``pick_blocks(now=...)``) may also get endgame-style duplicates;
3. endgame: when no block is left unrequested, blocks already requested from
   other peers (at most ``endgame_max_requesters`` peers per block); when one
   copy arrives :meth:`on_block_received` returns the cancels to send.

Per-file priorities reach the picker as a per-piece priority array
(:meth:`set_priorities`; 0 = do not download, larger = sooner).  The picker
remembers which peer delivered each block so a piece that fails verification
names its suspects (:meth:`on_piece_failed`).

Peers are any hashable keys.  No I/O and no clock: the session calls it.
Candidate pieces live in buckets keyed by ``(priority, availability)`` so an
availability change is O(1) and picking scans only the best buckets.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import Any

from servent.codec.bitfield import Bitfield
from servent.proto.peerwire.messages import Request
from servent.proto.peerwire.requests import BlockKey
from servent.proto.piece_blocks import (
    ACCEPTED,
    COMPLETED,
    FREE,
    RECEIVED,
    REJECTED,
    BlockOutcome,
    PartialPiece,
)
from servent.proto.piece_candidates import CandidateBuckets
from servent.proto.piece_schedule import PieceDeadlines, priorities_from_files

BLOCK_SIZE = 16384
DEFAULT_PRIORITY = 4

__all__ = ["BLOCK_SIZE", "DEFAULT_PRIORITY", "BlockOutcome", "PiecePicker", "priorities_from_files"]


class PiecePicker:
    """Block-level piece picker for one torrent.

    Piece sizes come from ``piece_size`` (pass ``metainfo.piece_size``: in v2
    torrents the last piece of *every file* is short, and pad files count in
    v1 piece space) or, for a plain layout, from ``total_length`` (only the
    last piece short).  ``have`` marks pieces already verified.  ``rng``
    decides tie breaks, so equal seeds give equal picks.
    """

    def __init__(
        self,
        num_pieces: int,
        piece_length: int,
        total_length: int | None = None,
        *,
        rng: random.Random,
        piece_size: Callable[[int], int] | None = None,
        have: Bitfield | None = None,
        priorities: Sequence[int] | None = None,
        block_size: int = BLOCK_SIZE,
        sequential: bool = False,
        endgame_max_requesters: int = 3,
        deadline_urgency: float = 1.0,
    ) -> None:
        if num_pieces <= 0 or piece_length <= 0 or block_size <= 0:
            raise ValueError("num_pieces, piece_length and block_size must be positive")
        if piece_size is not None:
            sizes = [piece_size(index) for index in range(num_pieces)]
        elif total_length is not None:
            last = total_length - (num_pieces - 1) * piece_length
            sizes = [piece_length] * (num_pieces - 1) + [last]
        else:
            raise ValueError("give piece_size or total_length")
        if any(not 0 < size <= piece_length for size in sizes):
            raise ValueError("piece sizes must be within 1..piece_length")
        self._sizes = sizes
        self.num_pieces = num_pieces
        self.piece_length = piece_length
        self.block_size = block_size
        self.sequential = sequential
        self.endgame_max_requesters = endgame_max_requesters
        self.have = have.copy() if have is not None else Bitfield(num_pieces)
        self._rng = rng
        rank = list(range(num_pieces))
        rng.shuffle(rank)
        self._rank = rank
        self._availability = [0] * num_pieces  # from peers that are not seeds
        self._seeds = 0
        self._peers: dict[Hashable, Bitfield | None] = {}  # None = has every piece
        #: ``peer -> keys of the blocks asked of it``, a key ``index * blocks_per_piece + block``.
        self._peer_blocks: dict[Hashable, set[int]] = {}
        self.blocks_per_piece = -(-piece_length // block_size)
        self._priority = (
            list(priorities) if priorities is not None else [DEFAULT_PRIORITY] * (num_pieces)
        )
        if len(self._priority) != num_pieces:
            raise ValueError("one priority per piece")
        self._partial: dict[int, PartialPiece] = {}
        self._deadlines = PieceDeadlines(deadline_urgency)
        self._candidates = CandidateBuckets()
        # Same dicts as the candidates' (read directly on the hot path).
        self._buckets = self._candidates.buckets
        self._key = self._candidates.key_of
        for index in range(num_pieces):
            self._add_candidate(index)

    # ------------------------------------------------------------- geometry

    def piece_size(self, index: int) -> int:
        return self._sizes[index]

    def blocks_in_piece(self, index: int) -> int:
        return -(-self.piece_size(index) // self.block_size)

    def _request(self, index: int, block: int) -> Request:
        begin = block * self.block_size
        return Request(index, begin, min(self.block_size, self.piece_size(index) - begin))

    # ----------------------------------------------------------- candidates

    def _is_candidate(self, index: int) -> bool:
        return self._priority[index] > 0 and index not in self.have and index not in self._partial

    def _add_candidate(self, index: int) -> None:
        if self._is_candidate(index):
            self._candidates.add(index, self._priority[index], self._availability[index])

    def _shift_availability(self, indices: Iterable[int], delta: int) -> None:
        self._candidates.shift(indices, delta, self._availability)

    # ---------------------------------------------------------------- peers

    def add_peer(self, peer: Hashable, pieces: Bitfield | None = None) -> None:
        """A peer joined with its piece set (``None`` = it has every piece, e.g. HaveAll)."""
        if peer in self._peers:
            self.remove_peer(peer)
        if pieces is not None and pieces.all():
            pieces = None
        if pieces is None:
            self._seeds += 1
            self._peers[peer] = None
        else:
            copy = pieces.copy()
            self._peers[peer] = copy
            self._shift_availability(copy, 1)
        self._peer_blocks[peer] = set()

    def peer_has(self, peer: Hashable, index: int) -> None:
        """The peer announced ``have index``."""
        pieces = self._peers[peer]
        if pieces is None or not pieces.set(index):
            return
        self._shift_availability((index,), 1)
        if pieces.all():
            # Now a seed: count it once for every piece instead of per piece.
            self._shift_availability(range(self.num_pieces), -1)
            self._peers[peer] = None
            self._seeds += 1

    def remove_peer(self, peer: Hashable) -> None:
        """The peer left: its pieces no longer count and its requests are released."""
        pieces = self._peers.pop(peer, None)
        if peer not in self._peer_blocks:
            return
        if pieces is None:
            self._seeds -= 1
        else:
            self._shift_availability(pieces, -1)
        for index, block in self._blocks_of(peer):
            self._release(peer, index, block)
        del self._peer_blocks[peer]

    def availability(self, index: int) -> int:
        """How many connected peers have piece ``index``."""
        return self._availability[index] + self._seeds

    def peer_is_interesting(self, peer: Hashable) -> bool:
        """Whether the peer has any piece we still want (drives ``interested``)."""
        pieces = self._peers[peer]
        for index in self._partial:
            if self._priority[index] > 0 and (pieces is None or index in pieces):
                return True
        if pieces is None:
            return bool(self._key)
        if len(self._key) < pieces.count():
            return any(index in pieces for index in self._key)
        return any(index in self._key for index in pieces)

    # ----------------------------------------------------------- priorities

    def set_priorities(self, priorities: Sequence[int]) -> None:
        """Replace the per-piece priority array (0 = skip)."""
        if len(priorities) != self.num_pieces:
            raise ValueError("one priority per piece")
        self._priority = list(priorities)
        self._candidates.clear()
        for index in range(self.num_pieces):
            self._add_candidate(index)

    def priority(self, index: int) -> int:
        return self._priority[index]

    # ------------------------------------------------------------ deadlines

    def set_deadline(self, index: int, when: float) -> None:
        """Piece ``index`` is needed by ``when`` (a stream reads it): pick it first."""
        if not 0 <= index < self.num_pieces:
            raise ValueError(f"piece {index} out of range")
        if index not in self.have:
            self._deadlines.due[index] = when

    def clear_deadlines(self) -> None:
        """Back to plain rarest-first (or sequential) order."""
        self._deadlines.due.clear()

    def displaced_requests(self, peer: Hashable, now: float) -> list[Request]:
        """The peer's requests for pieces without a deadline, to cancel when a piece due
        within ``deadline_urgency`` that the peer has is not started yet (a seek):
        else the seek waits behind a full pipeline of background blocks."""
        pieces = self._peers.get(peer, None)

        def waiting(index: int) -> bool:
            return index in self._key and (pieces is None or index in pieces)

        if not self._deadlines.any_urgent(now, waiting):
            return []
        deadlines = self._deadlines.due
        return [self._request(i, block) for i, block in self._blocks_of(peer) if i not in deadlines]

    def deadlines(self) -> dict[int, float]:
        """Pending deadlines, ``index -> when``."""
        return dict(self._deadlines.due)

    @property
    def deadline_urgency(self) -> float:
        return self._deadlines.urgency

    # -------------------------------------------------------------- picking

    @property
    def in_endgame(self) -> bool:
        """Every wanted block that some connected peer could send is requested.

        Pieces nobody has do not hold endgame back (else a missing piece would
        leave the last blocks waiting on the slowest peer forever).
        """
        priority = self._priority
        if any(p.free and priority[i] > 0 for i, p in self._partial.items()):
            return False
        if self._seeds:
            return not self._key
        return all(availability == 0 for _, availability in self._buckets)

    def pick(
        self, peer: Hashable, count: int, *, allowed: Collection[int] | None = None
    ) -> list[Request]:
        """Up to ``count`` block requests for ``peer``; marks them requested by it.

        ``allowed`` restricts the pieces (the allowed-fast set while choked).
        """
        return [Request(*key) for key in self.pick_blocks(peer, count, allowed=allowed)]

    def pick_blocks(
        self,
        peer: Hashable,
        count: int,
        *,
        allowed: Collection[int] | None = None,
        now: float | None = None,
    ) -> list[BlockKey]:
        """:meth:`pick` as ``(index, begin, length)`` triples (the leecher's hot path).

        ``now`` (same clock as the deadlines) lets pieces due within
        ``deadline_urgency`` seconds be requested from several peers at once.
        """
        pieces = self._peers[peer]
        mine = self._peer_blocks[peer]
        out: list[BlockKey] = []

        def usable(index: int) -> bool:
            return (pieces is None or index in pieces) and (allowed is None or index in allowed)

        if self._deadlines:
            self._take_deadlines(peer, count, out, usable, now)

        priority = self._priority
        order = list(self._partial)
        if self.sequential:
            order.sort()
        else:  # highest priority first (a stable sort: equal ones keep their order)
            order.sort(key=priority.__getitem__, reverse=True)
        for index in order:
            if len(out) >= count:
                return out
            partial = self._partial[index]
            if partial.free and priority[index] > 0 and usable(index):
                partial.take_free(peer, count - len(out), mine, out)
        while len(out) < count:
            new = self._next_new_piece(usable, allowed, pieces)
            if new is None:
                break
            self._start_piece(new).take_free(peer, count - len(out), mine, out)
        if len(out) < count and self.in_endgame:
            self._take_endgame(peer, count, out, mine, usable)
        return out

    def _take_deadlines(
        self,
        peer: Hashable,
        count: int,
        out: list[BlockKey],
        usable: Callable[[int], bool],
        now: float | None,
    ) -> None:
        """Blocks of deadline pieces, earliest deadline first (duplicates when urgent)."""
        urgent: list[int] = []
        mine = self._peer_blocks[peer]
        for index in self._deadlines.earliest_first():
            if len(out) >= count:
                return
            if self._priority[index] <= 0 or not usable(index):
                continue
            partial = self._partial.get(index)
            if partial is None:
                if index not in self._key:
                    continue
                partial = self._start_piece(index)
            if partial.free:
                partial.take_free(peer, count - len(out), mine, out)
            if self._deadlines.is_urgent(index, now):
                urgent.append(index)
        if urgent and len(out) < count:
            self._take_endgame(peer, count, out, mine, urgent.__contains__)

    def _start_piece(self, index: int) -> PartialPiece:
        """Candidate ``index`` becomes a piece in progress."""
        self._candidates.remove(index)
        partial = PartialPiece.start(
            index, self._sizes[index], self.block_size, index * self.blocks_per_piece
        )
        self._partial[index] = partial
        return partial

    def _take_endgame(
        self,
        peer: Hashable,
        count: int,
        out: list[BlockKey],
        mine: set[int],
        usable: Callable[[int], bool],
    ) -> None:
        priority = self._priority
        most = self.endgame_max_requesters
        for index, partial in self._partial.items():
            if partial.received == len(partial.state) or not usable(index):
                continue
            if priority[index] > 0 and not partial.take_duplicates(peer, count, most, mine, out):
                return

    def _next_new_piece(
        self,
        usable: Callable[[int], bool],
        allowed: Collection[int] | None,
        pieces: Bitfield | None,
    ) -> int | None:
        few: Iterable[int] | None = allowed
        if few is None and pieces is not None and pieces.count() * 8 < len(self._key):
            few = pieces  # a peer with few pieces: walk its pieces, not the buckets
        if few is not None:
            options = [i for i in few if i in self._key and usable(i)]
            if not options:
                return None
            return min(options, key=self._order_key)
        if self.sequential:
            return self._candidates.in_sequence(self.num_pieces, self._priority, usable)
        return self._candidates.rarest(self._rng, usable)

    def _order_key(self, index: int) -> tuple[int, int, int]:
        if self.sequential:
            return (-self._priority[index], 0, index)
        return (-self._priority[index], self._availability[index], self._rank[index])

    # ------------------------------------------------------------- outcomes

    def on_block_received(self, peer: Hashable, request: Request) -> BlockOutcome:
        """A block arrived from ``peer``; returns whether to keep it and what to cancel."""
        return self.block_received(peer, request.index, request.begin, request.length)

    def block_received(self, peer: Hashable, index: int, begin: int, length: int) -> BlockOutcome:
        """:meth:`on_block_received` without a :class:`Request`: the per-block hot path.

        Allocates nothing unless there are cancels to send (endgame).
        """
        partial = self._partial.get(index)
        if partial is None:
            return REJECTED
        block_size, state = self.block_size, partial.state
        block = begin // block_size
        if begin % block_size or block >= len(state):
            return REJECTED
        current = state[block]
        if current == RECEIVED:
            mine = self._peer_blocks.get(peer)
            if mine is not None:
                mine.discard(partial.key0 + block)
            return REJECTED
        rest = self._sizes[index] - begin
        if length != (block_size if rest > block_size else rest):
            return REJECTED
        if current == FREE:
            partial.free -= 1  # an unrequested block is still data we need
        others = partial.receive(block, peer, self._peer_blocks)
        complete = partial.received == len(state)
        if others:
            cancels = tuple((other, Request(index, begin, length)) for other in others)
            return BlockOutcome(True, complete, cancels)
        return COMPLETED if complete else ACCEPTED

    def on_request_failed(self, peer: Hashable, request: Request) -> None:
        """The request will not be answered (reject, choke, timeout, cancel): free the block."""
        if request.begin % self.block_size:
            return
        block = request.begin // self.block_size
        if not 0 <= block < self.blocks_per_piece:
            return
        key = request.index * self.blocks_per_piece + block
        mine = self._peer_blocks.get(peer)
        if mine is not None and key in mine:
            mine.discard(key)
            self._release(peer, request.index, block)

    def _release(self, peer: Hashable, index: int, block: int) -> None:
        partial = self._partial.get(index)
        if partial is not None:
            partial.release(peer, block)

    def on_piece_verified(self, index: int) -> None:
        """Storage verified and wrote piece ``index``."""
        self._deadlines.due.pop(index, None)
        self._drop_partial(index)
        self.have.set(index)
        self._candidates.remove(index)

    def on_piece_failed(self, index: int) -> set[Hashable]:
        """The piece failed its hash: fetch it again; returns the peers that sent its blocks."""
        partial = self._drop_partial(index)
        self._add_candidate(index)
        return set(partial.sources.values()) if partial is not None else set()

    def _drop_partial(self, index: int) -> PartialPiece | None:
        partial = self._partial.pop(index, None)
        if partial is not None:
            for requester, key in partial.asked():
                self._peer_blocks.get(requester, set()).discard(key)
        return partial

    def block_sources(self, index: int, key: Callable[[Any], Any] | None = None) -> dict[int, Any]:
        """``begin -> peer`` (or ``key(peer)``) for the received blocks of a piece in progress."""
        partial = self._partial.get(index)
        return {} if partial is None else partial.sources_by_begin(key)

    # -------------------------------------------------------------- queries

    def requests_of(self, peer: Hashable) -> list[Request]:
        """Blocks currently assigned to ``peer``."""
        return [self._request(index, block) for index, block in self._blocks_of(peer)]

    def _blocks_of(self, peer: Hashable) -> Iterator[tuple[int, int]]:
        """``(index, block)`` of each block asked of ``peer``."""
        return map(divmod, self._peer_blocks.get(peer, ()), repeat(self.blocks_per_piece))

    def is_complete(self) -> bool:
        """Every wanted piece (priority > 0) is verified."""
        return not self._key and not any(self._priority[index] > 0 for index in self._partial)

    def wanted_remaining(self) -> int:
        """Wanted pieces not yet verified."""
        return len(self._key) + sum(1 for i in self._partial if self._priority[i] > 0)

    def partial_pieces(self) -> list[int]:
        return list(self._partial)

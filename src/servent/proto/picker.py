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
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from servent.codec.bitfield import Bitfield
from servent.proto.peerwire.messages import Request
from servent.proto.peerwire.requests import BlockKey

BLOCK_SIZE = 16384
_FREE, _REQUESTED, _RECEIVED = 0, 1, 2
DEFAULT_PRIORITY = 4


class _IndexedSet:
    """A set of ints with O(1) add, remove and positional access (for random scans)."""

    __slots__ = ("items", "positions")

    def __init__(self) -> None:
        self.items: list[int] = []
        self.positions: dict[int, int] = {}

    def add(self, value: int) -> None:
        if value not in self.positions:
            self.positions[value] = len(self.items)
            self.items.append(value)

    def remove(self, value: int) -> None:
        position = self.positions.pop(value)
        last = self.items.pop()
        if position < len(self.items):
            self.items[position] = last
            self.positions[last] = position

    def __len__(self) -> int:
        return len(self.items)


@dataclass(slots=True)
class _Partial:
    """A piece in progress: per-block state, requesters and sources."""

    state: bytearray
    requesters: dict[int, list[Hashable]] = field(default_factory=dict)
    sources: dict[int, Hashable] = field(default_factory=dict)
    free: int = 0
    received: int = 0


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    """What :meth:`PiecePicker.on_block_received` decided about one block."""

    #: False for a block we already had (endgame duplicate) or never asked anyone for.
    accepted: bool
    #: All blocks of the piece are in: hand it to storage for verification.
    piece_complete: bool
    #: ``(peer, request)`` pairs to cancel: other peers asked for this same block.
    cancels: tuple[tuple[Hashable, Request], ...] = ()


_REJECTED = BlockOutcome(False, False)
_ACCEPTED = BlockOutcome(True, False)
_COMPLETED = BlockOutcome(True, True)


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
        self.deadline_urgency = deadline_urgency
        self.have = have.copy() if have is not None else Bitfield(num_pieces)
        self._rng = rng
        rank = list(range(num_pieces))
        rng.shuffle(rank)
        self._rank = rank
        self._availability = [0] * num_pieces  # from peers that are not seeds
        self._seeds = 0
        self._peers: dict[Hashable, Bitfield | None] = {}  # None = has every piece
        self._peer_blocks: dict[Hashable, set[tuple[int, int]]] = {}
        self._priority = (
            list(priorities) if priorities is not None else [DEFAULT_PRIORITY] * (num_pieces)
        )
        if len(self._priority) != num_pieces:
            raise ValueError("one priority per piece")
        self._partial: dict[int, _Partial] = {}
        self._deadlines: dict[int, float] = {}
        self._cursor = 0  # sequential mode: no candidate below this index
        self._buckets: dict[tuple[int, int], _IndexedSet] = {}
        self._key: dict[int, tuple[int, int]] = {}
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
        if not self._is_candidate(index) or index in self._key:
            return
        key = (self._priority[index], self._availability[index])
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _IndexedSet()
        bucket.add(index)
        self._key[index] = key
        self._cursor = min(self._cursor, index)

    def _remove_candidate(self, index: int) -> None:
        key = self._key.pop(index, None)
        if key is None:
            return
        bucket = self._buckets[key]
        bucket.remove(index)
        if not bucket:
            del self._buckets[key]

    def _availability_changed(self, index: int, delta: int) -> None:
        self._shift_availability((index,), delta)

    def _shift_availability(self, indices: Iterable[int], delta: int) -> None:
        """Add ``delta`` to the availability of ``indices``, moving candidates between buckets.

        Inlined bucket moves: a peer joining or leaving touches every piece it has.
        """
        availability = self._availability
        key_of = self._key
        buckets = self._buckets
        for index in indices:
            count = availability[index] + delta
            availability[index] = count
            old = key_of.get(index)
            if old is None:
                continue
            bucket = buckets[old]
            # _IndexedSet.remove, inlined
            items, positions = bucket.items, bucket.positions
            position = positions.pop(index)
            last = items.pop()
            if position < len(items):
                items[position] = last
                positions[last] = position
            elif not items:
                del buckets[old]
            new = (old[0], count)
            target = buckets.get(new)
            if target is None:
                target = buckets[new] = _IndexedSet()
            # _IndexedSet.add, inlined (index is not in the target bucket)
            target.positions[index] = len(target.items)
            target.items.append(index)
            key_of[index] = new

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
        self._availability_changed(index, 1)
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
        for index, block in list(self._peer_blocks.pop(peer)):
            self._release(peer, index, block)

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
        self._buckets.clear()
        self._key.clear()
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
            self._deadlines[index] = when

    def clear_deadlines(self) -> None:
        """Back to plain rarest-first (or sequential) order."""
        self._deadlines.clear()

    def displaced_requests(self, peer: Hashable, now: float) -> list[Request]:
        """The peer's requests for pieces without a deadline, to cancel when a piece due
        within ``deadline_urgency`` that the peer has is not started yet (a seek):
        else the seek waits behind a full pipeline of background blocks."""
        pieces = self._peers.get(peer, None)
        urgent = self.deadline_urgency
        if not any(
            index in self._key and when - now <= urgent and (pieces is None or index in pieces)
            for index, when in self._deadlines.items()
        ):
            return []
        deadlines = self._deadlines
        mine = self._peer_blocks.get(peer, ())
        return [self._request(i, block) for i, block in mine if i not in deadlines]

    def deadlines(self) -> dict[int, float]:
        """Pending deadlines, ``index -> when``."""
        return dict(self._deadlines)

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
        else:
            order.sort(key=lambda i: -priority[i])
        for index in order:
            if len(out) >= count:
                return out
            partial = self._partial[index]
            if partial.free and priority[index] > 0 and usable(index):
                self._take_free(peer, index, partial, count - len(out), out)
        while len(out) < count:
            new = self._next_new_piece(usable, allowed, pieces)
            if new is None:
                break
            self._remove_candidate(new)
            blocks = self.blocks_in_piece(new)
            partial = _Partial(bytearray(blocks), free=blocks)
            self._partial[new] = partial
            self._take_free(peer, new, partial, count - len(out), out)
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
        for index in sorted(self._deadlines, key=self._deadlines.__getitem__):
            if len(out) >= count:
                return
            if self._priority[index] <= 0 or not usable(index):
                continue
            partial = self._partial.get(index)
            if partial is None:
                if index not in self._key:
                    continue
                self._remove_candidate(index)
                blocks = self.blocks_in_piece(index)
                partial = self._partial[index] = _Partial(bytearray(blocks), free=blocks)
            if partial.free:
                self._take_free(peer, index, partial, count - len(out), out)
            if now is not None and self._deadlines[index] - now <= self.deadline_urgency:
                urgent.append(index)
        if urgent and len(out) < count:
            self._take_endgame(peer, count, out, self._peer_blocks[peer], urgent.__contains__)

    def _take_free(
        self, peer: Hashable, index: int, partial: _Partial, wanted: int, out: list[BlockKey]
    ) -> None:
        mine = self._peer_blocks[peer]
        state = partial.state
        requesters = partial.requesters
        block_size = self.block_size
        size = self._sizes[index]
        block = state.find(_FREE)
        while wanted > 0 and block >= 0:
            state[block] = _REQUESTED
            partial.free -= 1
            requesters[block] = [peer]
            mine.add((index, block))
            begin = block * block_size
            out.append((index, begin, min(block_size, size - begin)))
            wanted -= 1
            block = state.find(_FREE, block + 1)

    def _take_endgame(
        self,
        peer: Hashable,
        count: int,
        out: list[BlockKey],
        mine: set[tuple[int, int]],
        usable: Callable[[int], bool],
    ) -> None:
        for index, partial in self._partial.items():
            if partial.received == len(partial.state) or not usable(index):
                continue
            if self._priority[index] <= 0:
                continue
            for block, requesters in partial.requesters.items():
                if len(out) >= count:
                    return
                if (
                    partial.state[block] == _REQUESTED
                    and peer not in requesters
                    and len(requesters) < self.endgame_max_requesters
                ):
                    requesters.append(peer)
                    mine.add((index, block))
                    request = self._request(index, block)
                    out.append((index, request.begin, request.length))

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
            return self._next_in_sequence(usable)
        for key in sorted(self._buckets, key=lambda k: (-k[0], k[1])):
            items = self._buckets[key].items
            size = len(items)
            start = self._rng.randrange(size)
            for step in range(size):
                index = items[(start + step) % size]
                if usable(index):
                    return index
        return None

    def _next_in_sequence(self, usable: Callable[[int], bool]) -> int | None:
        """Lowest-index usable candidate of the highest priority present.

        Scans from a cursor below which no candidate exists, so streaming
        from peers that have the pieces costs O(1) per piece, not O(pieces).
        """
        key_of = self._key
        while self._cursor < self.num_pieces and self._cursor not in key_of:
            self._cursor += 1
        priority = self._priority
        for level in sorted({key[0] for key in self._buckets}, reverse=True):
            for index in range(self._cursor, self.num_pieces):
                if index in key_of and priority[index] == level and usable(index):
                    return index
        return None

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
            return _REJECTED
        block, misaligned = divmod(begin, self.block_size)
        state = partial.state
        if misaligned or block >= len(state):
            return _REJECTED
        current = state[block]
        if current == _RECEIVED:
            mine = self._peer_blocks.get(peer)
            if mine is not None:
                mine.discard((index, block))
            return _REJECTED
        if length != min(self.block_size, self._sizes[index] - begin):
            return _REJECTED
        if current == _FREE:
            partial.free -= 1  # an unrequested block is still data we need
        state[block] = _RECEIVED
        partial.received += 1
        partial.sources[block] = peer
        requesters = partial.requesters.pop(block, None)
        cancels: list[tuple[Hashable, Request]] | None = None
        if requesters is not None:
            key = (index, block)
            peer_blocks = self._peer_blocks
            for requester in requesters:
                mine = peer_blocks.get(requester)
                if mine is not None:
                    mine.discard(key)
                if requester != peer:
                    if cancels is None:
                        cancels = []
                    cancels.append((requester, Request(index, begin, length)))
        complete = partial.received == len(state)
        if cancels:
            return BlockOutcome(True, complete, tuple(cancels))
        return _COMPLETED if complete else _ACCEPTED

    def on_request_failed(self, peer: Hashable, request: Request) -> None:
        """The request will not be answered (reject, choke, timeout, cancel): free the block."""
        if request.begin % self.block_size:
            return
        block = request.begin // self.block_size
        if (request.index, block) in self._peer_blocks.get(peer, set()):
            self._peer_blocks[peer].discard((request.index, block))
            self._release(peer, request.index, block)

    def _release(self, peer: Hashable, index: int, block: int) -> None:
        partial = self._partial.get(index)
        if partial is None:
            return
        requesters = partial.requesters.get(block)
        if requesters is None or peer not in requesters:
            return
        requesters.remove(peer)
        if not requesters:
            del partial.requesters[block]
            if partial.state[block] == _REQUESTED:
                partial.state[block] = _FREE
                partial.free += 1

    def on_piece_verified(self, index: int) -> None:
        """Storage verified and wrote piece ``index``."""
        self._deadlines.pop(index, None)
        self._drop_partial(index)
        self.have.set(index)
        self._remove_candidate(index)

    def on_piece_failed(self, index: int) -> set[Hashable]:
        """The piece failed its hash: fetch it again; returns the peers that sent its blocks."""
        partial = self._drop_partial(index)
        self._add_candidate(index)
        return set(partial.sources.values()) if partial is not None else set()

    def _drop_partial(self, index: int) -> _Partial | None:
        partial = self._partial.pop(index, None)
        if partial is not None:
            for block, requesters in partial.requesters.items():
                for requester in requesters:
                    self._peer_blocks.get(requester, set()).discard((index, block))
        return partial

    def block_sources(self, index: int) -> dict[int, Hashable]:
        """``begin -> peer`` for the received blocks of a piece in progress."""
        partial = self._partial.get(index)
        if partial is None:
            return {}
        return {block * self.block_size: peer for block, peer in partial.sources.items()}

    # -------------------------------------------------------------- queries

    def requests_of(self, peer: Hashable) -> list[Request]:
        """Blocks currently assigned to ``peer``."""
        return [self._request(index, block) for index, block in self._peer_blocks.get(peer, ())]

    def is_complete(self) -> bool:
        """Every wanted piece (priority > 0) is verified."""
        return not self._key and not any(self._priority[index] > 0 for index in self._partial)

    def wanted_remaining(self) -> int:
        """Wanted pieces not yet verified."""
        return len(self._key) + sum(1 for i in self._partial if self._priority[i] > 0)

    def partial_pieces(self) -> list[int]:
        return list(self._partial)


def priorities_from_files(
    file_ranges: Iterable[tuple[int, int, int]], num_pieces: int, piece_length: int
) -> list[int]:
    """Per-piece priorities from ``(offset, length, priority)`` of each file in piece space.

    A piece shared by several files takes the highest priority among them,
    so a wanted file's boundary pieces are still fetched.
    """
    result = [0] * num_pieces
    for offset, length, priority in file_ranges:
        if length <= 0:
            continue
        first = offset // piece_length
        last = min((offset + length - 1) // piece_length, num_pieces - 1)
        for index in range(first, last + 1):
            result[index] = max(result[index], priority)
    return result

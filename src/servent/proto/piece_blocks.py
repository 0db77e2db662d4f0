"""Per-piece block state of the picker and what it answers for an arriving block.

A :class:`PartialPiece` hands out its own blocks (first free ones, or
endgame duplicates) in one call per piece, so the picker's loops stay per
piece, never per block.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from servent.proto.peerwire.messages import Request
from servent.proto.peerwire.requests import BlockKey

#: Block states in :attr:`PartialPiece.state`.
FREE, REQUESTED, RECEIVED = 0, 1, 2
_REQUESTED = bytes([REQUESTED])


@dataclass(slots=True)
class PartialPiece:
    """A piece in progress: per-block state, requesters and sources."""

    index: int
    size: int
    block_size: int
    state: bytearray
    #: ``block -> peer`` asked for it, or a list of peers (endgame duplicates only).
    requesters: dict[int, Any] = field(default_factory=dict)
    sources: dict[int, Hashable] = field(default_factory=dict)
    free: int = 0
    received: int = 0
    #: The picker's integer key of block 0 (``index * blocks_per_piece``): the
    #: peers' sets hold ``key0 + block``.
    key0: int = 0

    @classmethod
    def start(cls, index: int, size: int, block_size: int, key0: int = 0) -> PartialPiece:
        blocks = -(-size // block_size)
        return cls(index, size, block_size, bytearray(blocks), free=blocks, key0=key0)

    def take_free(self, peer: Hashable, wanted: int, mine: set[int], out: list[BlockKey]) -> None:
        """Up to ``wanted`` free blocks, now requested from ``peer``, appended to ``out``."""
        index, size, block_size = self.index, self.size, self.block_size
        state = self.state
        block = state.find(FREE)
        while wanted > 0 and block >= 0:
            # a run of free blocks at once (a new piece is one run): C loops, not Python ones
            stop = min(block + wanted, len(state))
            for taken in (state.find(REQUESTED, block, stop), state.find(RECEIVED, block, stop)):
                if taken >= 0:
                    stop = min(stop, taken)
            run = range(block, stop)
            state[block:stop] = _REQUESTED * len(run)
            self.free -= len(run)
            self.requesters.update(dict.fromkeys(run, peer))
            mine.update(range(self.key0 + block, self.key0 + stop))
            out.extend(zip(repeat(index), range(block * block_size, stop * block_size, block_size),
                           repeat(block_size)))  # fmt: skip
            last = (stop - 1) * block_size
            if size - last < block_size:  # the piece's short last block
                out[-1] = (index, last, size - last)
            wanted -= len(run)
            block = state.find(FREE, stop)

    def sources_by_begin(self, key: Callable[[Any], Any] | None = None) -> dict[int, Any]:
        """``begin -> peer`` (or ``key(peer)``) of the received blocks.

        One comprehension (``dict(zip(...))`` of the same is twice as slow): it
        runs once per piece, over every block.
        """
        size = self.block_size
        if key is None:
            return {block * size: peer for block, peer in self.sources.items()}
        return {block * size: key(peer) for block, peer in self.sources.items()}

    def take_duplicates(
        self,
        peer: Hashable,
        count: int,
        max_requesters: int,
        mine: set[int],
        out: list[BlockKey],
    ) -> bool:
        """Endgame: blocks in flight from other peers (below ``max_requesters`` each) also
        requested from ``peer``, until ``out`` holds ``count``; False once it is full."""
        index, size, block_size = self.index, self.size, self.block_size
        state = self.state
        requesters_of = self.requesters
        for block, asked in requesters_of.items():  # values replaced, no key added
            if len(out) >= count:
                return False
            requesters = asked if type(asked) is list else [asked]
            if (
                state[block] == REQUESTED
                and peer not in requesters
                and len(requesters) < max_requesters
            ):
                requesters_of[block] = [*requesters, peer]
                mine.add(self.key0 + block)
                begin = block * block_size
                out.append((index, begin, min(block_size, size - begin)))
        return True

    def receive(
        self, block: int, peer: Hashable, peer_blocks: dict[Hashable, set[int]]
    ) -> list[Any]:
        """``block`` arrived from ``peer``: received, off its requesters' sets in
        ``peer_blocks``; returns the other peers that were asked for it."""
        self.state[block] = RECEIVED
        self.received += 1
        self.sources[block] = peer
        asked = self.requesters.pop(block, None)
        if asked is None:
            return []
        key = self.key0 + block
        others = []
        for requester in asked if type(asked) is list else (asked,):
            mine = peer_blocks.get(requester)
            if mine is not None:
                mine.discard(key)
            if requester != peer:
                others.append(requester)
        return others

    def asked(self) -> Iterator[tuple[Any, int]]:
        """``(peer, key)`` for each block in flight and each peer asked for it."""
        key0 = self.key0
        for block, asked in self.requesters.items():
            for peer in asked if type(asked) is list else (asked,):
                yield peer, key0 + block

    def release(self, peer: Hashable, block: int) -> None:
        """``peer`` will not send ``block``: free it when nobody else was asked."""
        requesters = self.requesters.get(block)
        if type(requesters) is list:
            if peer not in requesters:
                return
            requesters.remove(peer)
            if requesters:
                return
        elif requesters is None or requesters != peer:
            return
        del self.requesters[block]
        if self.state[block] == REQUESTED:
            self.state[block] = FREE
            self.free += 1


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    """What :meth:`~servent.proto.picker.PiecePicker.on_block_received` decided about one block."""

    #: False for a block we already had (endgame duplicate) or never asked anyone for.
    accepted: bool
    #: All blocks of the piece are in: hand it to storage for verification.
    piece_complete: bool
    #: ``(peer, request)`` pairs to cancel: other peers asked for this same block.
    cancels: tuple[tuple[Hashable, Request], ...] = ()


REJECTED = BlockOutcome(False, False)
ACCEPTED = BlockOutcome(True, False)
COMPLETED = BlockOutcome(True, True)

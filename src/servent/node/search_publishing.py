"""Publishing a node's search entries: to its registrars as a leaf, to the responsible
supernodes as a supernode, and handing entries over to a supernode that joins.

A mixin of :class:`~servent.node.search_service.SearchService` (its state lives there).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from servent.net.search_driver import store_messages
from servent.node.search_index import SearchIndex
from servent.node.search_results import file_entry, person_entry
from servent.proto.search import (
    SUPERNODE,
    KeywordIndexStore,
    SearchEntry,
    StoreAnswer,
    SupernodeView,
    keyword_key,
    keywords,
    node_position,
)
from servent.proto.search.supernodes import RESPONSIBLE

if TYPE_CHECKING:
    from servent.node.search_host import SearchHost

__all__ = ["REGISTRARS", "SearchPublishing"]

REGISTRARS = 2
REQUEST_TIMEOUT = 10.0
#: Keywords looked at between two yields to the event loop during a handoff.
HANDOFF_SLICE = 200


class SearchPublishing:
    """What a node tells the keyword index about itself, and when."""

    node: SearchHost
    index: SearchIndex
    store: KeywordIndexStore
    view: SupernodeView[bytes]
    addresses: dict[bytes, tuple[str, int]]
    registrars: list[bytes]
    _rng: random.Random

    if TYPE_CHECKING:

        @property
        def key(self) -> bytes: ...

        @property
        def role(self) -> str: ...

        def _own_address(self) -> tuple[str, int] | None: ...

        async def _collect(
            self, address: tuple[str, int], key: bytes | None, request: Any, within: float
        ) -> list[tuple[bytes, Any]]: ...

    def _pick_registrars(self) -> bool:
        """Keep two registrars among the known supernodes; True when they changed."""
        before = list(self.registrars)
        self.registrars = [k for k in self.registrars if k in self.view]
        candidates = [k for k in self.view if k not in self.registrars and k != self.key]
        self._rng.shuffle(candidates)
        self.registrars += candidates[: REGISTRARS - len(self.registrars)]
        return self.registrars != before

    def own_entries(self, now: float) -> list[SearchEntry]:
        """What this node publishes: its complete torrents (if searchable), its name."""
        address = self._own_address()
        if address is None:
            return []
        sign = self.node.identity.sign
        entries: list[SearchEntry] = []
        if self.node.config.searchable:
            for torrent in self.index.answerable():
                entries.append(file_entry(torrent, self.key, address, now, sign))
        if self.node.config.name:
            entries.append(person_entry(self.node.config.name, self.key, address, now, sign))
        return entries

    async def publish(self) -> None:
        entries = self.own_entries(time.time())
        if not entries:
            return
        if self.role == SUPERNODE:
            self.store.store_many(entries, time.time())
            await self._forward(entries, exclude=self.key)
            return
        self._pick_registrars()
        await asyncio.gather(*(self._send_store(k, entries, forward=True) for k in self.registrars))

    async def _send_store(
        self, key: bytes, entries: Sequence[SearchEntry], *, forward: bool
    ) -> bool:
        """Store ``entries`` at ``key`` in chunks; False when it did not answer."""
        address = self.addresses.get(key)
        if address is None:
            return False
        for chunk in store_messages(entries, forward=forward):
            answers = await self._collect(address, key, chunk, REQUEST_TIMEOUT)
            if not any(isinstance(m, StoreAnswer) for _, m in answers):
                self.view.failed(key)
                return False
        self.view.succeeded(key)
        return True

    async def _forward(
        self, entries: Sequence[SearchEntry], *, exclude: bytes, failed: bytes | None = None
    ) -> None:
        """Each entry to the supernodes responsible for its keywords (this one keeps its
        own); what a supernode did not take goes once more to the next closest."""
        targets: dict[bytes, list[SearchEntry]] = {}
        for entry in entries:
            for word in keywords(entry.texts):
                chosen = self.view.responsible(keyword_key(word), RESPONSIBLE + 1)
                for target in [k for k in chosen if k != failed][:RESPONSIBLE]:
                    if target == self.key:
                        self.store.store(entry, time.time())
                    elif target != exclude:
                        batch = targets.setdefault(target, [])
                        if entry not in batch:
                            batch.append(entry)
        keys = list(targets)
        stored = await asyncio.gather(
            *(self._send_store(k, targets[k], forward=False) for k in keys)
        )
        if failed is None:
            for key, done in zip(keys, stored, strict=True):
                if not done:
                    await self._forward(targets[key], exclude=exclude, failed=key)

    async def _hand_over(self, newcomer: bytes) -> None:
        """Send a new supernode the entries it is now responsible for (Kad's handoff).

        Only the supernodes next to the newcomer in key space hold such entries, so
        the others do nothing; the scan yields to the event loop as it goes."""
        near = self.view.responsible(node_position(newcomer), 2 * RESPONSIBLE)
        if self.key not in near:
            return
        handed: dict[tuple[bytes, bytes, bytes], SearchEntry] = {}
        for scanned, (word, bucket) in enumerate(self.store.buckets()):
            if newcomer in self.view.responsible(keyword_key(word), RESPONSIBLE):
                handed.update((entry.identity, entry) for entry in bucket)
            if scanned % HANDOFF_SLICE == HANDOFF_SLICE - 1:
                await asyncio.sleep(0)
        if handed:
            await self._send_store(newcomer, list(handed.values()), forward=False)

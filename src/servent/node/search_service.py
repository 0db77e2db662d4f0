"""Search by name on a running node: the local index, the keyword index, supernodes.

:class:`SearchService` keeps the local index in step with the node's torrents,
decides the node's role (``supernode`` setting), finds supernodes, publishes
the node's signed entries (to its registrars as a leaf, to the responsible
supernodes as a supernode) every 30 minutes and when its shares change,
answers ``servent/search/1`` requests, and runs the user's searches: the
local index, the neighbours and the keyword index at once, merged as answers
arrive (``docs/search.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from servent.errors import NodeError, ServentError
from servent.net.owned_tasks import cancel_and_wait
from servent.net.search_driver import SearchResponder, ask
from servent.node.search_discovery import REACH_CHECK_EVERY, RENDEZVOUS_EVERY, SearchDiscovery
from servent.node.search_index import SearchIndex
from servent.node.search_publishing import SearchPublishing
from servent.node.search_results import file_entry, magnet_of, person_entry, short_id
from servent.node.search_sync import IndexSync
from servent.proto.search import (
    INDEX,
    LOCAL,
    ROUTE,
    SUPERNODE,
    AnswererScores,
    KeywordIndexStore,
    Query,
    QueryResults,
    ResultBatch,
    SearchEntry,
    SearchProtocolError,
    SearchResult,
    Store,
    StoreAnswer,
    SupernodeView,
    decide_role,
    keyword_key,
    matches,
    node_position,
    rarest_keyword,
    verify_entry,
)
from servent.proto.search.limits import RequestLimiter
from servent.proto.search.supernodes import QUERY_FANOUT

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.node.search_host import SearchHost

__all__ = ["SearchService"]

log = logging.getLogger(__name__)

REPUBLISH = 1800.0
REFRESH = 300.0
MAX_NEIGHBOURS = 32
RECENT_RESULTS = 1000
ROUTE_TIMEOUT = 1.5


class SearchService(SearchDiscovery, SearchPublishing):
    """One node's part in search; see the module docstring."""

    def __init__(self, node: SearchHost, dht: Callable[[], DhtDriver | None]) -> None:
        self.node = node
        self.dht = dht
        self.running = False
        #: Torrents kept out of the index (an invite-only network's; ``docs/networks.md``).
        self.hidden: Callable[[bytes], bool] = lambda info_hash: False
        #: Opened by :meth:`start` (the node's data directory is ready then).
        self.index: SearchIndex
        self.sync: IndexSync
        self.store = KeywordIndexStore()
        self.view: SupernodeView[bytes] = SupernodeView()
        self.addresses: dict[bytes, tuple[str, int]] = {}
        self.registrars: list[bytes] = []
        self.scores = AnswererScores()
        self.limiter = RequestLimiter()
        self.recent: OrderedDict[str, str] = OrderedDict()
        self.reachable = False
        self._address_keys: dict[tuple[str, int], bytes] = {}
        self._last_rendezvous = -RENDEZVOUS_EVERY
        self._last_reach_check = -REACH_CHECK_EVERY
        self._started_at = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._rng = random.Random(os.urandom(8))

    # -- lifecycle ------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        return self.node.identity.public_key

    @property
    def role(self) -> str:
        uptime = time.monotonic() - self._started_at
        return decide_role(self.node.config.supernode, reachable=self.reachable, uptime=uptime)

    async def start(self) -> None:
        """Serve and search over node channels; nothing when the node has none."""
        try:
            channels = self.node.channels
        except NodeError:
            return
        self.index = SearchIndex(self.node.config.data_dir)
        self.sync = IndexSync(self.node, self.index, on_change=self._shares_changed)
        self.sync.hidden = self.hidden
        self.running = True
        responder = SearchResponder(self._answer, self._store, self._supernodes, self._bad_peer)
        responder.register(channels)
        await self.sync.full()
        self._spawn(self.sync.follow())
        self._spawn(self._maintain())

    async def close(self) -> None:
        if not self.running:
            return
        self.running = False
        await cancel_and_wait(self._tasks)
        self.index.close()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _shares_changed(self) -> None:
        self._wake.set()

    def status(self) -> dict[str, object]:
        return {
            "role": self.role,
            "supernodes_known": len(self.view),
            "registrars": len(self.registrars),
            "index_entries": len(self.store),
            "searchable": self.node.config.searchable,
        }

    # -- supernodes and publishing ----------------------------------------------------------

    async def _maintain(self) -> None:
        """Find supernodes (often at first, then every 5 minutes) and publish (every 30
        minutes, and soon after the shares or the supernodes changed)."""
        next_publish = 0.0
        refresh_wait = 1.0
        while True:
            try:
                if await self._maintain_once(next_publish):
                    next_publish = time.monotonic() + REPUBLISH * self._rng.uniform(0.9, 1.1)
            except Exception:  # one bad round must not end search on this node
                log.exception("search maintenance failed; trying again later")
            refresh_wait = min(REFRESH, refresh_wait * 2)
            with contextlib.suppress(TimeoutError):
                until_publish = next_publish - time.monotonic()
                async with asyncio.timeout(max(1.0, min(refresh_wait, until_publish))):
                    await self._wake.wait()

    async def _maintain_once(self, next_publish: float) -> bool:
        """One round of :meth:`_maintain`; True when it published."""
        if self.role == SUPERNODE:
            self._know(self.key, self._own_address())
        with contextlib.suppress(ServentError, OSError):
            await self._refresh_supernodes()
        if self.role != SUPERNODE and self._pick_registrars():
            self._wake.set()
        await self._check_reachable()
        self.store.expire(time.time())
        if time.monotonic() < next_publish and not self._wake.is_set():
            return False
        self._wake.clear()
        with contextlib.suppress(ServentError, OSError):
            await self.publish()
        return True

    def _own_address(self) -> tuple[str, int] | None:
        return self.node.peer_address()

    def _know(self, key: bytes, address: tuple[str, int] | None) -> None:
        if address is None:
            return
        self.addresses[key] = address
        # A new supernode changes no registrar (a leaf publishes again when its
        # registrars change) and gets its share of this store by handoff.
        added = self.view.add(key, node_position(key))
        if added and key != self.key and self.role == SUPERNODE and len(self.store):
            self._spawn(self._hand_over(key))

    async def _collect(
        self, address: tuple[str, int], key: bytes | None, request: Any, within: float
    ) -> list[tuple[bytes, Any]]:
        found: list[tuple[bytes, Any]] = []
        try:
            async for answer in ask(self.node.channels, address, key, request, within=within):
                found.append(answer)
        except SearchProtocolError:
            if key is not None:
                self._bad_peer(key)
        return found

    # -- answering ----------------------------------------------------------------------

    def _bad_peer(self, peer: bytes) -> None:
        self.scores.record(peer, 0, 1, time.time())

    def _note_inbound(self, peer: bytes) -> None:
        for channel in self.node.channels.channels.get(peer, []):
            transport = channel.transport
            name = transport.get_extra_info("peername") if transport is not None else None
            if name and not channel.conn.initiator and _is_global(str(name[0])):
                self.reachable = True

    def local_answers(self, text: str, people: bool, limit: int) -> list[SearchEntry]:
        """Entries from this node's own index (and its name) that match ``text``."""
        now = time.time()
        address = self._own_address()
        if address is None or (not self.node.config.searchable and not people):
            return []
        sign = self.node.identity.sign
        if people:
            name = self.node.config.name
            if name and matches(text, [name]):
                return [person_entry(name, self.key, address, now, sign)]
            return []
        found = self.index.search(text, limit=limit, answerable_only=True)
        return [file_entry(torrent, self.key, address, now, sign) for torrent in found]

    def _admit(self, peer: bytes) -> bool:
        """A request from ``peer`` is served unless it is blocked or over its rate."""
        self._note_inbound(peer)
        now = time.time()
        return not self.scores.blocked(peer, now) and self.limiter.allow(peer, now)

    async def _answer(self, query: Query, peer: bytes) -> AsyncIterator[Sequence[SearchEntry]]:
        if not self._admit(peer):
            return
        yield self.local_answers(query.text, query.people, query.limit)
        if query.scope == LOCAL or self.role != SUPERNODE:
            return
        now = time.time()
        yield self.store.lookup(query.text, now, people=query.people, limit=query.limit)
        if query.scope != ROUTE:
            return
        relayed = Query(query.id, query.text, query.people, query.limit, INDEX)
        async for _, entries in self._fan_out(self._responsible(query.text, peer), relayed):
            yield entries

    def _responsible(self, text: str, exclude: bytes) -> list[bytes]:
        rarest = rarest_keyword(text)
        if rarest is None:
            return []
        chosen = self.view.responsible(keyword_key(rarest), QUERY_FANOUT)
        return [k for k in chosen if k not in (self.key, exclude)]

    async def _fan_out(
        self, keys: Sequence[bytes], query: Query, within: float = ROUTE_TIMEOUT
    ) -> AsyncIterator[tuple[bytes, Sequence[SearchEntry]]]:
        """Ask ``keys`` at once; batches as they arrive, until all answered or the time is up."""
        queue: asyncio.Queue[tuple[bytes, Sequence[SearchEntry]] | None] = asyncio.Queue()

        async def one(key: bytes) -> None:
            try:
                address = self.addresses.get(key)
                if address is not None:
                    await self._relay_answers(address, key, query, within, queue)
            finally:
                queue.put_nowait(None)

        tasks = [asyncio.get_running_loop().create_task(one(k)) for k in keys]
        try:
            for _ in range(len(tasks)):
                while (item := await queue.get()) is not None:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay_answers(
        self,
        address: tuple[str, int],
        key: bytes | None,
        query: Query,
        within: float,
        queue: asyncio.Queue[tuple[bytes, Sequence[SearchEntry]] | None],
    ) -> None:
        try:
            async for peer, message in ask(self.node.channels, address, key, query, within=within):
                if isinstance(message, ResultBatch) and message.id == query.id:
                    queue.put_nowait((peer, message.entries))
        except SearchProtocolError:
            if key is not None:
                self._bad_peer(key)

    async def _store(self, store: Store, peer: bytes) -> StoreAnswer:
        now = time.time()
        if self.role != SUPERNODE or not self._admit(peer):
            return StoreAnswer(0, len(store.entries))
        good = [e for e in store.entries if verify_entry(e)]
        bad = len(store.entries) - len(good)
        self.scores.record(peer, 0, bad, now)
        stored, refused = self.store.store_many(good, now)
        if store.forward and good:
            self._spawn(self._forward(good, exclude=peer))
        return StoreAnswer(stored, refused + bad)

    # -- searching ------------------------------------------------------------------------

    async def search(
        self, text: str, *, limit: int = 50, within: float = 2.0, people: bool = False
    ) -> AsyncIterator[SearchResult]:
        """Results (new, or with one more source) as they arrive, until done or timed out."""
        results = QueryResults(text, people=people, limit=limit, verify=verify_entry)
        query_id = os.urandom(8)
        now = time.time()
        own = self.local_answers(text, people, limit)
        if self.role == SUPERNODE:
            own += self.store.lookup(text, now, people=people, limit=limit)
        for result in results.add(own, now)[0]:
            yield self._remember(result)
        asked: dict[bytes, int] = {}
        for channel in list(self.node.channels.connected())[:MAX_NEIGHBOURS]:
            if channel.peer_key is not None:
                asked[channel.peer_key] = LOCAL
        if self.role == SUPERNODE or not self.registrars:
            for key in self._responsible(text, self.key):
                asked[key] = INDEX
        else:
            for key in self.registrars:
                asked[key] = ROUTE
        asked.pop(self.key, None)
        blocked = [k for k in asked if self.scores.blocked(k, now)]
        for key in blocked:
            del asked[key]
        query = Query(query_id, text, people, limit, LOCAL)
        async for result in self._gather(results, asked, query, within=within):
            yield self._remember(result)

    async def _gather(
        self, results: QueryResults, asked: dict[bytes, int], asking: Query, *, within: float
    ) -> AsyncIterator[SearchResult]:
        queue: asyncio.Queue[tuple[bytes, Sequence[SearchEntry]] | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def one(key: bytes, scope: int) -> None:
            try:
                address = self.addresses.get(key) or self._channel_address(key)
                query = dataclasses.replace(asking, scope=scope)
                if address is not None:
                    await self._relay_answers(address, key, query, within, queue)
            finally:
                queue.put_nowait(None)

        tasks = [loop.create_task(one(k, s)) for k, s in asked.items()]
        running = len(tasks)
        try:
            async with asyncio.timeout(within):
                while running and len(results) < asking.limit:
                    item = await queue.get()
                    if item is None:
                        running -= 1
                        continue
                    changed, bad = results.add(item[1], time.time())
                    self.scores.record(item[0], len(changed), bad, time.time())
                    for result in changed:
                        yield result
        except TimeoutError:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _channel_address(self, key: bytes) -> tuple[str, int] | None:
        for channel in self.node.channels.channels.get(key, []):
            transport = channel.transport
            name = transport.get_extra_info("peername") if transport is not None else None
            if name:
                return (str(name[0]), int(name[1]))
        return None

    def _remember(self, result: SearchResult) -> SearchResult:
        if result.entry.info_hash:
            self.recent[short_id(result)] = magnet_of(result)
            self.recent.move_to_end(short_id(result))
            while len(self.recent) > RECENT_RESULTS:
                self.recent.popitem(last=False)
        return result

    def magnet_for(self, short: str) -> str | None:
        """The magnet (with its sources) of a recent result, by its short ID."""
        return self.recent.get(short.lower())


def _is_global(host: str) -> bool:
    """A public address (a link-local one may carry a ``%scope``: not public)."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return False

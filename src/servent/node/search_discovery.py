"""Finding supernodes and being found: bootstrap nodes, the DHT rendezvous, ``sn``
lists, and whether this node is reachable enough for ``supernode = auto``.

A mixin of :class:`~servent.node.search_service.SearchService` (its state lives there).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from servent.codec.compact import decode_peer, encode_peer
from servent.errors import ServentError
from servent.proto.search import (
    SUPERNODE,
    SupernodeAsk,
    SupernodeList,
    SupernodeView,
)
from servent.proto.search.supernodes import UPTIME_THRESHOLD

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.node.search_host import SearchHost

__all__ = ["REACH_CHECK_EVERY", "RENDEZVOUS_EVERY", "SearchDiscovery"]

#: Supernodes announce under this info-hash in the DHT (docs/search.md §5).
RENDEZVOUS = hashlib.sha1(b"servent-search/1 supernodes").digest()
RENDEZVOUS_SEARCHING = 10.0
RENDEZVOUS_EVERY = 900.0
RENDEZVOUS_TIMEOUT = 20.0
RENDEZVOUS_ASKED = 8
REACH_TIMEOUT = 20.0
REACH_CHECK_EVERY = 1800.0


class SearchDiscovery:
    """Which supernodes exist, and whether this node could be one."""

    node: SearchHost
    dht: Callable[[], DhtDriver | None]
    view: SupernodeView[bytes]
    addresses: dict[bytes, tuple[str, int]]
    reachable: bool
    _address_keys: dict[tuple[str, int], bytes]
    _last_rendezvous: float
    _last_reach_check: float
    _started_at: float
    _rng: random.Random

    if TYPE_CHECKING:

        @property
        def key(self) -> bytes: ...

        @property
        def role(self) -> str: ...

        def _own_address(self) -> tuple[str, int] | None: ...

        def _know(self, key: bytes, address: tuple[str, int] | None) -> None: ...

        def _admit(self, peer: bytes) -> bool: ...

        async def _collect(
            self, address: tuple[str, int], key: bytes | None, request: Any, within: float
        ) -> list[tuple[bytes, Any]]: ...

    async def _refresh_supernodes(self) -> None:
        """Ask the bootstrap nodes, supernodes found in the DHT and three known supernodes
        for the supernodes they know."""
        address = self._own_address()
        request = SupernodeAsk(self.role == SUPERNODE, address[1] if address else 0)
        entry_points = [_split(text) for text in self.node.config.search_bootstrap]
        entry_points += await self._rendezvous(address)
        targets = [(a, self._address_keys.get(a)) for a in dict.fromkeys(entry_points)]
        known = [k for k in self.view if k != self.key]
        for key in self._rng.sample(known, min(3, len(known))):
            targets.append((self.addresses[key], key))
        answers = await asyncio.gather(
            *(self._collect(addr, key, request, 5.0) for addr, key in targets)
        )
        for (target, asked), messages in zip(targets, answers, strict=True):
            if asked is not None and not messages and self.view.failed(asked):
                self.addresses.pop(asked, None)
            for peer, _ in messages[:1]:
                self._address_keys[target] = peer
            for _, message in messages:
                if isinstance(message, SupernodeList):
                    for node_key, compact in message.supernodes:
                        if node_key != self.key:
                            self._know(node_key, decode_peer(compact))

    async def _rendezvous(self, own: tuple[str, int] | None) -> list[tuple[str, int]]:
        """Supernodes announce themselves in the DHT under one info-hash; look there now and
        then (often while few supernodes are known). Nothing when the DHT is off."""
        dht = self.dht()
        now = time.monotonic()
        every = RENDEZVOUS_SEARCHING if len(self.view) < 4 else RENDEZVOUS_EVERY
        if dht is None or now - self._last_rendezvous < every:
            return []
        self._last_rendezvous = now
        try:
            async with asyncio.timeout(RENDEZVOUS_TIMEOUT):
                if self.role == SUPERNODE and own is not None:
                    found = (await dht.announce(RENDEZVOUS, own[1])).peers
                else:
                    found = (await dht.get_peers(RENDEZVOUS)).peers
        except (TimeoutError, ServentError, OSError):
            return []
        mine = {own} if own is None else {own, (dht.external_ip or "", own[1])}
        others = [peer for peer in found if peer not in mine]
        return self._rng.sample(others, min(RENDEZVOUS_ASKED, len(others)))

    async def _check_reachable(self) -> None:
        """With ``supernode = auto``, once up long enough: take the node's reachability
        verdict, and when it is not known, ask a known supernode to connect back
        (``servent/reach/1``, docs/reachability.md; every 30 minutes at most)."""
        uptime = time.monotonic() - self._started_at
        if self.node.config.supernode != "auto" or self.reachable or uptime < UPTIME_THRESHOLD:
            return
        verdict = self.node.reachability().reachable
        if verdict is not None:
            self.reachable = verdict
            return
        if time.monotonic() - self._last_reach_check >= REACH_CHECK_EVERY:
            self._last_reach_check = time.monotonic()
            await self.check_reachable()

    async def check_reachable(self) -> bool:
        """Ask a known supernode to connect back to this node; whether it could."""
        others = [k for k in self.view if k != self.key]
        if not others:
            return self.reachable
        key = self._rng.choice(others)
        try:
            async with asyncio.timeout(REACH_TIMEOUT):
                channel = await self.node.channels.connect(key, [self.addresses[key]])
                verdict = await self.node.check_reachable(channel)
        except (ServentError, OSError, TimeoutError):
            return self.reachable
        self.reachable = verdict.reachable is True
        return self.reachable

    def _supernodes(self, ask_: SupernodeAsk, peer: bytes, host: str) -> SupernodeList:
        if not self._admit(peer):
            return SupernodeList(())
        if ask_.is_supernode and ask_.port and host:
            self._know(peer, (host, ask_.port))
        listed: list[tuple[bytes, bytes]] = []
        own = self._own_address()
        if self.role == SUPERNODE and own is not None:
            listed.append((self.key, encode_peer(own)))
        for key in self.view:
            address = self.addresses.get(key)
            if address is not None and key not in (peer, self.key):
                with contextlib.suppress(ServentError, ValueError):
                    listed.append((key, encode_peer(address)))
            if len(listed) >= 200:
                break
        return SupernodeList(tuple(listed))


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)

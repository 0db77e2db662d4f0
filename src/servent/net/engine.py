"""The swarm engine: many torrents, one listener, node-wide limits.

:class:`SwarmEngine` owns the listening socket(s), the global connection
budget and rate buckets, and one :class:`TorrentSession` owner task per
torrent (kept in a registry and cancelled on :meth:`SwarmEngine.close`).
Torrents are found by their wire info-hash and, for hybrid torrents, by the
truncated v2 hash too, since peers may use either in their handshake.

Usage::

    async with SwarmEngine(EngineConfig(listen_host="127.0.0.1")) as engine:
        torrent = await engine.add_torrent(metainfo, "downloads", peers=[("::1", 6881)])
        await torrent.wait_complete()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from servent import __version__
from servent.codec.metainfo import Metainfo
from servent.errors import ServentError
from servent.net.known_peers import Address
from servent.net.limits import GlobalLimits
from servent.net.listener import PeerListener
from servent.net.torrent_session import TorrentConfig, TorrentSession
from servent.proto.peerwire import ConnectionConfig
from servent.storage import TorrentStorage

__all__ = ["EngineConfig", "SwarmEngine", "make_peer_id"]

log = logging.getLogger(__name__)


def make_peer_id(rng: random.Random | None = None) -> bytes:
    """An Azureus-style peer id: ``-SVxyzw-`` and 12 random printable bytes."""
    digits = "".join(part.zfill(1)[:1] for part in __version__.split(".")[:3])
    prefix = f"-SV{digits:0<4}-".encode()
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    source = rng or random.SystemRandom()
    return prefix + bytes(source.choice(alphabet) for _ in range(20 - len(prefix)))


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Node-wide settings.  ``listen_host`` ``None`` = every IPv4 and IPv6 address."""

    listen_host: str | None = None
    listen_port: int = 0
    listen: bool = True
    max_connections: int | None = 200
    download_rate: float | None = None
    upload_rate: float | None = None
    #: Upload slots shared by all torrents (each also has its own ``upload_slots``).
    upload_slots: int | None = 16
    connection: ConnectionConfig = field(default_factory=ConnectionConfig)


class SwarmEngine:
    """Runs torrents; see the module docstring."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        peer_id: bytes | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.rng = rng or random.Random(int.from_bytes(os.urandom(8), "big"))
        self.peer_id = peer_id or make_peer_id(self.rng)
        self.torrents: dict[bytes, TorrentSession] = {}
        self._runs: dict[TorrentSession, asyncio.Task[None]] = {}
        self._storages: dict[TorrentSession, TorrentStorage] = {}
        self.limits: GlobalLimits | None = None
        self.listener: PeerListener | None = None

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        self.limits = GlobalLimits(
            max_connections=config.max_connections,
            download_rate=config.download_rate,
            upload_rate=config.upload_rate,
            now=loop.time(),
        )
        if config.listen:
            self.listener = PeerListener(
                peer_id=self.peer_id,
                lookup=self.torrents.get,
                limits=self.limits,
                host=config.listen_host,
                port=config.listen_port,
                config=config.connection,
            )
            await self.listener.start()

    async def close(self) -> None:
        """Stop every torrent, close storage and the listener."""
        for torrent in list(self._runs):
            await self.remove_torrent(torrent)
        if self.listener is not None:
            await self.listener.close()

    async def __aenter__(self) -> SwarmEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The TCP port peers reach us on (0 when not listening)."""
        return self.listener.port if self.listener is not None else 0

    @property
    def listen_addresses(self) -> list[tuple[str, int]]:
        return list(self.listener.addresses) if self.listener is not None else []

    # ------------------------------------------------------------------ torrents

    async def add_torrent(
        self,
        metainfo: Metainfo,
        download_dir: Path | str | None = None,
        *,
        storage: TorrentStorage | None = None,
        config: TorrentConfig | None = None,
        peers: Iterable[Address] = (),
    ) -> TorrentSession:
        """Open the torrent's storage (resuming what was verified) and start its owner task."""
        if self.limits is None:
            raise RuntimeError("start the engine first")
        if metainfo.wire_info_hash in self.torrents:
            raise ServentError(f"torrent {metainfo.name!r} is already running")
        if storage is None:
            if download_dir is None:
                raise ValueError("give download_dir or storage")
            storage = TorrentStorage(metainfo, download_dir)
        await storage.open()
        config = self._with_slot_share(config or TorrentConfig())
        torrent = TorrentSession(
            metainfo,
            storage,
            peer_id=self.peer_id,
            config=config,
            limits=self.limits,
            rng=random.Random(self.rng.getrandbits(64)),
            listen_port=self.port or None,
        )
        torrent.add_peers(peers)
        self.torrents[metainfo.wire_info_hash] = torrent
        if metainfo.is_hybrid and metainfo.info_hash_v2 is not None:
            self.torrents[metainfo.info_hash_v2[:20]] = torrent
        if torrent.aria2_alias is not None:
            self.torrents[torrent.aria2_alias] = torrent
        self._storages[torrent] = storage
        self._runs[torrent] = asyncio.get_running_loop().create_task(
            torrent.run(), name=f"torrent {metainfo.name}"
        )
        return torrent

    def _with_slot_share(self, config: TorrentConfig) -> TorrentConfig:
        """Cap the torrent's upload slots by its share of the global slots."""
        total = self.config.upload_slots
        if total is None:
            return config
        share = max(1, total // (len(self._runs) + 1))
        slots = share if config.upload_slots is None else min(config.upload_slots, share)
        if slots == config.upload_slots:
            return config
        return replace(config, upload_slots=slots)

    async def remove_torrent(self, torrent: TorrentSession) -> None:
        """Stop the torrent's task, close its connections and its storage."""
        task = self._runs.pop(torrent, None)
        for key in [k for k, v in self.torrents.items() if v is torrent]:
            del self.torrents[key]
        torrent.stop()
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 10.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        storage = self._storages.pop(torrent, None)
        if storage is not None:
            await storage.close()

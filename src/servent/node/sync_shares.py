"""Synced shares on a node (``docs/sync.md``): the owner publishes versions, members follow.

A composed service: the node owns one and starts and stops it.  Every few
seconds the owner rescans each of its folders and, when it changed, seeds a
new torrent of it and puts the BEP 46 item with the next sequence number;
a member polls the item, downloads a newer version into a staging folder in
the node's data directory, and applies it to its folder keeping every
original (:mod:`servent.storage.sync_folder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.share_key import (
    SYNC_SALT,
    KeyKind,
    format_share_key,
    parse_share_key,
    public_key_of,
    share_id,
)
from servent.errors import NodeError, ServentError, TorrentNotFoundError
from servent.node.sync_records import SyncShare, load_shares, save_shares
from servent.proto.dht.items import mutable_target
from servent.proto.sync_plan import (
    RelPath,
    VersionError,
    decode_version_value,
    encode_version_value,
    plan_changes,
    supersedes,
)
from servent.storage.sync_folder import (
    apply_changes,
    folder_listing,
    folder_signature,
    prefill_staging,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from servent.net.dht_driver import DhtDriver
    from servent.node.config import Config
    from servent.node.state import StateStore
    from servent.node.status import AddResult, FileStatus, RemoveResult, TorrentStatus

__all__ = ["SyncShares"]

log = logging.getLogger(__name__)

#: Seconds between two rescans of an owned folder / two polls of a share's item.
SYNC_INTERVAL = 2.0
#: Roles that hold the private key and publish their changes.
WRITERS = ("owner", "read_write")
#: Seconds after which an owner puts its item again (BEP 44 items expire after 2 h).
REPUBLISH_INTERVAL = 600.0


class SyncHost(Protocol):
    """What synced shares use of their node (the node itself, seen from below)."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> StateStore: ...

    async def add_torrent(
        self,
        source: bytes | str | Path,
        save_path: str | Path | None = None,
        *,
        peers: Sequence[tuple[str, int]] = (),
    ) -> AddResult: ...

    async def remove(self, torrent_id: str, delete_data: bool = False) -> RemoveResult: ...

    def torrent(self, torrent_id: str) -> TorrentStatus: ...

    def files(self, torrent_id: str) -> list[FileStatus]: ...

    def peer_address(self) -> tuple[str, int] | None: ...


class SyncShares:
    """The synced shares of one node."""

    def __init__(self, node: SyncHost, dht: Callable[[], DhtDriver | None]) -> None:
        self._node = node
        self._dht = dht
        self._shares: dict[str, SyncShare] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._shares = load_shares(self._node.store)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="node-sync")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- the interface ----------------------------------------------------------

    async def create(self, folder: str | Path) -> dict[str, Any]:
        """Make ``folder`` a synced share owned by this node; its keys."""
        path = await asyncio.to_thread(_folder_path, folder, False)
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        public_key = public_key_of(seed)
        share = SyncShare(share_id(public_key), "owner", str(path), public_key, seed=seed)
        async with self._lock:
            self._check_free(path)
            self._shares[share.id] = share
            self._save()
            await self._owner_step(share)
        return {
            "id": share.id,
            "read_write_key": format_share_key(KeyKind.READ_WRITE, seed),
            "read_only_key": format_share_key(KeyKind.READ_ONLY, public_key),
            "encrypted_key": None,
        }

    async def join(self, key_text: str, folder: str | Path) -> dict[str, Any]:
        """Follow the share named by a pasted key in ``folder`` (made if missing)."""
        key = parse_share_key(key_text)
        path = await asyncio.to_thread(_folder_path, folder, True)
        public_key = key.public_key
        role = "read_write" if key.kind is KeyKind.READ_WRITE else "read_only"
        seed = key.key if key.kind is KeyKind.READ_WRITE else None
        share = SyncShare(share_id(public_key), role, str(path), public_key, seed=seed)
        async with self._lock:
            if share.id in self._shares:
                raise NodeError(f"this node has share {share.id} already")
            self._check_free(path)
            self._shares[share.id] = share
            self._save()
        return {"id": share.id, "role": role, "path": str(path)}

    def shares(self) -> list[dict[str, Any]]:
        return [self._describe(s) for s in self._shares.values()]

    def version_torrents(self, wanted: str) -> list[tuple[int, str]]:
        """(version, torrent id) of a share's current version and the one downloading."""
        share = self._shares.get(wanted)
        if share is None:
            return []
        pairs = [(share.seq, share.torrent_id), (share.pending_seq, share.pending_id)]
        return [(seq, torrent_id) for seq, torrent_id in pairs if torrent_id is not None]

    async def leave(self, wanted: str) -> None:
        """Stop syncing a share; its folder stays exactly as it is."""
        async with self._lock:
            share = self._shares.pop(wanted, None)
            if share is None:
                raise NodeError(f"no synced share {wanted}")
            self._save()
            for torrent_id in (share.torrent_id, share.pending_id):
                if torrent_id is not None:
                    await self._forget_torrent(share, torrent_id)

    # -- the loop ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            for share in list(self._shares.values()):
                try:
                    async with self._lock:
                        if share.id not in self._shares:
                            continue
                        if share.role in WRITERS:
                            await self._writer_step(share)
                        else:
                            await self._member_step(share)
                        self._save()
                except (ServentError, OSError, ValueError) as exc:  # retried next round
                    share.state = f"error: {exc}"
                    log.warning("sync %s: %s", share.id, exc)
                except Exception:  # a bug must not stop every other share
                    share.state = "error: internal"
                    log.exception("sync %s failed", share.id)
            await asyncio.sleep(SYNC_INTERVAL)

    async def _writer_step(self, share: SyncShare) -> None:
        """A key holder follows other writers' versions first, then publishes its own changes."""
        if await self._fetch_newer(share):
            await self._member_step(share)
            return
        await self._owner_step(share)

    async def _owner_step(self, share: SyncShare) -> None:
        path = Path(share.path)
        signature = await asyncio.to_thread(_signature_of, path)
        if signature != share.signature:
            if signature == _EMPTY:
                share.state = "empty"
                return
            await self._make_version(share, path)
            share.signature = signature
        if time.time() - share.published_at > REPUBLISH_INTERVAL:
            share.published = False
        if not share.published:
            await self._publish(share)

    async def _make_version(self, share: SyncShare, path: Path) -> None:
        """Seed a new hybrid torrent of the folder; the previous one stops."""
        from servent.storage.seed_resume import create_seeding_torrent, resume_key

        share.state = "hashing"
        metainfo, record = await asyncio.to_thread(create_seeding_torrent, path)
        share.unpublished = await asyncio.to_thread(folder_listing, path)
        torrent_id = metainfo.wire_info_hash.hex()
        if torrent_id != share.torrent_id:
            self._node.store.save(resume_key(metainfo), record.encode())
            added = await self._node.add_torrent(metainfo.to_bytes(), save_path=path.parent)
            old, share.torrent_id = share.torrent_id, added.id
            if old is not None:
                await self._node.remove(old, delete_data=False)  # the folder is the user's
        share.unpublished_hash = metainfo.info_hash_v1 or metainfo.wire_info_hash
        share.published = False

    async def _publish(self, share: SyncShare) -> None:
        driver = self._dht()
        info_hash = share.unpublished_hash or share.info_hash
        if driver is None or share.seed is None or info_hash is None:
            share.state = "not published (no DHT)"
            return
        address = self._node.peer_address()
        if address is not None:  # peers can be found before members learn of the version
            await driver.announce(info_hash, address[1])
        value = encode_version_value(info_hash)
        cas = share.seq or None
        done = await driver.put_mutable(
            share.seed, value, salt=SYNC_SALT, seq=share.seq + 1, cas=cas
        )
        if done.error is not None or done.stored == 0:
            share.state = f"not published ({done.error or 'no node stored it'})"
            return  # a newer version by another writer is fetched and merged first
        share.seq += 1
        share.published = True
        share.info_hash, share.unpublished_hash = info_hash, None
        if share.unpublished is not None:
            share.listing, share.unpublished = share.unpublished, None
            share.staged_name = Path(share.path).name
        share.published_at = time.time()
        share.state = "synced"

    async def _member_step(self, share: SyncShare) -> None:
        if share.pending_id is not None:
            await self._check_download(share)
            return
        await self._fetch_newer(share)

    async def _fetch_newer(self, share: SyncShare) -> bool:
        """Poll the item; start downloading a newer version.  Whether one is downloading."""
        if share.pending_id is not None:
            return True
        await self._poll(share)
        return share.pending_id is not None

    async def _poll(self, share: SyncShare) -> None:
        driver = self._dht()
        if driver is None:
            share.state = "waiting (no DHT)"
            return
        found = await driver.get_item(mutable_target(share.public_key, SYNC_SALT), salt=SYNC_SALT)
        if found.value is None or found.seq is None:
            share.state = "waiting for the owner"
            return
        if found.seq < share.seq:
            return  # a stale or replayed version
        try:
            info_hash = decode_version_value(found.value)
        except VersionError as exc:
            share.state = f"refused version {found.seq}: {exc}"
            return
        if info_hash in (share.info_hash, share.unpublished_hash):
            share.seq = max(share.seq, found.seq)  # a republish of the version we have
            share.state = "synced" if share.unpublished_hash is None else share.state
            return
        if not supersedes(found.seq, info_hash, share.seq, share.info_hash):
            return
        # Published at the same number as ours (a CAS race): merge with no
        # "previous" listing, so each of our edits becomes a conflict copy.
        share.merge_all = found.seq == share.seq
        staging = self._staging(share) / info_hash.hex()
        if share.info_hash is not None and share.staged_name is not None:
            # Files that did not change are verified in place, not downloaded again
            # (from the last staged version, or the folder when this node made it).
            previous = self._staging(share) / share.info_hash.hex() / share.staged_name
            source = previous if previous.is_dir() else Path(share.path)
            await asyncio.to_thread(prefill_staging, source, staging / share.staged_name)
        peers = (await driver.get_peers(info_hash)).peers
        magnet = f"magnet:?xt=urn:btih:{info_hash.hex()}"
        added = await self._node.add_torrent(magnet, staging, peers=peers)
        share.pending_id, share.pending_seq, share.pending_hash = added.id, found.seq, info_hash
        share.state = f"downloading version {found.seq}"

    async def _check_download(self, share: SyncShare) -> None:
        assert share.pending_id is not None
        try:
            status = self._node.torrent(share.pending_id)
        except TorrentNotFoundError:  # removed by hand: fetch the version again
            share.pending_id = None
            return
        if status.progress < 1.0 or status.size == 0 or status.state not in ("seeding", "finished"):
            share.state = f"downloading version {share.pending_seq} ({status.progress:.0%})"
            return
        staged = Path(status.save_path) / status.name
        folder = Path(share.path)
        # Only the torrent's files: staging may hold others, copied from the last version.
        wanted = {tuple(f.path.split("/")[1:]): f.size for f in self._node.files(share.pending_id)}
        listing, own_changes = await asyncio.to_thread(
            _apply_version, folder, staged, wanted, {} if share.merge_all else share.listing
        )
        share.merge_all = False
        if share.role in WRITERS:
            # Publish again only if the folder holds more than the version: conflict
            # copies or files added here.  Any unpublished version of ours is dropped:
            # its edits are in the folder still, and go into the next one.
            signature = await asyncio.to_thread(_signature_of, folder)
            share.signature = None if own_changes else signature
            share.unpublished = share.unpublished_hash = None
            share.published, share.published_at = True, time.time()
        old = share.torrent_id
        share.listing, share.seq, share.info_hash = listing, share.pending_seq, share.pending_hash
        share.torrent_id, share.pending_id = share.pending_id, None
        share.staged_name = status.name
        share.state = "synced"
        if old is not None and old != share.torrent_id:
            await self._forget_torrent(share, old)

    # -- helpers ----------------------------------------------------------------

    def _staging(self, share: SyncShare) -> Path:
        return self._node.config.data_dir / "sync" / share.id

    async def _forget_torrent(self, share: SyncShare, torrent_id: str) -> None:
        """Stop a version's torrent; a member's staged copy (never the folder) is deleted."""
        with contextlib.suppress(ServentError):
            await self._node.remove(torrent_id, delete_data=False)
        if share.role != "owner":
            staging = self._staging(share)
            for child in staging.glob("*"):
                if share.torrent_id is None or child.name != (share.info_hash or b"").hex():
                    await asyncio.to_thread(shutil.rmtree, child, True)

    def _check_free(self, path: Path) -> None:
        for other in self._shares.values():
            if Path(other.path) == path:
                raise NodeError(f"{str(path)!r} is synced already (share {other.id})")

    def _describe(self, share: SyncShare) -> dict[str, Any]:
        peers = 0
        for torrent_id in (share.pending_id, share.torrent_id):
            if torrent_id is not None:
                with contextlib.suppress(ServentError):
                    peers = max(peers, self._node.torrent(torrent_id).peers)
        return {
            "id": share.id,
            "role": share.role,
            "path": share.path,
            "version": share.seq,
            "peers": peers,
            "state": share.state,
        }

    def _save(self) -> None:
        save_shares(self._node.store, self._shares)


def _folder_path(folder: str | Path, make: bool) -> Path:
    path = Path(folder).expanduser().resolve()
    if make:
        path.mkdir(parents=True, exist_ok=True)
    if not path.is_dir():
        raise NodeError(f"{str(path)!r} is not a folder")
    return path


_EMPTY = hashlib.sha256(b"()").hexdigest()


def _signature_of(path: Path) -> str:
    return hashlib.sha256(repr(folder_signature(path)).encode()).hexdigest()


def _apply_version(
    folder: Path, staged: Path, wanted: dict[RelPath, int], previous: dict[RelPath, bytes]
) -> tuple[dict[RelPath, bytes], bool]:
    """Apply the version at ``staged`` (its files and sizes: ``wanted``) to ``folder``."""
    for rel, size in wanted.items():
        # A file copied from the last version may be longer than this version's:
        # its first ``size`` bytes are verified, the rest is the old tail.
        staged_file = staged.joinpath(*rel)
        if staged_file.stat().st_size > size:
            os.truncate(staged_file, size)
    new = {rel: digest for rel, digest in folder_listing(staged).items() if rel in wanted}
    if len(new) != len(wanted):
        raise NodeError(f"staged version at {str(staged)!r} lacks files")
    changes = plan_changes(previous, folder_listing(folder), new)
    apply_changes(folder, staged, changes)
    return new, folder_listing(folder) != new

"""Synced shares on a node (``docs/sync.md``): writers publish versions, members follow.

A composed service: the node owns one and starts and stops it.  Every few
seconds a writer rescans each of its folders and, when it changed, seals it
into its encrypted copy, seeds a torrent of that and puts the BEP 46 item
with the next sequence number; a member polls the item, downloads a newer
version over its encrypted copy (only changed pieces move), and a key holder
opens it into its folder keeping every original; an encrypted holder only
stores and seeds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    lock_share_key,
    parse_share_key,
    public_key_of,
    read_secret_of,
    share_id,
)
from servent.codec.sync_crypt import SyncCipher
from servent.errors import NodeError, ServentError, TorrentNotFoundError
from servent.node.sync_peers import PeerReasks, add_version
from servent.node.sync_push import SyncPush, push_frame
from servent.node.sync_records import SyncShare, load_shares, save_shares
from servent.node.sync_versions import (
    EMPTY_SIGNATURE,
    apply_version,
    folder_path,
    signature_of,
    store_version,
)
from servent.node.sync_watch import FolderWatcher
from servent.proto.dht.items import mutable_target
from servent.proto.sync_plan import (
    PushedVersion,
    RelPath,
    VersionError,
    decode_version_value,
    encode_version_value,
    supersedes,
)
from servent.storage.sync_store import encrypt_version

if TYPE_CHECKING:
    from collections.abc import Sequence

    from servent.codec.bencode import BValue
    from servent.net.channel_host import ChannelHost
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

    @property
    def channels(self) -> ChannelHost: ...


class SyncShares:
    """The synced shares of one node."""

    def __init__(self, node: SyncHost, dht: Callable[[], DhtDriver | None]) -> None:
        self._node = node
        self._dht = dht
        self._shares: dict[str, SyncShare] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a push or a folder change: go round at once
        self._pushed: dict[str, PushedVersion] = {}
        self._push = SyncPush(SYNC_SALT, self._on_pushed)
        self._heard: dict[str, int] = {}  # versions heard of by push, per share
        self._watcher = FolderWatcher(self.wake)
        self._reasks = PeerReasks()  # a download with no peers asks the DHT again

    async def start(self) -> None:
        self._shares = load_shares(self._node.store)
        try:
            self._push.start(self._node.channels)
        except NodeError:  # the node does not listen: polling only
            self._push.start(None)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="node-sync")

    async def close(self) -> None:
        await self._watcher.close()
        await self._push.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Go round every share now (a version was pushed, a folder changed)."""
        self._wake.set()

    def _on_pushed(self, pushed: PushedVersion) -> None:
        """Note a pushed version newer than ours; a replayed one wakes nothing."""
        for share in self._shares.values():
            if share.public_key != pushed.public_key:
                continue
            self._heard[share.id] = self._heard.get(share.id, 0) + 1
            last = self._pushed.get(share.id)
            if supersedes(pushed.seq, pushed.info_hash, share.seq, share.info_hash) and (
                last is None or pushed.seq >= last.seq
            ):
                self._pushed[share.id] = pushed
                self.wake()

    # -- the interface ----------------------------------------------------------

    async def create(self, folder: str | Path, password: str | None = None) -> dict[str, Any]:
        """Make ``folder`` a synced share owned by this node; its keys (locked by ``password``)."""
        path = await asyncio.to_thread(folder_path, folder, False)
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        public_key, secret = public_key_of(seed), read_secret_of(seed)
        keys = {
            "read_write_key": format_share_key(KeyKind.READ_WRITE, seed),
            "read_only_key": format_share_key(KeyKind.READ_ONLY, public_key + secret),
            "encrypted_key": format_share_key(KeyKind.ENCRYPTED, public_key),
        }
        if password is not None:
            keys = await asyncio.to_thread(_locked, keys, password.encode("utf-8"))
        share = SyncShare(
            share_id(public_key), "owner", str(path), public_key, seed=seed, read_secret=secret
        )
        async with self._lock:
            self._check_free(path)
            self._shares[share.id] = share
            self._save()
            await self._owner_step(share)
        return {"id": share.id, **keys}

    async def join(
        self, key_text: str, folder: str | Path, password: str | None = None
    ) -> dict[str, Any]:
        """Follow the share named by a pasted key in ``folder`` (made if missing)."""
        secret = None if password is None else password.encode("utf-8")
        key = await asyncio.to_thread(parse_share_key, key_text, secret)
        path = await asyncio.to_thread(folder_path, folder, True)
        public_key = key.public_key
        role = _ROLES[key.kind]
        seed = key.key if key.kind is KeyKind.READ_WRITE else None
        share = SyncShare(
            share_id(public_key), role, str(path), public_key, seed=seed,
            read_secret=key.read_secret,
        )  # fmt: skip
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
            await self._watcher.unwatch(share.id)
            for torrent_id in (share.torrent_id, share.pending_id):
                if torrent_id is not None:
                    with contextlib.suppress(ServentError):
                        await self._node.remove(torrent_id, delete_data=False)
            if share.role != "encrypted":  # the encrypted copy in the data directory
                await asyncio.to_thread(shutil.rmtree, self._staging(share), True)

    # -- the loop ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            for share in list(self._shares.values()):
                try:
                    async with self._lock:
                        if share.id not in self._shares:
                            continue
                        if share.role in WRITERS:
                            self._watcher.watch(share.id, Path(share.path))
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
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SYNC_INTERVAL):
                    await self._wake.wait()
            self._wake.clear()

    async def _writer_step(self, share: SyncShare) -> None:
        """A key holder follows other writers' versions first, then publishes its own changes."""
        if await self._fetch_newer(share):
            await self._member_step(share)
            return
        await self._owner_step(share)

    async def _owner_step(self, share: SyncShare) -> None:
        path = Path(share.path)
        signature = await asyncio.to_thread(signature_of, path)
        if signature != share.signature:
            if signature == EMPTY_SIGNATURE:
                share.state = "empty"
                return
            await self._make_version(share, path)
            share.signature = signature
        if time.time() - share.published_at > REPUBLISH_INTERVAL:
            share.published = False
        if not share.published:
            await self._publish(share)

    async def _make_version(self, share: SyncShare, path: Path) -> None:
        """Seal the folder into the encrypted copy and seed a torrent of it.

        The last version's torrent stops first: its files are rewritten in
        place, so unchanged blocks keep their bytes and their pieces.
        """
        from servent.storage.seed_resume import create_seeding_torrent, resume_key

        assert share.read_secret is not None
        share.state = "sealing"
        await self._stop_seeding(share)
        root = self._root(share)
        cipher = SyncCipher(share.read_secret)
        share.unpublished = await asyncio.to_thread(encrypt_version, path, cipher, root)
        metainfo, record = await asyncio.to_thread(create_seeding_torrent, root)
        self._node.store.save(resume_key(metainfo), record.encode())
        added = await self._node.add_torrent(metainfo.to_bytes(), save_path=root.parent)
        share.torrent_id = added.id
        share.unpublished_hash = metainfo.info_hash_v1 or metainfo.wire_info_hash
        share.published = False

    async def _stop_seeding(self, share: SyncShare) -> None:
        if share.torrent_id is not None:
            with contextlib.suppress(ServentError):
                await self._node.remove(share.torrent_id, delete_data=False)
            share.torrent_id = None

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
        previous, share.info_hash, share.unpublished_hash = share.info_hash, info_hash, None
        if share.unpublished is not None:
            share.listing, share.unpublished = share.unpublished, None
        share.published_at = time.time()
        share.state = "synced"
        await self._start_push(share, driver, value, previous)

    async def _start_push(
        self, share: SyncShare, driver: DhtDriver, value: BValue, previous: bytes | None
    ) -> None:
        """Tell holders (and downloaders) of the last versions of this one, in the background."""
        assert share.seed is not None and share.info_hash is not None
        hashes = [h for h in (share.pushed_from, previous, share.info_hash) if h is not None]
        share.pushed_from = previous
        frame = push_frame(share.seed, share.seq, value)
        self._push.push_later(frame, driver, hashes, self._node.peer_address())

    async def _member_step(self, share: SyncShare) -> None:
        if share.pending_id is not None:
            await self._check_download(share)
            if share.pending_id is not None:
                await self._overtake(share)
            return
        await self._fetch_newer(share)

    async def _overtake(self, share: SyncShare) -> None:
        """Drop a download that a newer version made pointless (its holders may be gone)."""
        driver = self._dht()
        if driver is None or share.pending_id is None:
            return
        state = share.state  # "downloading ...": a poll finding nothing does not change it
        found = await self._newest(share, driver, share.pending_seq, share.pending_hash)
        share.state = state
        if found is None or not supersedes(*found, share.pending_seq, share.pending_hash):
            return
        with contextlib.suppress(ServentError):
            await self._node.remove(share.pending_id, delete_data=False)  # its pieces stay
        share.pending_id = None
        await self._start_download(share, driver, *found)

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
        found = await self._newest(share, driver, share.seq, share.info_hash)
        if found is None:
            return
        seq, info_hash = found
        if info_hash in (share.info_hash, share.unpublished_hash):
            share.seq = max(share.seq, seq)  # a republish of the version we have
            share.state = "synced" if share.unpublished_hash is None else share.state
            return
        if supersedes(seq, info_hash, share.seq, share.info_hash):
            await self._start_download(share, driver, seq, info_hash)

    async def _start_download(
        self, share: SyncShare, driver: DhtDriver, seq: int, info_hash: bytes
    ) -> None:
        # Published at the same number as ours (a CAS race): merge with no
        # "previous" listing, so each of our edits becomes a conflict copy.
        share.merge_all = seq == share.seq
        # The new version downloads over the encrypted copy of the last one:
        # storage verifies what it finds, so only changed pieces cross the network.
        await self._stop_seeding(share)
        added = await add_version(self._node, driver, info_hash, self._root(share).parent)
        share.pending_id, share.pending_seq, share.pending_hash = added, seq, info_hash
        share.state = f"downloading version {seq}"

    async def _newest(
        self, share: SyncShare, driver: DhtDriver, have_seq: int, have_hash: bytes | None
    ) -> tuple[int, bytes] | None:
        """The version pushed to us (signature checked) if newer than ``have_seq``,
        else the one the DHT holds."""
        pushed = self._pushed.pop(share.id, None)
        if pushed is not None and supersedes(pushed.seq, pushed.info_hash, have_seq, have_hash):
            return pushed.seq, pushed.info_hash
        found = await driver.get_item(mutable_target(share.public_key, SYNC_SALT), salt=SYNC_SALT)
        if found.value is None or found.seq is None:
            share.state = "waiting for the owner"
            return None
        if found.seq < share.seq:
            return None  # a stale or replayed version
        try:
            return found.seq, decode_version_value(found.value)
        except VersionError as exc:
            share.state = f"refused version {found.seq}: {exc}"
            return None

    async def _check_download(self, share: SyncShare) -> None:
        assert share.pending_id is not None
        try:
            status = self._node.torrent(share.pending_id)
        except TorrentNotFoundError:  # removed by hand: fetch the version again
            share.pending_id = None
            return
        if status.progress < 1.0 or status.size == 0 or status.state not in ("seeding", "finished"):
            share.state = f"downloading version {share.pending_seq} ({status.progress:.0%})"
            driver, info_hash = self._dht(), share.pending_hash
            if driver and info_hash and self._reasks.due(share.id, info_hash, status.peers):
                await add_version(self._node, driver, info_hash, self._root(share).parent)
            return
        root = Path(status.save_path) / status.name
        if status.name != share.id:
            raise NodeError(f"version {share.pending_seq} is not named {share.id}: refused")
        wanted = {tuple(f.path.split("/")[1:]): f.size for f in self._node.files(share.pending_id)}
        if share.read_secret is None:  # an encrypted holder stores and seeds, nothing more
            await asyncio.to_thread(store_version, root, wanted)
            listing: dict[RelPath, bytes] = {}
            own_changes = False
        else:
            previous = {} if share.merge_all else share.listing
            listing, own_changes = await asyncio.to_thread(
                apply_version, Path(share.path), root, wanted,
                SyncCipher(share.read_secret), previous,
            )  # fmt: skip
        share.merge_all = False
        if share.role in WRITERS:
            # Publish again only if the folder holds more than the version: conflict
            # copies or files added here.  Any unpublished version of ours is dropped:
            # its edits are in the folder still, and go into the next one.
            signature = await asyncio.to_thread(signature_of, Path(share.path))
            share.signature = None if own_changes else signature
            share.unpublished = share.unpublished_hash = None
            share.published, share.published_at = True, time.time()
        share.listing, share.seq, share.info_hash = listing, share.pending_seq, share.pending_hash
        share.torrent_id, share.pending_id = share.pending_id, None
        share.state = "synced"

    # -- helpers ----------------------------------------------------------------

    def _staging(self, share: SyncShare) -> Path:
        return self._node.config.data_dir / "sync" / share.id

    def _root(self, share: SyncShare) -> Path:
        """The encrypted copy: in the data directory, or the folder of an encrypted holder."""
        parent = Path(share.path) if share.role == "encrypted" else self._staging(share)
        return parent / share.id

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
            "pushed": self._heard.get(share.id, 0),
        }

    def _save(self) -> None:
        save_shares(self._node.store, self._shares)


_ROLES = {kind: kind.name.lower() for kind in KeyKind}  # read_write, read_only, encrypted


def _locked(keys: dict[str, str], password: bytes) -> dict[str, str]:
    return {name: lock_share_key(text, password) for name, text in keys.items()}

"""What a node remembers of each synced share, kept as JSON in its state store."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from servent.codec.share_key import read_secret_of
from servent.node.state import StateStore
from servent.proto.sync_plan import RelPath

__all__ = ["ROLES", "SyncShare", "load_shares", "save_shares"]

_STORE_KEY = "sync_shares"
ROLES = ("owner", "read_write", "read_only", "encrypted")


@dataclass(slots=True)
class SyncShare:
    """One synced share.  ``seq`` is the version published (owner) or applied (member)."""

    id: str
    role: str
    path: str
    public_key: bytes
    seed: bytes | None = None
    read_secret: bytes | None = None  # names and opens files; an encrypted holder has none
    seq: int = 0
    info_hash: bytes | None = None  # the torrent of version ``seq``
    torrent_id: str | None = None
    listing: dict[RelPath, bytes] = field(default_factory=dict)  # the version's files
    signature: str | None = None  # the folder when last published (owner)
    published: bool = False
    published_at: float = 0.0
    pending_id: str | None = None  # member: the version being downloaded
    pending_seq: int = 0
    pending_hash: bytes | None = None
    state: str = "starting"
    unpublished: dict[RelPath, bytes] | None = None  # the listing of a version being published
    unpublished_hash: bytes | None = None  # its torrent (kept apart until the put succeeds)
    pushed_from: bytes | None = None  # writer: the version whose holders heard of the last push
    merge_all: bool = False  # the pending version raced ours: every local difference conflicts


def _to_json(share: SyncShare) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in dataclasses.fields(share):
        if item.name in ("unpublished", "unpublished_hash", "merge_all", "state", "pushed_from"):
            continue  # made again after a restart
        value = getattr(share, item.name)
        if item.name == "signature" and share.unpublished_hash is not None:
            value = None  # not published yet: after a restart, hash and publish again
        if isinstance(value, bytes):
            value = value.hex()
        elif item.name == "listing":
            value = [["/".join(rel), digest.hex()] for rel, digest in value.items()]
        out[item.name] = value
    return out


def _from_json(data: dict[str, Any]) -> SyncShare:
    share = SyncShare(
        id=str(data["id"]),
        role=str(data["role"]),
        path=str(data["path"]),
        public_key=bytes.fromhex(data["public_key"]),
    )
    for name in ("seed", "read_secret", "info_hash", "pending_hash"):
        if data.get(name):
            setattr(share, name, bytes.fromhex(data[name]))
    for name in ("seq", "pending_seq"):
        setattr(share, name, int(data.get(name) or 0))
    if share.seed is not None and share.read_secret is None:  # saved before the secret was
        share.read_secret = read_secret_of(share.seed)
    share.torrent_id = data.get("torrent_id")
    share.pending_id = data.get("pending_id")
    share.signature = data.get("signature")
    share.published = bool(data.get("published"))
    share.published_at = float(data.get("published_at") or 0.0)
    share.listing = {
        tuple(rel.split("/")): bytes.fromhex(digest) for rel, digest in data.get("listing", [])
    }
    return share


def load_shares(store: StateStore) -> dict[str, SyncShare]:
    raw = store.load(_STORE_KEY)
    if raw is None:
        return {}
    return {s.id: s for s in (_from_json(d) for d in json.loads(raw))}


def save_shares(store: StateStore, shares: dict[str, SyncShare]) -> None:
    store.save(_STORE_KEY, json.dumps([_to_json(s) for s in shares.values()]).encode())

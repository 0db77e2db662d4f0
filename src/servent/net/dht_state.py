"""The DHT state file: node ID and contacts, saved crash-safely, reloaded on start."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from servent.codec.compact import Address
from servent.errors import DhtStateError

STATE_VERSION = 1
#: Contacts kept in the state file (a full table rarely holds more).
MAX_SAVED_NODES = 2000


def load_state(path: Path) -> tuple[bytes | None, list[tuple[bytes, Address]]]:
    """Node ID and contacts from a state file; (None, []) when there is none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, []
    try:
        state = json.loads(raw)
        node_id = bytes.fromhex(state["node_id"])
        if len(node_id) != 20:
            raise ValueError("node ID must be 20 bytes")
        nodes: list[tuple[bytes, Address]] = []
        for entry in state["nodes"][:MAX_SAVED_NODES]:
            contact_id = bytes.fromhex(entry[0])
            ip, port = str(entry[1]), int(entry[2])
            if len(contact_id) == 20 and 0 < port < 65536:
                nodes.append((contact_id, (ip, port)))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DhtStateError(f"unreadable DHT state file {path}: {exc}") from exc
    return node_id, nodes


def save_state(path: Path, node_id: bytes, nodes: Iterable[tuple[bytes, Address]]) -> None:
    """Write the state file so a crash leaves either the old or the new version."""
    entries = [[nid.hex(), addr[0], addr[1]] for nid, addr in nodes][:MAX_SAVED_NODES]
    data = json.dumps({"version": STATE_VERSION, "node_id": node_id.hex(), "nodes": entries})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data.encode())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

"""In-process servent nodes for tests: on loopback (DHT and LSD off unless asked),
folders to share, and a network member's refusal counter to wait on."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import polling
from servent.node.config import load_config
from servent.node.node import Node

DEADLINE = 60.0
wait_for = functools.partial(polling.wait_for, within=DEADLINE, every=0.05)


def loopback_node(data_dir: Path, **values: object) -> Node:
    """A node (not started: ``async with`` runs it) on 127.0.0.1, port 0, its state in
    ``data_dir``; DHT and LSD off unless ``values`` (settings) turn them on."""
    settings: dict[str, object] = {
        "data_dir": str(data_dir), "dht_enabled": False, "lsd_enabled": False,
        "listen_host": "127.0.0.1", "listen_port": 0, **values,
    }  # fmt: skip
    return Node(load_config(None, settings))


def running_node(root: Path, name: str, **values: object) -> Node:
    """A :func:`loopback_node` in ``root / name`` that calls itself ``name``."""
    return loopback_node(
        root / name, **{"name": name, "download_dir": str(root / name / "downloads"), **values}
    )


@asynccontextmanager
async def running_nodes(root: Path, *names: str, **values: object) -> AsyncIterator[list[Node]]:
    """One running node per name (same settings), all closed on exit."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_node(root, n, **values)) for n in names]


def folder(root: Path, name: str, size: int) -> Path:
    path = root / "shares" / name
    path.mkdir(parents=True)
    (path / f"{name}.bin").write_bytes(bytes(i * 7 % 251 for i in range(size)))
    return path


def not_allowed(node: Node) -> int:
    """Peer-wire handshakes the node closed for a network torrent: plain or MSE (never
    accepted for one), or a sealed handshake with no current key or from a non-member."""
    swarm = node._swarm
    assert swarm is not None and swarm.listener is not None
    return swarm.listener.not_allowed + swarm.listener.mse_failed


def has_epoch(node: Node, name: str, epoch: int) -> bool:
    roster = node.networks.by_name(name)
    return roster.epoch == epoch and node.networks.current_key(roster.network_id) is not None


def address(node: Node) -> tuple[str, int]:
    found = node.peer_address()
    assert found is not None
    return found


async def fetch(node: Node, magnet: str, peers: list[tuple[str, int]]) -> str:
    return await node.add(magnet, peers=peers)

"""A node for one command: its state in a temporary directory, only torrents.

``servent get``, ``servent seed`` and the DHT client commands run through a
:class:`~servent.node.node.Node`, as the daemon does, so every front end sees the
same swarm, storage and DHT behaviour.  They keep no state of the node's: its
database lives in a temporary directory for the command's life.  What they do
keep (``get``'s resume records, keyed by the download folder) they hand to the
torrent (:class:`~servent.node.torrent_spec.SessionOptions`).  Such a node has no
identity, node channels, messaging or search, maps no router port, and joins no
public DHT router: it uses the DHT the command gives it, if any.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servent.node.config import Config
from servent.node.node import Node

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.net.port_reservation import PortReservation

#: What a one-shot node starts from; a command's flags change the rest.
ONE_SHOT = Config(
    listen_host="",  # every IPv4 and IPv6 address
    listen_port=0,
    dht_enabled=False,
    dht_bootstrap=(),
    lsd_enabled=False,
    port_mapping=False,
    utp_enabled=False,  # get and seed: on unless --no-utp (cli/peer_sources.py)
    supernode="off",
    searchable=False,
)


@contextlib.asynccontextmanager
async def one_shot_node(
    settings: Mapping[str, Any],
    *,
    client_version: str,
    dht: DhtDriver | None = None,
    swarm: Mapping[str, object] | None = None,
    reserved_port: PortReservation | None = None,
) -> AsyncIterator[Node]:
    """A started node from ``settings`` (``Config`` fields over :data:`ONE_SHOT`),
    ``swarm`` (``EngineConfig`` fields from the command's flags), the command's
    ``dht`` (used, not closed) and the port it reserved for the DHT and the swarm
    (:func:`servent.cli.peer_sources.port_for`); closed, its state gone, on exit."""
    with tempfile.TemporaryDirectory(prefix="servent-") as state:
        config = dataclasses.replace(ONE_SHOT, data_dir=Path(state), **settings)
        node = Node(
            config, client_version=client_version, dht=dht, swarm_settings=swarm,
            one_shot=True, reserved_port=reserved_port,
        )  # fmt: skip
        async with node:
            yield node

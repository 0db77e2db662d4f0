"""servent's version reaches the peer id by being passed down (net never imports the
package top), from the front end through Node and the engines."""

from __future__ import annotations

from pathlib import Path

import servent
from servent.net.engine import EngineConfig, SwarmEngine, make_peer_id
from servent.node.config import load_config
from servent.node.node import Node
from servent.node.peer_names import client_name


def test_the_peer_id_carries_the_version_it_is_given() -> None:
    assert make_peer_id("0.1.0").startswith(b"-SV0100-")
    assert make_peer_id("").startswith(b"-SV0000-")  # a library user who gave none
    assert len(make_peer_id("12.3.4")) == 20


async def test_a_node_given_the_version_shows_it_to_peers(tmp_path: Path) -> None:
    prefix = make_peer_id(servent.__version__)[:8]
    engine = SwarmEngine(EngineConfig(client_version=servent.__version__, listen=False))
    assert engine.peer_id[:8] == prefix
    config = load_config(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "dht_enabled": False,
            "lsd_enabled": False,
            "listen_host": "127.0.0.1",
            "listen_port": 0,
        },
    )
    async with Node(config, client_version=servent.__version__) as node:
        swarm = node._swarm
        assert swarm is not None
        assert swarm.peer_id[:8] == prefix
        assert client_name(swarm.peer_id).startswith("servent ")

"""servent: a peer-to-peer node speaking the BitTorrent protocol family.

The names re-exported here are the library's deliberate public surface;
``tests/unit/test_public_api.py`` checks that they stay importable.  They are
loaded lazily (PEP 562) so that ``import servent`` stays cheap and every layer
can import ``servent.__version__`` without pulling in the layers above it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from servent.errors import ServentError

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet, parse_magnet
    from servent.codec.metainfo import Metainfo, parse_torrent
    from servent.net.dht_driver import DhtDriver
    from servent.net.engine import EngineConfig, SwarmEngine
    from servent.node.config import Config, load_config
    from servent.node.node import Node
    from servent.storage.torrent_creator import create_torrent

__version__ = "0.1.0"

_LAZY = {
    "Magnet": "servent.codec.magnet",
    "parse_magnet": "servent.codec.magnet",
    "Metainfo": "servent.codec.metainfo",
    "parse_torrent": "servent.codec.metainfo",
    "create_torrent": "servent.storage.torrent_creator",
    "SwarmEngine": "servent.net.engine",
    "EngineConfig": "servent.net.engine",
    "DhtDriver": "servent.net.dht_driver",
    "Config": "servent.node.config",
    "load_config": "servent.node.config",
    "Node": "servent.node.node",
}

__all__ = [
    "Config",
    "DhtDriver",
    "EngineConfig",
    "Magnet",
    "Metainfo",
    "Node",
    "ServentError",
    "SwarmEngine",
    "__version__",
    "create_torrent",
    "load_config",
    "parse_magnet",
    "parse_torrent",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'servent' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value

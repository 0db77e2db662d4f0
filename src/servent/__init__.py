"""servent: a peer-to-peer node speaking the BitTorrent protocol family.

The names re-exported here are the library's deliberate public surface;
``tests/unit/test_public_api.py`` checks that they stay importable.
"""

from __future__ import annotations

from servent.errors import ServentError

__version__ = "0.1.0"

__all__ = ["ServentError", "__version__"]

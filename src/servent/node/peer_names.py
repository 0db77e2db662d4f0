"""Readable client names from BitTorrent peer ids, for the peers table of UIs.

Most clients use the Azureus style ``-XXVVVV-`` (two letters, four version
characters); a few known prefixes are named, the rest shown as their code.
"""

from __future__ import annotations

CLIENT_CODES = {
    "SV": "servent",
    "LT": "libtorrent",
    "lt": "libtorrent (Rasterbar)",
    "qB": "qBittorrent",
    "TR": "Transmission",
    "UT": "µTorrent",
    "DE": "Deluge",
    "AZ": "Vuze",
    "BT": "BitTorrent",
    "A2": "aria2",
}


def client_name(peer_id: bytes) -> str:
    """``libtorrent 2.1.1.0`` for ``-LT2110-...``; aria2's ``A2-1-36-0-`` style too; else ''."""
    if len(peer_id) < 8:
        return ""
    head = peer_id[:8]
    if head[:1] == b"-" and head[7:8] == b"-":
        code = head[1:3].decode("ascii", "replace")
        version = ".".join(chr(b) for b in head[3:7] if chr(b).isalnum())
        name = CLIENT_CODES.get(code, code)
        return f"{name} {version}".strip()
    if peer_id.startswith(b"A2-"):
        parts = peer_id[3:].split(b"-")[:3]
        return "aria2 " + ".".join(p.decode("ascii", "replace") for p in parts if p.isdigit())
    return ""

"""The shapes of the API's answers, derived from the Node API's dataclasses.

A field added to :class:`~servent.node.status.TorrentStatus` (or any other
snapshot the API returns) is in the OpenAPI document at once; only what a
type cannot say (a unit, an enum, a range) is written here, as overrides.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from servent.daemon.routes import Schema, obj
from servent.node.status import (
    FileStatus,
    NodeStatus,
    PathMtuSummary,
    PinholeStatus,
    RemoveResult,
    ShareResult,
    TorrentStatus,
)
from servent.node.torrent_spec import (
    CHECKING,
    DOWNLOADING,
    ERROR,
    METADATA,
    PAUSED,
    SEEDING,
    STALLED,
    PeerStatus,
)

__all__ = ["COMPONENTS", "dataclass_schema", "type_schema"]

_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
}


def type_schema(hint: Any) -> Schema:
    """The JSON schema of a field's type hint (as ``json_response`` writes the value)."""
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return dataclass_schema(hint)
    supertype = getattr(hint, "__supertype__", None)  # NewType, e.g. TorrentId
    if supertype is not None:
        return type_schema(supertype)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        schema = type_schema(rest[0]) if len(rest) == 1 else {}
        return {**schema, "nullable": True}
    if origin in (tuple, list):
        items = [a for a in args if a is not Ellipsis]
        same = len(set(items)) == 1
        return {"type": "array", **({"items": type_schema(items[0])} if same else {})}
    if origin is dict:
        return {"type": "object"}
    raise TypeError(f"no JSON schema for {hint!r}")


def dataclass_schema(
    cls: type, overrides: dict[str, Schema] | None = None, extra: dict[str, Schema] | None = None
) -> Schema:
    """An object schema with one property per field of ``cls`` (every one present)."""
    hints = typing.get_type_hints(cls)
    overrides = overrides or {}
    properties: dict[str, Schema] = {}
    for item in dataclasses.fields(cls):
        properties[item.name] = {**type_schema(hints[item.name]), **overrides.get(item.name, {})}
    names = list(properties)
    properties.update(extra or {})
    return {"type": "object", "properties": properties, "required": names}


_RATE = {"description": "bytes per second"}
_TORRENT_NOTES: dict[str, Schema] = {
    "id": {"pattern": "^[0-9a-f]{40}$"},
    "state": {"enum": [CHECKING, METADATA, DOWNLOADING, SEEDING, PAUSED, ERROR, STALLED]},
    "progress": {"minimum": 0, "maximum": 1},
    "download_rate": _RATE,
    "upload_rate": _RATE,
    "eta": {"description": "seconds"},
    "error": {"description": "why the torrent stopped (state 'error'), else null"},
    "downloaded": {"description": "payload bytes received this run"},
    "uploaded": {"description": "payload bytes sent this run"},
    "trackers": {"description": "tracker URLs the torrent names"},
}
_PINHOLE: Schema = {
    **dataclass_schema(
        PinholeStatus,
        {
            "state": {"enum": ["open", "pending", "failed"]},
            "address": {"description": "our IPv6 address and TCP port, open to peers outside"},
            "ports": {"description": "'tcp N' / 'udp N' for each pinhole open"},
            "lifetime": {"description": "seconds granted (renewed at half)"},
        },
    ),
    "nullable": True,
    "description": "pinholes in the router's IPv6 firewall (PCP); null when not asked for",
}
_PATH_MTU: Schema = {
    **dataclass_schema(PathMtuSummary),
    "nullable": True,
    "description": "bytes per IP packet uTP sends now, over its open connections (null: none)",
}
_EXISTING = {
    "type": "boolean",
    "description": "the node had this torrent already (HTTP 200, not 201)",
}

#: ``components/schemas`` of the document, by name.
COMPONENTS: dict[str, Schema] = {
    "Torrent": dataclass_schema(TorrentStatus, _TORRENT_NOTES),
    "Added": dataclass_schema(TorrentStatus, _TORRENT_NOTES, extra={"existing": _EXISTING}),
    "File": dataclass_schema(FileStatus, {"priority": {"minimum": 0, "maximum": 7}}),
    "Peer": dataclass_schema(PeerStatus, {"download_rate": _RATE, "upload_rate": _RATE}),
    "NodeStatus": dataclass_schema(
        NodeStatus,
        {
            "download_rate": _RATE,
            "upload_rate": _RATE,
            "downloaded": {
                "description": "payload bytes received since the node started (removed "
                "torrents too)"
            },
            "uploaded": {"description": "payload bytes sent since it started"},
            "all_time_downloaded": {
                "description": "payload bytes received since the data directory was first used"
            },
            "all_time_uploaded": {"description": "payload bytes sent, likewise"},
            "reachable": {"description": "peers outside can dial this node (null: not known yet)"},
            "nat": {"enum": ["none", "mapped", "cone", "symmetric", "unknown"]},
            "ipv6_pinhole": _PINHOLE,
            "utp_path_mtu": _PATH_MTU,
        },
        extra={
            "version": {"type": "string"},
            "event_loop": {
                "type": "string",
                "description": "the event loop the node runs on: uvloop, or asyncio's own",
            },
            "search": {
                "type": "object",
                "description": "the node's search role, when search runs",
                "properties": {
                    "role": {"type": "string", "enum": ["leaf", "supernode"]},
                    "supernodes_known": {"type": "integer"},
                    "registrars": {"type": "integer"},
                    "index_entries": {"type": "integer"},
                    "searchable": {"type": "boolean"},
                },
            },
        },
    ),
    "Share": dataclass_schema(
        ShareResult,
        {
            "magnet": {"description": "with x.pe when with_peer was asked"},
            "existing": {"description": "the path was shared already"},
        },
    ),
    "Removed": {
        **dataclass_schema(RemoveResult, {"removed": {"pattern": "^[0-9a-f]{40}$"}}),
        "description": "data_deleted is false, with the reason, when nothing was deleted: "
        "only files servent downloaded are ever deleted, never a share's or pre-existing files",
    },
    "Stream": obj(
        url={"type": "string", "description": "/stream/{token}/{id}/{file}/{name}"},
        path={"type": "string"},
        file={"type": "integer"},
        name={"type": "string"},
        size={"type": "integer"},
        content_type={"type": "string"},
    ),
    "Identity": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z2-7]{55}$"},
            "name": {"type": "string", "nullable": True},
            "addresses": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Settings": {"type": "object", "additionalProperties": True},
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    },
}

"""The synced-share handlers of the HTTP API (``docs/sync.md`` section 5).

:data:`SYNC_ROUTES` declares them for the route table of :mod:`.app`.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import web

from servent.daemon.api import NODE_KEY
from servent.daemon.routes import Route, Schema, array_of, obj
from servent.errors import ServentError
from servent.node.node import Node

__all__ = ["SYNC_ROUTES"]


async def _fields(request: web.Request, *names: str) -> tuple[list[str], str | None]:
    """The named string fields of the body, and its optional ``password``."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(reason="the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="the request body is a JSON object")
    values = [body.get(name) for name in names]
    for name, value in zip(names, values, strict=True):
        if not isinstance(value, str) or not value:
            raise web.HTTPBadRequest(reason=f"'{name}' must be a non-empty string")
    password = body.get("password")
    if password is not None and (not isinstance(password, str) or not password):
        raise web.HTTPBadRequest(reason="'password' must be a non-empty string")
    return [str(v) for v in values], password


async def list_synced(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    shares = node.sync.shares()
    for share in shares:
        share["peer_states"] = _peer_states(node, share["id"])
    return web.json_response(shares)


def _peer_states(node: Node, share_id: str) -> list[dict[str, Any]]:
    """Each connected peer of a share's version torrents: which version and how much of it."""
    states: list[dict[str, Any]] = []
    for version, torrent_id in node.sync.version_torrents(share_id):
        with contextlib.suppress(ServentError):  # a version's torrent may be going away
            for peer in node.peers(torrent_id):
                states.append(
                    {
                        "address": f"{peer.host}:{peer.port}",
                        "client": peer.client,
                        "version": version,
                        "progress": peer.progress,
                    }
                )
    return states


async def create_synced(request: web.Request) -> web.Response:
    (path,), password = await _fields(request, "path")
    keys = await request.app[NODE_KEY].sync.create(path, password)
    return web.json_response(keys, status=201)


async def join_synced(request: web.Request) -> web.Response:
    (key, path), password = await _fields(request, "key", "path")
    joined = await request.app[NODE_KEY].sync.join(key, path, password)
    return web.json_response(joined, status=201)


async def leave_synced(request: web.Request) -> web.Response:
    await request.app[NODE_KEY].sync.leave(request.match_info["id"])
    return web.json_response({"left": request.match_info["id"]})


_STRING: Schema = {"type": "string"}
_KEYS = obj(
    id=_STRING,
    read_write_key={"type": "string", "description": "lets the holder publish (srw-, prw-)"},
    read_only_key={"type": "string", "description": "lets the holder follow (sro-, pro-)"},
    encrypted_key={
        "type": "string",
        "nullable": True,
        "description": "lets the holder store and re-serve without reading (sen-, pen-)",
    },
)
_PASSWORD = {
    "type": "string",
    "description": "optional: locks the keys printed (create) or opens a locked key (join)",
}
_SYNCED = obj(
    id=_STRING,
    role={"type": "string", "enum": ["owner", "read_write", "read_only", "encrypted"]},
    path=_STRING,
    version={"type": "integer"},
    peers={"type": "integer"},
    peer_states=array_of(
        obj(
            address={"type": "string", "description": "HOST:PORT"},
            client=_STRING,
            version={"type": "integer", "description": "the version this peer is swapping"},
            progress={"type": "number", "description": "how much of it the peer has (0..1)"},
        )
    ),
    state=_STRING,
    pushed={"type": "integer", "description": "versions heard of by a push over the node channel"},
)

SYNC_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/sync", list_synced, "Synced shares", array_of(_SYNCED)),
    Route(
        "POST", "/api/sync", create_synced,
        "Make a folder a synced share owned by this node; answers its keys",
        _KEYS, status=201,
        body={**obj(path=_STRING, password=_PASSWORD), "required": ["path"]},
    ),
    Route(
        "POST", "/api/sync/join", join_synced,
        "Join a synced share by its key into a folder (made if missing)",
        obj(id=_STRING, role=_STRING, path=_STRING), status=201,
        body={**obj(key=_STRING, path=_STRING, password=_PASSWORD), "required": ["key", "path"]},
    ),
    Route(
        "DELETE", "/api/sync/{id}", leave_synced,
        "Leave a synced share; its folder is never deleted", obj(left=_STRING),
    ),
)  # fmt: skip

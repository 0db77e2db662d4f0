"""The synced-share routes of the HTTP API (``docs/sync.md`` section 5) and their OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from servent.node.node import Node

__all__ = ["SYNC_PATHS", "add_sync_routes"]


async def _fields(request: web.Request, *names: str) -> list[str]:
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
    return [str(v) for v in values]


def add_sync_routes(app: web.Application, node_of: Callable[[web.Request], Node]) -> None:
    """Add ``/api/sync`` routes; ``node_of`` finds the node behind a request."""

    async def list_synced(request: web.Request) -> web.Response:
        return web.json_response(node_of(request).sync.shares())

    async def create_synced(request: web.Request) -> web.Response:
        (path,) = await _fields(request, "path")
        return web.json_response(await node_of(request).sync.create(path), status=201)

    async def join_synced(request: web.Request) -> web.Response:
        key, path = await _fields(request, "key", "path")
        return web.json_response(await node_of(request).sync.join(key, path), status=201)

    async def leave_synced(request: web.Request) -> web.Response:
        await node_of(request).sync.leave(request.match_info["id"])
        return web.json_response({"left": request.match_info["id"]})

    app.router.add_get("/api/sync", list_synced)
    app.router.add_post("/api/sync", create_synced)
    app.router.add_post("/api/sync/join", join_synced)
    app.router.add_delete("/api/sync/{id}", leave_synced)


def _answer(description: str, schema: dict[str, Any], code: str = "200") -> dict[str, Any]:
    error = {"$ref": "#/components/responses/Error"}
    content = {"application/json": {"schema": schema}}
    return {code: {"description": description, "content": content}, "400": error, "401": error}


def _body(*names: str) -> dict[str, Any]:
    properties = {name: {"type": "string"} for name in names}
    schema = {"type": "object", "required": list(names), "properties": properties}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_SHARE_KEYS = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "read_write_key": {"type": "string", "description": "lets the holder publish"},
        "read_only_key": {"type": "string", "description": "lets the holder download"},
        "encrypted_key": {"type": "string", "nullable": True},
    },
}
_SYNCED = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "role": {"type": "string", "enum": ["owner", "read_write", "read_only", "encrypted"]},
        "path": {"type": "string"},
        "version": {"type": "integer"},
        "peers": {"type": "integer"},
        "state": {"type": "string"},
    },
}

SYNC_PATHS: dict[str, Any] = {
    "/api/sync": {
        "get": {
            "summary": "Synced shares",
            "responses": _answer("list", {"type": "array", "items": _SYNCED}),
        },
        "post": {
            "summary": "Make a folder a synced share owned by this node; its keys",
            "requestBody": _body("path"),
            "responses": _answer("created", _SHARE_KEYS, "201"),
        },
    },
    "/api/sync/join": {
        "post": {
            "summary": "Join a synced share by its key into a folder",
            "requestBody": _body("key", "path"),
            "responses": _answer("joined", {"type": "object"}, "201"),
        }
    },
    "/api/sync/{id}": {
        "delete": {
            "summary": "Leave a synced share (the folder is never deleted)",
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": _answer("left", {"type": "object"}),
        }
    },
}

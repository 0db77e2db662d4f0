"""The OpenAPI 3 document of the daemon's HTTP API, generated from the route table.

Served at ``/api/openapi.json``.  Nothing here names a route: every path,
parameter and body comes from the :class:`~servent.daemon.routes.Route`
declarations the router is built from, and the answer shapes from
:mod:`.schemas`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from servent.daemon.routes import Param, Route, Schema, path_params, ref
from servent.daemon.schemas import COMPONENTS

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/responses/Error"}

#: How path placeholders are described, by name.
PATH_PARAMS = {
    "id": Param(
        "id",
        {"type": "string", "pattern": "^[0-9a-f]{40}$"},
        "hex of the torrent's wire info-hash (40 characters)",
    ),
    "name": Param("name", {"type": "string"}, "a file name (of the web UI, or a streamed file)"),
    "token": Param("token", {"type": "string"}, "the stream URL's own key"),
    "file": Param("file", {"type": "integer", "minimum": 0}, "a file's index in the torrent"),
    "short": Param("short", {"type": "string", "pattern": "^[0-9a-f]{8}$"}, "a result's short ID"),
    "node_id": Param(
        "node_id",
        {"type": "string", "pattern": "^[a-z2-7]{55}$"},
        "a node ID (base32 of its public key and a checksum, 55 characters)",
    ),
    "network": Param("network", {"type": "string"}, "an invite-only network's name or ID"),
}


def _parameter(param: Param, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": where, "schema": param.schema}
    if param.description:
        out["description"] = param.description
    if where == "path" or param.required:
        out["required"] = True
    return out


def _request_body(route: Route) -> dict[str, Any] | None:
    content: dict[str, Any] = {}
    if route.body is not None:
        content["application/json"] = {"schema": route.body}
    for kind in route.raw_bodies:
        content[kind] = {"schema": {"type": "string", "format": "binary"}}
    return {"required": True, "content": content} if content else None


def _responses(route: Route) -> dict[str, Any]:
    content = {route.content_type: {"schema": route.response}}
    answer = {"description": route.summary, "content": content}
    responses: dict[str, Any] = {str(route.status): answer}
    for status, meaning in route.also:
        responses[str(status)] = {**answer, "description": meaning}
    if route.public:
        return responses
    if route.body is not None or route.query or path_params(route.path):
        responses["400"] = _ERROR
    responses["401"] = _ERROR
    if {"id", "node_id"} & set(path_params(route.path)):
        responses["404"] = _ERROR
    return responses


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": route.summary}
    parameters = [_parameter(PATH_PARAMS[name], "path") for name in path_params(route.path)]
    parameters += [_parameter(param, param.where) for param in route.query]
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(route)
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = _responses(route)
    if route.public:
        operation["security"] = []
    return operation


def openapi_document(version: str, routes: Iterable[Route]) -> dict[str, Any]:
    """The whole document for ``routes`` (a fresh dict each call)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    schemas: dict[str, Schema] = copy.deepcopy(COMPONENTS)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "servent daemon API",
            "version": version,
            "description": "Control a servent node. Every /api/ request needs "
            "'Authorization: Bearer <token>'; the token is in the file 'api-token' "
            "of the node's data directory.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": copy.deepcopy(paths),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "a clear error message",
                    "content": {"application/json": {"schema": ref("Error")}},
                }
            },
        },
    }

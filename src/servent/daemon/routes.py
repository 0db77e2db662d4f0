"""How a route of the HTTP API is declared: once, for the router and the OpenAPI document.

A :class:`Route` names the method, the path, the handler and the shapes of
what goes in and out.  :func:`~servent.daemon.app.build_app` registers every
route of the table :data:`~servent.daemon.app.ROUTES` with aiohttp and
:func:`~servent.daemon.openapi.openapi_document` describes the same table,
so the two cannot drift apart.  A new route, or a new field, is one edit.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["Param", "Route", "Schema", "array_of", "obj", "path_params", "ref"]

Schema = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def obj(**properties: Schema) -> Schema:
    """An object schema with ``properties``."""
    return {"type": "object", "properties": properties}


def ref(component: str) -> Schema:
    """A reference to a schema of ``components/schemas`` (see :mod:`.schemas`)."""
    return {"$ref": f"#/components/schemas/{component}"}


def array_of(item: Schema) -> Schema:
    return {"type": "array", "items": item}


@dataclass(frozen=True, slots=True)
class Param:
    """A query (or path) parameter."""

    name: str
    schema: Schema
    description: str = ""
    where: str = "query"
    required: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    """aiohttp's path, ``{name}`` placeholders as OpenAPI writes them too."""
    handler: Handler
    summary: str
    response: Schema
    """The body of the success answer (JSON unless ``content_type`` says otherwise)."""
    status: int = 200
    also: tuple[tuple[int, str], ...] = ()
    """Other success statuses with the same body, and what each means."""
    body: Schema | None = None
    """The JSON request body, if the route takes one."""
    raw_bodies: tuple[str, ...] = ()
    """Other request content types taken as raw bytes (e.g. application/x-bittorrent)."""
    query: tuple[Param, ...] = ()
    content_type: str = "application/json"
    public: bool = False
    """Served without the API token (the web UI's files)."""


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def path_params(path: str) -> list[str]:
    """The ``{name}`` placeholders of ``path``, in order."""
    return _PLACEHOLDER.findall(path)

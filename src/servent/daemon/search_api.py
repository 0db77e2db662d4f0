"""``GET /api/search``: search by name, as one JSON array or as server-sent events.

``?q=WORDS&limit=N&timeout=S&people=1``; with ``Accept: text/event-stream``
each result is an ``event: result`` as it arrives (again when it gains a
source) and ``event: done`` ends the stream. ``GET /api/search/results/ID``
gives the magnet of a recent result by its short ID (what ``servent add ID``
uses).
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from servent.node.search_results import result_record
from servent.proto.search import SearchResult

if TYPE_CHECKING:
    from servent.node.node import Node
    from servent.node.search_service import SearchService

__all__ = ["add_search_routes"]

MAX_QUERY = 200
MAX_LIMIT = 200
MAX_TIMEOUT = 30.0
_SHORT_ID = re.compile(r"^[0-9a-f]{8}$")


def _service(request: web.Request) -> SearchService:
    from servent.daemon.api import NODE_KEY

    node: Node = request.app[NODE_KEY]
    service = node.search
    if service is None:
        raise web.HTTPServiceUnavailable(reason="search is not running on this node")
    return service


def _parameters(request: web.Request) -> tuple[str, int, float, bool]:
    text = request.query.get("q", "").strip()
    if not text or len(text.encode("utf-8")) > MAX_QUERY:
        raise web.HTTPBadRequest(reason=f"'q' must be 1..{MAX_QUERY} bytes of words")
    try:
        limit = int(request.query.get("limit", "50"))
        timeout = float(request.query.get("timeout", "2"))
    except ValueError:
        raise web.HTTPBadRequest(reason="'limit' and 'timeout' must be numbers") from None
    if not 1 <= limit <= MAX_LIMIT or not 0 < timeout <= MAX_TIMEOUT:
        raise web.HTTPBadRequest(
            reason=f"'limit' must be 1..{MAX_LIMIT} and 'timeout' 0..{MAX_TIMEOUT:.0f} s"
        )
    people = request.query.get("people", "0").lower() in ("1", "true", "yes")
    return text, limit, timeout, people


async def search(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    text, limit, timeout, people = _parameters(request)
    results = service.search(text, limit=limit, within=timeout, people=people)
    if "text/event-stream" not in request.headers.get("Accept", ""):
        merged: dict[bytes, SearchResult] = {}
        async for result in results:
            merged[result.key] = result
        ranked = sorted(merged.values(), key=lambda r: (-r.rank, r.entry.name))
        return web.json_response([result_record(r) for r in ranked])
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):
        async for result in results:
            payload = json.dumps(result_record(result))
            await response.write(f"event: result\ndata: {payload}\n\n".encode())
        await response.write(b"event: done\ndata: {}\n\n")
        await response.write_eof()
    return response


async def recent_result(request: web.Request) -> web.Response:
    short = request.match_info["short"].lower()
    if not _SHORT_ID.match(short):
        raise web.HTTPBadRequest(reason="a result's short ID is 8 hex digits")
    magnet = _service(request).magnet_for(short)
    if magnet is None:
        raise web.HTTPNotFound(reason=f"no recent search result {short}")
    return web.json_response({"short_id": short, "magnet": magnet})


_ERROR = {"description": "error", "content": {"application/json": {"schema": {"type": "object"}}}}
_RESULT = {
    "type": "object",
    "properties": {
        key: {"type": kind}
        for key, kind in (
            ("name", "string"), ("infohash", "string"), ("magnet", "string"),
            ("size", "integer"), ("files", "integer"), ("sources", "integer"),
            ("publisher", "string"), ("short_id", "string"), ("id", "string"),
        )
    },
}  # fmt: skip


def search_openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the routes below."""
    query = [
        {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"name": "timeout", "in": "query", "schema": {"type": "number"}},
        {"name": "people", "in": "query", "schema": {"type": "boolean"}},
    ]
    short = {"name": "short", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/search": {
            "get": {
                "summary": "Search files (or people) by name: JSON, or SSE with "
                "'Accept: text/event-stream' (events 'result', then 'done')",
                "parameters": query,
                "responses": {
                    "200": {
                        "description": "results",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": _RESULT}},
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/search/results/{short}": {
            "get": {
                "summary": "The magnet of a recent search result, by its short ID",
                "parameters": [short],
                "responses": {
                    "200": {
                        "description": "magnet",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "404": _ERROR,
                },
            }
        },
    }


def add_search_routes(app: web.Application) -> None:
    app.router.add_get("/api/search", search)
    app.router.add_get("/api/search/results/{short}", recent_result)

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
from typing import TYPE_CHECKING

from aiohttp import web

from servent.daemon.routes import Param, Route, array_of, obj
from servent.node.search_results import result_record
from servent.proto.search import SearchResult

if TYPE_CHECKING:
    from servent.node.node import Node
    from servent.node.search_service import SearchService

__all__ = ["SEARCH_ROUTES"]

MAX_QUERY = 200
MAX_LIMIT = 200
MAX_TIMEOUT = 30.0
_SHORT_ID = re.compile(r"^[0-9a-f]{8}$")


def _service(request: web.Request) -> SearchService:
    from servent.daemon.api import NODE_KEY

    node: Node = request.app[NODE_KEY]
    service = node.search
    if not service.running:
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


_RESULT = obj(
    name={"type": "string"},
    infohash={"type": "string"},
    magnet={"type": "string"},
    size={"type": "integer"},
    files={"type": "integer"},
    sources={"type": "integer"},
    publisher={"type": "string"},
    short_id={"type": "string"},
    id={"type": "string", "description": "people: the node ID"},
    addresses={"type": "array", "items": {"type": "string"}},
)
_QUERY = (
    Param("q", {"type": "string"}, "words of a name (1..200 bytes)", required=True),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "at most N results"),
    Param("timeout", {"type": "number"}, "seconds to wait (default 2)"),
    Param("people", {"type": "boolean"}, "find nodes by display name"),
)

SEARCH_ROUTES: tuple[Route, ...] = (
    Route(
        "GET", "/api/search", search,
        "Search files (or people) by name: a JSON array, or with "
        "'Accept: text/event-stream' an SSE stream ('result' events, then 'done')",
        array_of(_RESULT), query=_QUERY,
    ),
    Route(
        "GET", "/api/search/results/{short}", recent_result,
        "The magnet of a recent search result, by its short ID",
        obj(short_id={"type": "string"}, magnet={"type": "string"}),
    ),
)  # fmt: skip

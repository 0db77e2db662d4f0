"""The live part of the HTTP API: start a broadcast, write to it, watch one, play it.

Thin handlers over :class:`~servent.net.live_service.LiveService` (``node.live``),
declared once in :data:`LIVE_ROUTES` (the app's route table includes them).
``GET /live/{token}/{id}/{name}`` serves the broadcast's bytes in order from
the live edge, open-ended, to any player; its token is an HMAC of the id
under the stream key (as for ``/stream/...``), never the API token.
Interface: ``docs/live.md``.
"""

from __future__ import annotations

import base64
import hmac as std_hmac
import logging
import mimetypes
from typing import Any
from urllib.parse import quote

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from servent.daemon.api import NODE_KEY, json_object
from servent.daemon.routes import Route, array_of, obj
from servent.daemon.stream_routes import STREAM_KEY
from servent.net.live_session import LiveSession
from servent.proto.live import LiveError

__all__ = ["LIVE_ROUTES", "live_token"]

log = logging.getLogger(__name__)

#: The largest write to a broadcast in one request.
MAX_WRITE = 1024 * 1024
DEFAULT_NAME = "live"


def live_token(key: bytes, live_id: str) -> str:
    """The token that opens the live stream ``live_id`` (and nothing else)."""
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(f"live/{live_id}".encode())
    return base64.urlsafe_b64encode(mac.finalize()).rstrip(b"=").decode()


def _topic(text: str) -> bytes:
    if len(text) != 40 or any(c not in "0123456789abcdef" for c in text):
        raise web.HTTPNotFound(reason="no such broadcast")
    return bytes.fromhex(text)


def _session(request: web.Request) -> LiveSession:
    topic = _topic(request.match_info["id"])
    session = request.app[NODE_KEY].live.sessions.get(topic)
    if session is None:
        raise web.HTTPNotFound(reason="this node takes no part in that broadcast")
    return session


def _where(request: web.Request, session: LiveSession) -> dict[str, Any]:
    live_id = session.topic.hex()
    name = session.name or DEFAULT_NAME
    token = live_token(request.app[STREAM_KEY], live_id)
    path = f"/live/{token}/{live_id}/{quote(name, safe='')}"
    return {"id": live_id, "url": f"{request.url.origin()}{path}", "path": path, "name": name}


def _name(body: dict[str, Any]) -> str:
    name = body.get("name") or ""
    if not isinstance(name, str) or len(name.encode()) > 200 or "/" in name:
        raise web.HTTPBadRequest(reason="'name' is a text of at most 200 bytes without '/'")
    return name


async def create_live(request: web.Request) -> web.Response:
    body = await json_object(request) if request.can_read_body else {}
    live = request.app[NODE_KEY].live
    session = live.broadcast(_name(body))
    answer = {**_where(request, session), "live_key": live.live_key(session.topic)}
    return web.json_response(answer, status=201)


async def write_live(request: web.Request) -> web.Response:
    session = _session(request)
    data = bytearray()  # read() of the body stream gives what has arrived, not all of it
    while chunk := await request.content.read(MAX_WRITE + 1 - len(data)):
        data += chunk
        if len(data) > MAX_WRITE:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_WRITE, actual_size=len(data))
    indices = request.app[NODE_KEY].live.publish(session.topic, bytes(data))
    return web.json_response(
        {"pieces": len(indices), "bytes": session.bytes_written, "edge": session.edge}
    )


async def watch_live(request: web.Request) -> web.Response:
    body = await json_object(request)
    key = body.get("key")
    if not isinstance(key, str):
        raise web.HTTPBadRequest(reason="'key' must be a live key (live:...)")
    session = request.app[NODE_KEY].live.watch(key)
    return web.json_response(_where(request, session))


async def list_live(request: web.Request) -> web.Response:
    live = request.app[NODE_KEY].live
    answer = []
    for session in live.sessions.values():
        figures = session.figures()
        if session.is_broadcaster:
            figures["live_key"] = live.live_key(session.topic)
        answer.append(figures)
    return web.json_response(answer)


async def leave_live(request: web.Request) -> web.Response:
    session = _session(request)
    request.app[NODE_KEY].live.leave(session.topic)
    return web.json_response({"id": session.topic.hex(), "ended": session.ended})


def _content_type(name: str) -> str:
    """By the name's suffix; MPEG-TS first (the usual live container; some systems map
    ``.ts`` to other types)."""
    if name.lower().endswith((".ts", ".m2ts", ".mts")):
        return "video/mp2t"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


async def serve_live(request: web.Request) -> web.StreamResponse:
    """The broadcast from its live edge, open-ended, until its end or the client leaves."""
    info = request.match_info
    live_id = _topic(info["id"]).hex()
    expected = live_token(request.app[STREAM_KEY], live_id)
    if not std_hmac.compare_digest(info["token"].encode(), expected.encode()):
        raise web.HTTPForbidden(reason="wrong stream token")
    session = _session(request)
    content_type = _content_type(info["name"])
    response = web.StreamResponse(
        headers={
            "Content-Type": content_type,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    if request.method == "HEAD":
        return response

    def connected() -> bool:
        transport = request.transport
        return transport is not None and not transport.is_closing()

    reader = session.reader()
    try:
        while (data := await reader.next_chunk(connected)) is not None:
            await response.write(data)
        await response.write_eof()
    except (ConnectionResetError, LiveError) as exc:
        log.info("live stream %s ended early: %s", live_id[:8], exc)
    return response


_LIVE = obj(
    id={"type": "string", "pattern": "^[0-9a-f]{40}$"},
    url={"type": "string", "description": "/live/{token}/{id}/{name}"},
    path={"type": "string"},
    name={"type": "string"},
)
_ID = {"type": "string", "pattern": "^[0-9a-f]{40}$"}

# fmt: off
LIVE_ROUTES: tuple[Route, ...] = (
    Route(
        "GET", "/api/live", list_live, "The broadcasts this node takes part in",
        array_of(obj(id=_ID, role={"type": "string", "enum": ["broadcaster", "viewer"]},
                     edge={"type": ["integer", "null"]}, live_key={"type": "string"})),
    ),
    Route(
        "POST", "/api/live", create_live,
        "Start a broadcast (a key of its own); write to it with POST /api/live/{id}/data",
        {**_LIVE, "properties": {**_LIVE["properties"], "live_key": {"type": "string"}}},
        status=201, body=obj(name={"type": "string"}),
    ),
    Route(
        "POST", "/api/live/{id}/data", write_live,
        "Bytes written to the broadcast (at most 1 MiB), signed and sent at once",
        obj(pieces={"type": "integer"}, bytes={"type": "integer"},
            edge={"type": ["integer", "null"]}),
        raw_bodies=("application/octet-stream",),
    ),
    Route(
        "POST", "/api/live/watch", watch_live, "Join a broadcast by its live key", _LIVE,
        body={**obj(key={"type": "string"}), "required": ["key"]},
    ),
    Route(
        "DELETE", "/api/live/{id}", leave_live,
        "End this node's broadcast (signed end piece), or stop watching one",
        obj(id=_ID, ended={"type": "boolean"}),
    ),
    Route(
        "GET", "/live/{token}/{id}/{name}", serve_live,
        "A broadcast's bytes from the live edge, open-ended (chunked); the URL is its own key",
        {"type": "string", "format": "binary"}, content_type="application/octet-stream",
        public=True,
    ),
)
# fmt: on

"""HTTP streaming of a torrent's file while it downloads (``/stream/...``).

``POST /api/torrents/{id}/stream`` (API token) answers a URL for one file;
``GET /stream/{token}/{id}/{file}/{name}`` serves it to any player with
``Range`` support.  The stream token is an HMAC of ``id/file`` under a key
kept in the data directory (``stream-key``, 0600), so a URL opens that one
file and nothing else: it can be handed to a player, or put in a page's
``<video>``, without giving the API token away.  Reads of bytes not yet
verified wait for their pieces (see :mod:`servent.node.streaming`) while the
client stays connected.
"""

from __future__ import annotations

import base64
import hmac as std_hmac
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from servent.codec.http_range import ByteRange, UnsatisfiableRange, parse_range
from servent.daemon.files import load_or_create_token
from servent.errors import ServentError
from servent.node.node import Node
from servent.node.streaming import StreamReader

log = logging.getLogger(__name__)

STREAM_KEY_FILE = "stream-key"
#: Bytes per read from storage and write to the client.
CHUNK = 256 * 1024
STREAM_NODE: web.AppKey[Node] = web.AppKey("stream_node", Node)
STREAM_KEY: web.AppKey[bytes] = web.AppKey("stream_key", bytes)


def stream_token(key: bytes, torrent_id: str, file_index: int) -> str:
    """The token that opens file ``file_index`` of ``torrent_id`` (and nothing else)."""
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(f"stream/{torrent_id}/{file_index}".encode())
    return base64.urlsafe_b64encode(mac.finalize()).rstrip(b"=").decode()


def stream_path(key: bytes, torrent_id: str, file_index: int, name: str) -> str:
    token = stream_token(key, torrent_id, file_index)
    return f"/stream/{token}/{torrent_id}/{file_index}/{quote(name, safe='')}"


def _torrent_id(text: str) -> str:
    if len(text) != 40 or any(c not in "0123456789abcdef" for c in text):
        raise web.HTTPNotFound(reason="no such stream")
    return text


async def create_stream(request: web.Request) -> web.Response:
    """``{"file"?: N}`` -> ``{"url", "path", "file", "name", "size", "content_type"}``."""
    node = request.app[STREAM_NODE]
    torrent_id = request.match_info["id"]
    if len(torrent_id) != 40 or any(c not in "0123456789abcdef" for c in torrent_id):
        raise web.HTTPBadRequest(reason="a torrent id is 40 lowercase hex characters")
    try:
        body: Any = await request.json() if request.can_read_body else {}
    except ValueError:
        raise web.HTTPBadRequest(reason="the body must be JSON") from None
    given = body.get("file") if isinstance(body, dict) else None
    if given is not None and (not isinstance(given, int) or isinstance(given, bool)):
        raise web.HTTPBadRequest(reason="'file' must be a file index")
    reader = await node.open_stream(torrent_id, given)
    reader.close()  # the URL's reader opens again when the player asks
    path = stream_path(request.app[STREAM_KEY], torrent_id, reader.file_index, reader.name)
    return web.json_response(
        {
            "url": f"{request.url.origin()}{path}",
            "path": path,
            "file": reader.file_index,
            "name": reader.name,
            "size": reader.size,
            "content_type": reader.content_type,
        }
    )


async def serve_stream(request: web.Request) -> web.StreamResponse:
    """The file, whole (200) or one range (206); 416 for a range outside it."""
    info = request.match_info
    torrent_id = _torrent_id(info["id"])
    if not info["file"].isdigit() or len(info["file"]) > 9:
        raise web.HTTPNotFound(reason="no such stream")
    file_index = int(info["file"])
    expected = stream_token(request.app[STREAM_KEY], torrent_id, file_index)
    if not std_hmac.compare_digest(info["token"].encode(), expected.encode()):
        raise web.HTTPForbidden(reason="wrong stream token")
    reader = await request.app[STREAM_NODE].open_stream(torrent_id, file_index)
    try:
        return await _respond(request, reader)
    finally:
        reader.close()


async def _respond(request: web.Request, reader: StreamReader) -> web.StreamResponse:
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": reader.content_type,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    try:
        wanted = parse_range(request.headers.get("Range"), reader.size)
    except UnsatisfiableRange:
        headers["Content-Range"] = f"bytes */{reader.size}"
        return web.Response(status=416, headers=headers)
    status = 200 if wanted is None else 206
    span = wanted or ByteRange(0, reader.size - 1, reader.size)
    if wanted is not None:
        headers["Content-Range"] = wanted.content_range()
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = span.length
    await response.prepare(request)
    if request.method == "HEAD" or span.length <= 0:
        return response

    def connected() -> bool:
        transport = request.transport
        return transport is not None and not transport.is_closing()

    position = span.first
    try:
        while position <= span.last:
            count = min(CHUNK, span.last + 1 - position)
            data = await reader.read_some(position, count, still_wanted=connected)
            await response.write(data)
            position += len(data)
    except (ServentError, ConnectionResetError) as exc:  # headers are sent: just stop
        log.info("stream %s/%d ended early: %s", reader.torrent_id, reader.file_index, exc)
        return response
    await response.write_eof()
    return response


def prepare_streaming(app: web.Application, node: Node, data_dir: Path) -> None:
    """What the stream routes read (the key is created on first use of the data directory);
    the routes themselves are in the app's route table (:mod:`servent.daemon.app`)."""
    app[STREAM_NODE] = node
    app[STREAM_KEY] = load_or_create_token(data_dir, STREAM_KEY_FILE).encode()

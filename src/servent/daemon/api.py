"""The HTTP JSON API: one route per :class:`~servent.node.node.Node` call, plus SSE.

Every ``/api/`` request needs ``Authorization: Bearer <token>``; the web UI
and its static files are public (they hold no data; the UI asks for the
token).  Errors are always ``{"error": "..."}`` with a 4xx status for bad
requests, so clients never parse HTML error pages.  The contract is described
by the OpenAPI document at ``/api/openapi.json``, generated (:mod:`.openapi`) from
the same route table that the router is built from (:mod:`.app`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from servent import __version__
from servent.daemon.openapi import openapi_document
from servent.daemon.routes import Route
from servent.errors import NodeError, ServentError, TorrentNotFoundError
from servent.node.node import Node

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024 + 1024 * 1024
#: Peer addresses one add request may name.
MAX_GIVEN_PEERS = 200
SSE_SNAPSHOT_INTERVAL = 1.0
NODE_KEY: web.AppKey[Node] = web.AppKey("node", Node)
TOKEN_KEY: web.AppKey[str] = web.AppKey("token", str)
STOPPING_KEY: web.AppKey[asyncio.Event] = web.AppKey("stopping", asyncio.Event)
ROUTES_KEY: web.AppKey[tuple[Route, ...]] = web.AppKey("routes", tuple)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.json_response(_jsonable(value), status=status)


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to ``{"error": ...}``: our errors 4xx, bugs 500."""
    try:
        return await handler(request)
    except TorrentNotFoundError as exc:
        return error_response(404, str(exc))
    except ServentError as exc:
        return error_response(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except OSError as exc:  # a path the caller named cannot be read or written
        where = f": {exc.filename}" if exc.filename else ""
        return error_response(400, f"{exc.strerror or exc}{where}")
    except Exception:
        log.exception("API handler failed: %s %s", request.method, request.path)
        return error_response(500, "internal error (see the daemon log)")


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        expected = request.app[TOKEN_KEY]
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            return error_response(401, "missing or wrong API token (Authorization: Bearer ...)")
    return await handler(request)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    try:
        value = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(reason="the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(reason="the request body must be a JSON object")
    return value


def _string(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise web.HTTPBadRequest(reason=f"'{key}' must be a non-empty string")
    return value


def _peer_address(text: object, key: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` from a request field."""
    if isinstance(text, str):
        host, sep, port = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if sep and 0 < len(host) <= 253 and port.isdigit() and 0 < int(port) < 65536:
            return host, int(port)
    raise web.HTTPBadRequest(reason=f"'{key}' needs HOST:PORT or [IPv6]:PORT, got {text!r}")


def _peers(values: object) -> list[tuple[str, int]]:
    if not isinstance(values, list) or len(values) > MAX_GIVEN_PEERS:
        raise web.HTTPBadRequest(reason=f"'peers' must be a list of at most {MAX_GIVEN_PEERS}")
    return [_peer_address(value, "peers") for value in values]


def _node(request: web.Request) -> Node:
    return request.app[NODE_KEY]


def _id(request: web.Request) -> str:
    torrent_id = request.match_info["id"]
    if len(torrent_id) != 40 or any(c not in "0123456789abcdef" for c in torrent_id):
        raise web.HTTPBadRequest(reason="a torrent id is 40 lowercase hex characters")
    return torrent_id


# -- handlers ---------------------------------------------------------------


async def get_status(request: web.Request) -> web.Response:
    node = _node(request)
    status = _jsonable(node.status())
    status["version"] = __version__
    status["event_loop"] = _event_loop_kind()
    if node.search.running:
        status["search"] = node.search.status()
    return web.json_response(status)


def _event_loop_kind() -> str:
    """``uvloop`` or ``asyncio``: the loop this node runs on (the command line picks uvloop)."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


async def get_identity(request: web.Request) -> web.Response:
    """``{"id", "name", "addresses"}`` of this node (``servent id``)."""
    return web.json_response(_node(request).identity_info())


async def list_torrents(request: web.Request) -> web.Response:
    return json_response(_node(request).torrents())


async def add_torrent(request: web.Request) -> web.Response:
    """JSON ``{"magnet"|"torrent" (base64)|"path", "save_path"?, "peers"?}`` or a raw
    .torrent body (``?save_path=&peer=HOST:PORT``); answers the torrent and ``existing``."""
    node = _node(request)
    if request.content_type == "application/x-bittorrent":
        source: bytes | str = await request.read()
        save_path = request.query.get("save_path")
        peers = _peers(request.query.getall("peer", []))
    else:
        body = await json_object(request)
        save_path = _string(body, "save_path", required=False)
        peers = _peers(body.get("peers", []))
        given = [k for k in ("magnet", "torrent", "path") if k in body]
        if len(given) != 1:
            raise web.HTTPBadRequest(reason="give exactly one of 'magnet', 'torrent', 'path'")
        text = _string(body, given[0])
        assert text is not None
        if given[0] == "torrent":
            try:
                source = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise web.HTTPBadRequest(reason="'torrent' must be base64") from None
        elif given[0] == "magnet":
            if not text.lower().startswith("magnet:"):
                raise web.HTTPBadRequest(reason="'magnet' must be a magnet: link")
            source = text
        else:
            source = text
            if text.lower().startswith("magnet:"):
                raise web.HTTPBadRequest(reason="'path' must be a file path")
    added = await node.add_torrent(source, save_path=save_path, peers=peers)
    answer = _jsonable(node.torrent(added.id))
    answer["existing"] = added.existing
    return web.json_response(answer, status=200 if added.existing else 201)


async def get_torrent(request: web.Request) -> web.Response:
    return json_response(_node(request).torrent(_id(request)))


async def pause_torrent(request: web.Request) -> web.Response:
    node, torrent_id = _node(request), _id(request)
    await node.pause(torrent_id)
    return json_response(node.torrent(torrent_id))


async def resume_torrent(request: web.Request) -> web.Response:
    node, torrent_id = _node(request), _id(request)
    await node.resume(torrent_id)
    return json_response(node.torrent(torrent_id))


async def remove_torrent(request: web.Request) -> web.Response:
    flag = request.query.get("delete_data", "false").lower()
    if flag not in {"true", "false", "1", "0"}:
        raise web.HTTPBadRequest(reason="delete_data must be true or false")
    result = await _node(request).remove(_id(request), delete_data=flag in {"true", "1"})
    return json_response(result)  # data_deleted false + reason: the user's files were kept


async def list_files(request: web.Request) -> web.Response:
    return json_response(_node(request).files(_id(request)))


async def set_priorities(request: web.Request) -> web.Response:
    """``{"priorities": [p, ...]}`` (every file) or ``{"priorities": {"index": p}}``."""
    node, torrent_id = _node(request), _id(request)
    body = await json_object(request)
    value = body.get("priorities")
    priorities: list[int] | dict[int, int]
    if isinstance(value, list):
        priorities = value
    elif isinstance(value, dict):
        try:
            priorities = {int(k): v for k, v in value.items()}
        except ValueError:
            raise web.HTTPBadRequest(reason="file indexes must be integers") from None
    else:
        raise web.HTTPBadRequest(reason="'priorities' must be a list or an object")
    await node.set_file_priorities(torrent_id, priorities)
    return json_response(node.files(torrent_id))


async def list_peers(request: web.Request) -> web.Response:
    return json_response(_node(request).peers(_id(request)))


def _limit(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise web.HTTPBadRequest(reason=f"'{key}' must be an integer")
    return value


async def set_torrent_limits(request: web.Request) -> web.Response:
    node, torrent_id = _node(request), _id(request)
    body = await json_object(request)
    unknown = set(body) - {"download_rate_limit", "upload_rate_limit"}
    if unknown:
        raise web.HTTPBadRequest(reason=f"unknown field {sorted(unknown)[0]!r}")
    await node.set_limits(
        torrent_id,
        download_rate_limit=_limit(body, "download_rate_limit"),
        upload_rate_limit=_limit(body, "upload_rate_limit"),
    )
    return json_response(node.torrent(torrent_id))


async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(_node(request).settings())


async def update_settings(request: web.Request) -> web.Response:
    node = _node(request)
    body = await json_object(request)
    if not body:
        raise web.HTTPBadRequest(reason="no setting given")
    restart = await node.update_settings(body)
    settings = node.settings()
    settings["restart_required"] = restart
    return web.json_response(settings)


async def list_shares(request: web.Request) -> web.Response:
    node = _node(request)
    return web.json_response(
        [
            {"path": f.path, "id": f.torrent_id, "added_at": f.added_at}
            for f in node.shared_folders()
        ]
    )


def _magnet_with_peer(uri: str, address: tuple[str, int]) -> str:
    from servent.codec.magnet import parse_magnet

    magnet = parse_magnet(uri)
    peers = tuple(dict.fromkeys((*magnet.peers, address)))
    return dataclasses.replace(magnet, peers=peers).to_uri()


async def add_share(request: web.Request) -> web.Response:
    """``{"path", "with_peer"?: true | "HOST:PORT"}``: with_peer puts this node in the
    magnet as ``x.pe``, so a peer without trackers or DHT finds it from the link alone."""
    node = _node(request)
    body = await json_object(request)
    path = _string(body, "path")
    assert path is not None
    with_peer = body.get("with_peer", False)
    address: tuple[str, int] | None = None
    if isinstance(with_peer, str):
        address = _peer_address(with_peer, "with_peer")
    elif with_peer is True:
        address = node.peer_address()
        if address is None:
            raise web.HTTPBadRequest(reason="this node does not listen for peers")
    elif with_peer is not False:
        raise web.HTTPBadRequest(reason="'with_peer' must be true, false or HOST:PORT")
    shared = await node.share(path)
    if address is not None:
        shared = dataclasses.replace(shared, magnet=_magnet_with_peer(shared.magnet, address))
    return json_response(shared, status=200 if shared.existing else 201)


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of this app's own route table."""
    routes: tuple[Route, ...] = request.app[ROUTES_KEY]
    return web.json_response(openapi_document(__version__, routes))


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each node event as it happens, named after its ``type`` with its
    JSON as data, and a ``torrents`` snapshot every second (the web UI's list)."""
    node = _node(request)
    stopping = request.app[STOPPING_KEY]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    stream = node.events()  # before the headers: a client that has them misses nothing
    await response.prepare(request)

    async def send(kind: str, data: Any) -> None:
        payload = json.dumps(_jsonable(data))
        await response.write(f"event: {kind}\ndata: {payload}\n\n".encode())

    loop = asyncio.get_running_loop()
    try:
        await send("torrents", node.torrents())
        next_snapshot = loop.time() + SSE_SNAPSHOT_INTERVAL
        while not stopping.is_set():
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
            # that comes with an event, and the stream outlives its handler's cancel.
            try:
                async with asyncio.timeout(max(next_snapshot - loop.time(), 0.0)):
                    event = await anext(stream)
            except TimeoutError:
                event = None
            except StopAsyncIteration:
                break
            if event is not None:
                await send(event.type, event.to_json())
            if loop.time() >= next_snapshot:  # busy event streams still get snapshots
                await send("torrents", node.torrents())
                next_snapshot = loop.time() + SSE_SNAPSHOT_INTERVAL
    except (ConnectionResetError, NodeError):
        pass
    finally:
        await stream.aclose()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


# -- web UI -------------------------------------------------------------------

_STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}


async def web_file(request: web.Request) -> web.Response:
    name = request.match_info.get("name") or "index.html"
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
        raise web.HTTPNotFound(reason="no such file")
    resource = resources.files("servent.daemon").joinpath("web", name)
    if not resource.is_file():
        raise web.HTTPNotFound(reason="no such file")
    return web.Response(
        body=resource.read_bytes(),
        content_type=_STATIC_TYPES[suffix],
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )

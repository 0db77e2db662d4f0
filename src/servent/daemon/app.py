"""The daemon's aiohttp application: the route table, declared once, and the app built
from it.

:data:`ROUTES` lists every route with its method, path, handler (from
:mod:`.api`) and the shapes of what goes in and out (:mod:`.routes`);
:func:`build_app` registers exactly these, and ``/api/openapi.json`` describes
the same table.  A new route or field is one edit here.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from servent.daemon.api import (
    MAX_BODY,
    MAX_GIVEN_PEERS,
    NODE_KEY,
    ROUTES_KEY,
    STOPPING_KEY,
    TOKEN_KEY,
    add_share,
    add_torrent,
    errors_as_json,
    events,
    get_identity,
    get_settings,
    get_status,
    get_torrent,
    list_files,
    list_peers,
    list_shares,
    list_torrents,
    openapi,
    pause_torrent,
    remove_torrent,
    require_token,
    resume_torrent,
    set_priorities,
    set_torrent_limits,
    update_settings,
    web_file,
)
from servent.daemon.live_routes import LIVE_ROUTES
from servent.daemon.messages_api import MESSAGE_ROUTES
from servent.daemon.networks_api import NETWORK_ROUTES
from servent.daemon.routes import Param, Route, Schema, array_of, obj, ref
from servent.daemon.search_api import SEARCH_ROUTES
from servent.daemon.stream_routes import create_stream, prepare_streaming, serve_stream
from servent.daemon.sync_api import SYNC_ROUTES
from servent.node.events import EVENT_TYPES
from servent.node.node import Node

__all__ = ["ROUTES", "build_app"]


def build_app(node: Node, token: str) -> web.Application:
    app = web.Application(middlewares=[errors_as_json, require_token], client_max_size=MAX_BODY)
    app[NODE_KEY] = node
    app[TOKEN_KEY] = token
    app[STOPPING_KEY] = asyncio.Event()
    app[ROUTES_KEY] = ROUTES
    prepare_streaming(app, node, node.config.data_dir)
    for route in ROUTES:
        if route.method == "GET":  # answers HEAD too
            app.router.add_get(route.path, route.handler)
        else:
            app.router.add_route(route.method, route.path, route.handler)
    return app


# -- the routes --------------------------------------------------------------------

_TORRENT, _FILES = ref("Torrent"), array_of(ref("File"))
_RATES: dict[str, Schema] = {
    "download_rate_limit": {"type": "integer", "minimum": 0},
    "upload_rate_limit": {"type": "integer", "minimum": 0},
}
_INT_MAP = {"type": "object", "additionalProperties": {"type": "integer"}}
_SETTINGS_CHANGE = obj(
    **_RATES,
    max_connections={"type": "integer", "minimum": 1},
    max_peers_per_torrent={"type": "integer", "minimum": 1},
    listen_port={"type": "integer", "minimum": 0, "maximum": 65535},
    encryption={"type": "string", "enum": ["off", "enabled", "required"]},
)
_ADD = obj(
    magnet={"type": "string"},
    torrent={"type": "string", "format": "byte"},
    path={"type": "string", "description": "a .torrent file on the daemon's host"},
    save_path={"type": "string"},
    peers={
        "type": "array",
        "items": {"type": "string"},
        "maxItems": MAX_GIVEN_PEERS,
        "description": "HOST:PORT or [IPv6]:PORT to dial (raw .torrent bodies: the 'peer' query)",
    },
)
_SAVE_PATH = Param("save_path", {"type": "string"}, "with an application/x-bittorrent body")
_PEER = Param("peer", {"type": "string"}, "HOST:PORT to dial, repeatable (raw .torrent body)")
_SHARE = obj(
    path={"type": "string"},
    with_peer={
        "oneOf": [{"type": "boolean"}, {"type": "string"}],
        "description": "true: put this node's address in the magnet as x.pe; "
        "or the HOST:PORT to put there",
    },
)
_DELETE_DATA = Param("delete_data", {"type": "boolean"}, "also delete the downloaded files")
_SHARES = array_of(obj(path={"type": "string"}, id={"type": "string"}, added_at={"type": "number"}))
_EVENTS = {
    "type": "string",
    "description": "SSE: each node event named after its type with its JSON as data "
    f"({', '.join(EVENT_TYPES)}), and a 'torrents' snapshot (a Torrent list) each second",
}
_HTML = {"type": "string"}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/openapi.json", openapi, "This document", {"type": "object"}),
    Route("GET", "/api/status", get_status, "Node status", ref("NodeStatus")),
    Route(
        "GET", "/api/identity", get_identity,
        "This node's ID (base32 Ed25519 key), display name and addresses", ref("Identity"),
    ),
    Route("GET", "/api/torrents", list_torrents, "All torrents", array_of(_TORRENT)),
    Route(
        "POST", "/api/torrents", add_torrent,
        "Add a torrent: magnet, base64 .torrent, or a path on the daemon host",
        ref("Added"), status=201, also=((200, "the node had it already"),), body=_ADD,
        raw_bodies=("application/x-bittorrent",), query=(_SAVE_PATH, _PEER),
    ),
    Route("GET", "/api/torrents/{id}", get_torrent, "One torrent", _TORRENT),
    Route(
        "DELETE", "/api/torrents/{id}", remove_torrent, "Remove a torrent", ref("Removed"),
        query=(_DELETE_DATA,),
    ),
    Route("POST", "/api/torrents/{id}/pause", pause_torrent, "Pause", _TORRENT),
    Route("POST", "/api/torrents/{id}/resume", resume_torrent, "Resume", _TORRENT),
    Route("GET", "/api/torrents/{id}/files", list_files, "Files with priorities", _FILES),
    Route(
        "PUT", "/api/torrents/{id}/priorities", set_priorities,
        "Set file priorities (0 skip, 1 normal .. 7 highest): a list, or {index: priority}",
        _FILES, body=obj(priorities={"oneOf": [array_of({"type": "integer"}), _INT_MAP]}),
    ),
    Route("GET", "/api/torrents/{id}/peers", list_peers, "Connected peers", array_of(ref("Peer"))),
    Route(
        "PUT", "/api/torrents/{id}/limits", set_torrent_limits,
        "Per-torrent rate limits (bytes/s, 0 unlimited)", _TORRENT, body=obj(**_RATES),
    ),
    Route(
        "POST", "/api/torrents/{id}/stream", create_stream,
        "A URL that streams one file (default: the largest media file) while it downloads; "
        "GET it with Range, no API token (it carries its own)",
        ref("Stream"), body=obj(file={"type": "integer"}),
    ),
    Route(
        "GET", "/stream/{token}/{id}/{file}/{name}", serve_stream,
        "One file's bytes as they are verified (HTTP Range; the URL is its own key)",
        {"type": "string", "format": "binary"}, content_type="application/octet-stream",
        public=True, also=((206, "the range asked for"),),
    ),
    Route("GET", "/api/settings", get_settings, "Node settings", ref("Settings")),
    Route(
        "PATCH", "/api/settings", update_settings,
        "Change limits (at once) or listen_port and encryption (next start); "
        "answers the settings with restart_required",
        ref("Settings"), body=_SETTINGS_CHANGE,
    ),
    Route("GET", "/api/shares", list_shares, "Shared folders", _SHARES),
    Route(
        "POST", "/api/shares", add_share,
        "Share a folder or a file (hybrid torrent, seeded, remembered)",
        ref("Share"), status=201, also=((200, "already shared"),),
        body={**_SHARE, "required": ["path"]},
    ),
    *SYNC_ROUTES,
    *SEARCH_ROUTES,
    Route(
        "GET", "/api/events", events, "Server-sent events as they happen", _EVENTS,
        content_type="text/event-stream",
    ),
    Route("GET", "/", web_file, "The web UI", _HTML, content_type="text/html", public=True),
    Route(
        "GET", "/ui/{name}", web_file, "The web UI's files (html, css, js)", _HTML,
        content_type="text/html", public=True,
    ),
    *MESSAGE_ROUTES,
    *NETWORK_ROUTES,
    *LIVE_ROUTES,
)

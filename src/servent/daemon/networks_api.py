"""The invite-only network handlers of the HTTP API (``docs/networks.md`` section 10).

:data:`NETWORK_ROUTES` declares them for the route table of :mod:`.app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from servent.daemon.api import NODE_KEY, json_object
from servent.daemon.routes import Param, Route, Schema, array_of, obj
from servent.node.networks import parse_duration

if TYPE_CHECKING:
    from servent.node.networks import NetworkService

__all__ = ["NETWORK_ROUTES"]

MAX_LIMIT = 200
MAX_TIMEOUT = 30.0


def _service(request: web.Request) -> NetworkService:
    return request.app[NODE_KEY].networks


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise web.HTTPBadRequest(reason=f"'{key}' must be a non-empty string")
    return value.strip()


async def list_networks(request: web.Request) -> web.Response:
    return web.json_response(_service(request).networks())


async def create_network(request: web.Request) -> web.Response:
    name = _text(await json_object(request), "name")
    return web.json_response(_service(request).create(name), status=201)


async def join_network(request: web.Request) -> web.Response:
    invite = _text(await json_object(request), "invite")
    return web.json_response(await _service(request).join(invite), status=201)


async def make_invite(request: web.Request) -> web.Response:
    body = await json_object(request)
    uses = body.get("uses", 1)
    if not isinstance(uses, int) or isinstance(uses, bool):
        raise web.HTTPBadRequest(reason="'uses' must be an integer")
    expires = body.get("expires")
    if expires is not None and not isinstance(expires, str):
        raise web.HTTPBadRequest(reason="'expires' is a duration such as 30m, 2h or 7d")
    seconds = None if expires is None else parse_duration(expires)
    name = request.match_info["network"]
    return web.json_response(_service(request).invite(name, uses, seconds), status=201)


async def list_members(request: web.Request) -> web.Response:
    return web.json_response(_service(request).members(request.match_info["network"]))


async def revoke_member(request: web.Request) -> web.Response:
    name, member = request.match_info["network"], request.match_info["node_id"]
    return web.json_response(await _service(request).revoke(name, member))


async def promote_member(request: web.Request) -> web.Response:
    member = _text(await json_object(request), "member")
    name = request.match_info["network"]
    return web.json_response(await _service(request).set_admin(name, member, True))


async def demote_member(request: web.Request) -> web.Response:
    name, member = request.match_info["network"], request.match_info["node_id"]
    return web.json_response(await _service(request).set_admin(name, member, False))


async def leave_network(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).leave(request.match_info["network"]))


async def share_in_network(request: web.Request) -> web.Response:
    path = _text(await json_object(request), "path")
    answer = await _service(request).share(request.match_info["network"], path)
    return web.json_response(answer, status=200 if answer["existing"] else 201)


async def search_network(request: web.Request) -> web.Response:
    text = request.query.get("q", "").strip()
    if not text or len(text.encode()) > 200:
        raise web.HTTPBadRequest(reason="'q' must be 1..200 bytes of words")
    try:
        limit = int(request.query.get("limit", "50"))
        timeout = float(request.query.get("timeout", "5"))
    except ValueError:
        raise web.HTTPBadRequest(reason="'limit' and 'timeout' must be numbers") from None
    if not 1 <= limit <= MAX_LIMIT or not 0 < timeout <= MAX_TIMEOUT:
        raise web.HTTPBadRequest(reason=f"'limit' is 1..{MAX_LIMIT}, 'timeout' 0..30 s")
    found = await _service(request).search(request.match_info["network"], text, limit, timeout)
    return web.json_response(found)


async def broadcast_in_network(request: web.Request) -> web.Response:
    text = _text(await json_object(request), "text")
    answer = await _service(request).broadcast(request.match_info["network"], text)
    return web.json_response(answer, status=201)


_STRING: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_NETWORK = obj(
    id={"type": "string", "description": "network ID, 32 hex digits"}, name=_STRING,
    epoch={"type": "integer", "description": "current key epoch (one more per revocation)"},
    sequence={"type": "integer", "description": "roster version"},
    members=_INT, admin={"type": "boolean", "description": "this node may invite and revoke"},
)  # fmt: skip
_MEMBER = obj(
    id=_STRING, name=_STRING, admin={"type": "boolean"}, you={"type": "boolean"},
    connected={"type": "boolean"},
)  # fmt: skip
_INVITE = obj(
    invite={"type": "string", "description": "the invitation token (snet1...)"}, uses=_INT,
    expires={"type": "integer", "nullable": True, "description": "Unix seconds; null: never"},
)  # fmt: skip
_RESULT = obj(
    name=_STRING, infohash=_STRING, size=_INT, magnet=_STRING, sources=_INT,
    peers=array_of(_STRING), publisher={"type": "string", "description": "the first publisher"},
)  # fmt: skip
_SHARE = obj(
    id=_STRING, path=_STRING, magnet=_STRING, existing={"type": "boolean"}, network=_STRING
)
_SENT = obj(
    id=_STRING, network=_STRING,
    reached={"type": "integer", "description": "members that stored it"}, members=_INT,
)  # fmt: skip


def _body(**required: Schema) -> Schema:
    return {**obj(**required), "required": list(required)}


NETWORK_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/networks", list_networks, "Invite-only networks", array_of(_NETWORK)),
    Route(
        "POST", "/api/networks", create_network,
        "Create a network (this node its first admin)", _NETWORK, status=201,
        body=_body(name=_STRING),
    ),
    Route(
        "POST", "/api/networks/join", join_network, "Join a network by an invitation",
        _NETWORK, status=201, body=_body(invite=_STRING),
    ),
    Route(
        "POST", "/api/networks/{network}/invites", make_invite,
        "Make an invitation (admins): uses (default 1) and expires (30m, 2h, 7d)",
        _INVITE, status=201, body=obj(uses=_INT, expires=_STRING),
    ),
    Route(
        "GET", "/api/networks/{network}/members", list_members, "Members of a network",
        array_of(_MEMBER),
    ),
    Route(
        "DELETE", "/api/networks/{network}/members/{node_id}", revoke_member,
        "Revoke a member (admins): refused by every member, keys rotated", _NETWORK,
    ),
    Route(
        "POST", "/api/networks/{network}/admins", promote_member,
        "Make a member an admin (admins): it may then invite, revoke and promote", _NETWORK,
        body=_body(member={"type": "string", "description": "the member's node ID"}),
    ),
    Route(
        "DELETE", "/api/networks/{network}/admins/{node_id}", demote_member,
        "Make an admin a plain member again (admins; never the creator)", _NETWORK,
    ),
    Route(
        "DELETE", "/api/networks/{network}", leave_network, "Leave a network (forget it here)",
        obj(left=_STRING, id=_STRING),
    ),
    Route(
        "POST", "/api/networks/{network}/shares", share_in_network,
        "Share a folder or file with the members only (a private torrent)", _SHARE,
        status=201, also=((200, "already shared"),), body=_body(path=_STRING),
    ),
    Route(
        "GET", "/api/networks/{network}/search", search_network,
        "Search what the members share", array_of(_RESULT),
        query=(Param("q", _STRING, "words", required=True), Param("limit", _INT),
               Param("timeout", {"type": "number"}, "seconds")),
    ),
    Route(
        "POST", "/api/networks/{network}/broadcast", broadcast_in_network,
        "Send a text to every member (channel network:NAME)", _SENT, status=201,
        body=_body(text=_STRING),
    ),
)  # fmt: skip

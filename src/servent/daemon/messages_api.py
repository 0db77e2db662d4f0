"""The messaging part of the HTTP API: contacts, blocks, direct messages and broadcasts.

Thin handlers over :class:`~servent.node.messaging.Messenger`, declared once in
:data:`MESSAGE_ROUTES` (the app's route table includes them).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from servent.daemon.api import NODE_KEY, json_object
from servent.daemon.routes import Param, Route, Schema, array_of, obj
from servent.node.messaging import Messenger, RateLimitedError

__all__ = ["MESSAGE_ROUTES", "MESSAGE_SCHEMA"]

#: The longest ``wait`` a POST /api/messages may ask for, in seconds.
MAX_WAIT = 600.0
MAX_LIMIT = 10_000


def _messenger(request: web.Request) -> Messenger:
    return request.app[NODE_KEY].messenger


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise web.HTTPBadRequest(reason=f"'{key}' must be a string")
    return value


def _number(text: str | None, key: str, high: float) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"'{key}' must be a number") from None
    if not 0 <= value <= high:
        raise web.HTTPBadRequest(reason=f"'{key}' must be between 0 and {high:g}")
    return value


def _rate_limited(exc: RateLimitedError) -> web.Response:
    return web.json_response(
        {"error": str(exc), "retry_after": round(exc.retry_after, 1)},
        status=429,
        headers={"Retry-After": str(max(1, round(exc.retry_after)))},
    )


# -- contacts and blocks -------------------------------------------------------------


async def list_contacts(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).contacts())


async def add_contact(request: web.Request) -> web.Response:
    body = await json_object(request)
    node_id = _text(body, "id")
    assert node_id is not None
    contact = _messenger(request).add_contact(node_id, _text(body, "name", required=False))
    return web.json_response(contact, status=201)


async def remove_contact(request: web.Request) -> web.Response:
    node_id = request.match_info.get("node_id") or request.query.get("id")
    if not node_id:
        raise web.HTTPBadRequest(reason="name the contact: /api/contacts/{node_id} or ?id=")
    if not _messenger(request).remove_contact(node_id):
        raise web.HTTPNotFound(reason=f"no contact {node_id}")
    return web.json_response({"removed": node_id})


async def list_blocked(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).blocked())


async def block(request: web.Request) -> web.Response:
    node_id = _text(await json_object(request), "id")
    assert node_id is not None
    _messenger(request).block(node_id)
    return web.json_response({"blocked": node_id}, status=201)


async def unblock(request: web.Request) -> web.Response:
    node_id = request.match_info["node_id"]
    if not _messenger(request).unblock(node_id):
        raise web.HTTPNotFound(reason=f"{node_id} is not blocked")
    return web.json_response({"unblocked": node_id})


# -- messages ------------------------------------------------------------------------


async def list_messages(request: web.Request) -> web.Response:
    query = request.query
    direction = query.get("direction")
    if direction not in (None, "in", "out"):
        raise web.HTTPBadRequest(reason="'direction' is 'in' or 'out'")
    limit = _number(query.get("limit"), "limit", MAX_LIMIT)
    messages = _messenger(request).messages(
        direction=direction,
        peer=query.get("peer"),
        channel=query.get("channel"),
        since=_number(query.get("since"), "since", 2.0**40),
        limit=1000 if limit is None else int(limit),
    )
    return web.json_response(messages)


async def post_message(request: web.Request) -> web.Response:
    """``{"to", "text", "wait"}`` sends a direct message (201 once delivered, 202 while it
    waits in the outbox); ``{"broadcast": true, "text", "channel"}`` broadcasts."""
    body = await json_object(request)
    text = _text(body, "text")
    assert text is not None
    messenger = _messenger(request)
    try:
        if body.get("broadcast") is True:
            channel = _text(body, "channel", required=False) or ""
            return web.json_response(await messenger.broadcast(text, channel), status=201)
        recipient = _text(body, "to")
        assert recipient is not None
        wait = body.get("wait", 0)
        if not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT:
            raise web.HTTPBadRequest(reason=f"'wait' is seconds, 0 to {MAX_WAIT:g}")
        sent = await messenger.send(recipient, text)
    except RateLimitedError as exc:
        return _rate_limited(exc)
    if wait:
        sent = await messenger.wait_delivered(sent["id"], float(wait))
    return web.json_response(sent, status=201 if sent["delivered"] is not None else 202)


async def list_channels(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).channels())


async def follow_channel(request: web.Request) -> web.Response:
    """Keep and relay broadcast channel ``{"channel"}`` (found through its rendezvous)."""
    channel = _text(await json_object(request), "channel")
    assert channel is not None
    messenger = _messenger(request)
    added = await messenger.follow(channel)
    return web.json_response(messenger.channels(), status=201 if added else 200)


async def unfollow_channel(request: web.Request) -> web.Response:
    channel = request.query.get("channel")
    if channel is None:
        raise web.HTTPBadRequest(reason="'channel' is required")
    messenger = _messenger(request)
    await messenger.unfollow(channel)
    return web.json_response(messenger.channels())


async def list_outbox(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).outbox())


async def mark_read(request: web.Request) -> web.Response:
    body = await json_object(request)
    messenger = _messenger(request)
    messenger.mark_read(
        peer=_text(body, "peer", required=False), channel=_text(body, "channel", required=False)
    )
    return web.json_response(messenger.unread())


async def get_unread(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).unread())


async def get_messaging(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).network())


_NODE_ID = {"type": "string", "pattern": "^[a-z2-7]{55}$"}
_NULLABLE_TEXT = {"type": "string", "nullable": True}
_NUMBER_OR_NULL = {"type": "number", "nullable": True}
MESSAGE_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "from": _NODE_ID,
        "name": _NULLABLE_TEXT,
        "to": {**_NODE_ID, "nullable": True},
        "channel": _NULLABLE_TEXT,
        "text": {"type": "string"},
        "time": {"type": "number"},
        "id": {"type": "string", "description": "32 hex (direct) or 40 hex (broadcast)"},
        "verified": {"type": "boolean"},
        "direction": {"type": "string", "enum": ["in", "out"]},
        "kind": {"type": "string", "enum": ["direct", "broadcast"]},
        "read": {"type": "boolean"},
        "delivered": _NUMBER_OR_NULL,
        "failed": _NULLABLE_TEXT,
        "attempts": {"type": "integer"},
        "next_attempt": _NUMBER_OR_NULL,
        "last_error": _NULLABLE_TEXT,
    },
    "required": ["from", "name", "to", "channel", "text", "time", "id", "verified"],
}
CONTACT_SCHEMA = obj(
    id=_NODE_ID,
    name={"type": "string"},
    added={"type": "number"},
    unread={"type": "integer"},
    connected={"type": "boolean", "description": "a node channel to it is open"},
)
UNREAD_SCHEMA = obj(
    direct={"type": "object", "additionalProperties": {"type": "integer"}},
    channels={"type": "object", "additionalProperties": {"type": "integer"}},
)
_MESSAGES = array_of(MESSAGE_SCHEMA)
_SEND = obj(
    to=_NODE_ID,
    text={"type": "string", "maxLength": 65536},
    wait={"type": "number", "minimum": 0, "maximum": MAX_WAIT},
    broadcast={"type": "boolean"},
    channel={"type": "string", "maxLength": 64},
)
_ID_BODY = {**obj(id=_NODE_ID), "required": ["id"]}
_QUERY = (
    Param("direction", {"type": "string", "enum": ["in", "out"]}),
    Param("peer", _NODE_ID, "only the direct messages with this node"),
    Param("channel", {"type": "string"}, "only the broadcasts of this channel ('' everyone)"),
    Param("since", {"type": "number"}, "only messages after this Unix time"),
    Param("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}, "the newest N"),
)

MESSAGE_ROUTES: tuple[Route, ...] = (
    Route(
        "GET", "/api/contacts", list_contacts, "The address book, with unread counts",
        array_of(CONTACT_SCHEMA),
    ),
    Route(
        "POST", "/api/contacts", add_contact, "Add (or rename) a contact", CONTACT_SCHEMA,
        status=201, body={**_ID_BODY, "properties": {"id": _NODE_ID, "name": _NULLABLE_TEXT}},
    ),
    Route(
        "DELETE", "/api/contacts", remove_contact, "Remove the contact named by ?id=",
        obj(removed=_NODE_ID), query=(Param("id", _NODE_ID, "the contact", required=True),),
    ),
    Route(
        "DELETE", "/api/contacts/{node_id}", remove_contact, "Remove a contact",
        obj(removed=_NODE_ID),
    ),
    Route("GET", "/api/blocked", list_blocked, "Blocked node IDs", array_of(_NODE_ID)),
    Route(
        "POST", "/api/blocked", block, "Block a node: its messages are dropped",
        obj(blocked=_NODE_ID), status=201, body=_ID_BODY,
    ),
    Route(
        "DELETE", "/api/blocked/{node_id}", unblock, "Unblock a node", obj(unblocked=_NODE_ID),
    ),
    Route(
        "GET", "/api/messages", list_messages, "Messages, oldest first (the newest limit)",
        _MESSAGES, query=_QUERY,
    ),
    Route(
        "POST", "/api/messages", post_message,
        "Send {to, text, wait}: 201 once delivered, 202 while queued; or broadcast "
        "{broadcast: true, text, channel}: 201; 429 with retry_after beyond the rate limit",
        MESSAGE_SCHEMA, status=201, also=((202, "queued in the outbox"),), body=_SEND,
    ),
    Route("GET", "/api/messages/outbox", list_outbox, "Direct messages not yet delivered",
          _MESSAGES),
    Route("GET", "/api/messages/unread", get_unread, "Unread counts per contact and channel",
          UNREAD_SCHEMA),
    Route(
        "POST", "/api/messages/read", mark_read, "Mark a conversation read: {peer} or {channel}",
        UNREAD_SCHEMA, body=obj(peer=_NODE_ID, channel={"type": "string"}),
    ),
    Route(
        "GET", "/api/messaging", get_messaging,
        "Gossip neighbours, mesh size, outbox size, channels kept, candidate neighbours known",
        obj(id=_NODE_ID, neighbours=array_of(_NODE_ID), mesh={"type": "integer"},
            outbox={"type": "integer"}, channels=array_of({"type": "string"}),
            channel_neighbours={"type": "object", "additionalProperties": {"type": "integer"}},
            known={"type": "integer"}),
    ),
    Route(
        "GET", "/api/channels", list_channels,
        "Broadcast channels this node keeps and relays ('' is everyone)",
        array_of({"type": "string"}),
    ),
    Route(
        "POST", "/api/channels", follow_channel,
        "Keep and relay broadcast channel {channel}: 201 when new, 200 when already kept",
        array_of({"type": "string"}), status=201, also=((200, "already kept"),),
        body={**obj(channel={"type": "string", "maxLength": 64}), "required": ["channel"]},
    ),
    Route(
        "DELETE", "/api/channels", unfollow_channel,
        "Stop keeping the channel named by ?channel= ('' is always kept)",
        array_of({"type": "string"}),
        query=(Param("channel", {"type": "string"}, "the channel", required=True),),
    ),
)  # fmt: skip

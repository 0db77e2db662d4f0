"""The messaging part of the HTTP API: contacts, blocks, direct messages and broadcasts.

Thin handlers over :class:`~servent.node.messaging.Messenger`; the routes and
their OpenAPI description are listed once here (:data:`MESSAGE_ROUTES`,
:func:`message_paths`) and added to the app by :func:`add_message_routes`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from servent.daemon.api import NODE_KEY
from servent.node.messaging import Messenger, RateLimitedError

__all__ = ["MESSAGE_ROUTES", "add_message_routes", "message_paths"]

#: The longest ``wait`` a POST /api/messages may ask for, in seconds.
MAX_WAIT = 600.0
MAX_LIMIT = 10_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _messenger(request: web.Request) -> Messenger:
    return request.app[NODE_KEY].messenger


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        value = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(reason="the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(reason="the request body must be a JSON object")
    return value


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
    body = await _body(request)
    node_id = _text(body, "id")
    assert node_id is not None
    contact = _messenger(request).add_contact(node_id, _text(body, "name", required=False))
    return web.json_response(contact, status=201)


async def remove_contact(request: web.Request) -> web.Response:
    node_id = request.match_info.get("id") or request.query.get("id")
    if not node_id:
        raise web.HTTPBadRequest(reason="name the contact: /api/contacts/{id} or ?id=")
    if not _messenger(request).remove_contact(node_id):
        raise web.HTTPNotFound(reason=f"no contact {node_id}")
    return web.json_response({"removed": node_id})


async def list_blocked(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).blocked())


async def block(request: web.Request) -> web.Response:
    node_id = _text(await _body(request), "id")
    assert node_id is not None
    _messenger(request).block(node_id)
    return web.json_response({"blocked": node_id}, status=201)


async def unblock(request: web.Request) -> web.Response:
    node_id = request.match_info["id"]
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
    body = await _body(request)
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


async def list_outbox(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).outbox())


async def mark_read(request: web.Request) -> web.Response:
    body = await _body(request)
    messenger = _messenger(request)
    messenger.mark_read(
        peer=_text(body, "peer", required=False), channel=_text(body, "channel", required=False)
    )
    return web.json_response(messenger.unread())


async def get_unread(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).unread())


async def get_messaging(request: web.Request) -> web.Response:
    return web.json_response(_messenger(request).network())


#: (method, path, handler, summary) of every messaging route.
MESSAGE_ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    ("GET", "/api/contacts", list_contacts, "The address book, with unread counts"),
    ("POST", "/api/contacts", add_contact, "Add (or rename) a contact: {id, name}"),
    ("DELETE", "/api/contacts", remove_contact, "Remove the contact ?id="),
    ("DELETE", "/api/contacts/{id}", remove_contact, "Remove a contact"),
    ("GET", "/api/blocked", list_blocked, "Blocked node IDs"),
    ("POST", "/api/blocked", block, "Block a node: {id}; its messages are dropped"),
    ("DELETE", "/api/blocked/{id}", unblock, "Unblock a node"),
    (
        "GET", "/api/messages", list_messages,
        "Messages, oldest first (?direction=in|out, ?peer=ID, ?channel=NAME, ?since, ?limit)",
    ),
    (
        "POST", "/api/messages", post_message,
        "Send {to, text, wait} (201 delivered, 202 queued) or broadcast "
        "{broadcast: true, text, channel} (201); 429 beyond the rate limit",
    ),
    ("GET", "/api/messages/outbox", list_outbox, "Direct messages not yet delivered"),
    ("GET", "/api/messages/unread", get_unread, "Unread counts per contact and channel"),
    ("POST", "/api/messages/read", mark_read, "Mark read: {peer} or {channel}"),
    ("GET", "/api/messaging", get_messaging, "Gossip neighbours and outbox size"),
)  # fmt: skip


def add_message_routes(app: web.Application) -> None:
    for method, path, handler, _ in MESSAGE_ROUTES:
        app.router.add_route(method, path, handler)


def message_paths() -> dict[str, dict[str, Any]]:
    """The OpenAPI ``paths`` entries of :data:`MESSAGE_ROUTES`."""
    error = {"$ref": "#/components/responses/Error"}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, _, summary in MESSAGE_ROUTES:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "JSON", "content": {"application/json": {}}},
                "400": error,
                "401": error,
            },
        }
        if "{id}" in path:
            operation["parameters"] = [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if method == "POST":
            operation["requestBody"] = {"content": {"application/json": {}}}
        paths.setdefault(path, {})[method.lower()] = operation
    return paths

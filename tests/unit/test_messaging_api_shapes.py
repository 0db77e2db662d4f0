"""The messaging routes answer with the shapes they declare (a real node, a real HTTP
server on loopback), and the issue's message keys are required in the schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_on_loopback import TOKEN, api_client, check_shape

from servent.codec.node_id import format_node_id
from servent.daemon.app import ROUTES
from servent.daemon.messages_api import MESSAGE_ROUTES, MESSAGE_SCHEMA

OTHER = format_node_id(bytes(range(32)))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with api_client(tmp_path) as http:
        yield http


def test_the_issue_keys_are_required_and_every_route_is_in_the_table() -> None:
    assert set(MESSAGE_SCHEMA["required"]) == {
        "from", "name", "to", "channel", "text", "time", "id", "verified",
    }  # fmt: skip
    assert all(route in ROUTES for route in MESSAGE_ROUTES)


async def test_real_answers_have_the_declared_shapes(client: TestClient[Any, Any]) -> None:
    declared = {(r.method, r.path): r for r in ROUTES}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    called: set[tuple[str, str]] = set()

    async def call(method: str, template: str, path: str, body: Any = None) -> Any:
        route = declared[(method, template)]
        called.add((method, template))
        answer = await client.request(method, path, json=body, headers=headers)
        assert answer.status in {route.status, *(code for code, _ in route.also)}, (
            await answer.text()
        )
        value = await answer.json()
        check_shape(value, route.response)
        return value

    await call("POST", "/api/contacts", "/api/contacts", {"id": OTHER, "name": "Zed"})
    assert (await call("GET", "/api/contacts", "/api/contacts"))[0]["name"] == "Zed"
    await call("DELETE", "/api/contacts/{node_id}", f"/api/contacts/{OTHER}")
    await call("POST", "/api/contacts", "/api/contacts", {"id": OTHER})
    await call("DELETE", "/api/contacts", f"/api/contacts?id={OTHER}")
    queued = await call("POST", "/api/messages", "/api/messages", {"to": OTHER, "text": "hi"})
    assert queued["delivered"] is None
    cast = {"broadcast": True, "text": "all", "channel": "news"}
    assert (await call("POST", "/api/messages", "/api/messages", cast))["channel"] == "news"
    assert len(await call("GET", "/api/messages", "/api/messages?limit=10")) == 2
    await call("GET", "/api/messages/outbox", "/api/messages/outbox")
    await call("GET", "/api/messages/unread", "/api/messages/unread")
    await call("POST", "/api/messages/read", "/api/messages/read", {"peer": OTHER})
    await call("POST", "/api/blocked", "/api/blocked", {"id": OTHER})
    assert await call("GET", "/api/blocked", "/api/blocked") == [OTHER]
    await call("DELETE", "/api/blocked/{node_id}", f"/api/blocked/{OTHER}")
    messaging = await call("GET", "/api/messaging", "/api/messaging")
    assert messaging["channels"] == ["", "news"]  # broadcasting on a channel keeps it
    assert await call("POST", "/api/channels", "/api/channels", {"channel": "x"}) == [
        "", "news", "x",
    ]  # fmt: skip
    assert await call("GET", "/api/channels", "/api/channels") == ["", "news", "x"]
    assert await call("DELETE", "/api/channels", "/api/channels?channel=news") == ["", "x"]
    assert called == {(r.method, r.path) for r in MESSAGE_ROUTES}

    bad = await client.post("/api/messages", json={"to": "nope", "text": "x"}, headers=headers)
    assert bad.status == 400 and "55 characters" in (await bad.json())["error"]
    gone = await client.delete(f"/api/contacts/{OTHER}", headers=headers)
    assert gone.status == 404

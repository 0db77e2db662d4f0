"""The network routes answer with their declared shapes (a real node behind a real HTTP
server on loopback), and refuse bad input with a 400 that says why."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_on_loopback import HEADERS, api_client

from servent.daemon.app import ROUTES


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with api_client(tmp_path) as http:
        yield http


def _keys(value: Any, schema: dict[str, Any]) -> None:
    if schema.get("type") == "array":
        assert isinstance(value, list)
        for item in value:
            _keys(item, schema["items"])
    elif schema.get("type") == "object":
        assert isinstance(value, dict)
        assert set(value) == set(schema["properties"]), set(value) ^ set(schema["properties"])


async def test_network_routes_answer_their_declared_shapes(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    declared = {(r.method, r.path): r for r in ROUTES}

    async def call(
        method: str, template: str, body: Any = None, query: str = "", **names: str
    ) -> Any:
        route = declared[(method, template)]
        path = template
        for name, value in names.items():
            path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        answer = await client.request(method, path + query, json=body, headers=HEADERS)
        assert answer.status in {route.status, *(c for c, _ in route.also)}, await answer.text()
        value = await answer.json()
        _keys(value, route.response)
        return value

    created = await call("POST", "/api/networks", {"name": "my club"})
    assert created["name"] == "my club" and created["admin"] is True
    listed = await call("GET", "/api/networks")
    assert [n["id"] for n in listed] == [created["id"]]
    invite = await call(
        "POST", "/api/networks/{network}/invites", {"uses": 3, "expires": "2h"}, network="my club"
    )
    assert invite["invite"].startswith("snet1") and invite["uses"] == 3 and invite["expires"]
    members = await call("GET", "/api/networks/{network}/members", network=created["id"])
    assert [m["you"] for m in members] == [True]
    own = urllib.parse.quote(members[0]["id"], safe="")
    for method, tail, body, reason in (
        ("DELETE", f"/admins/{own}", None, "creator"),
        ("POST", "/admins", {"member": members[0]["id"]}, "already an admin"),
    ):
        refused = await client.request(method, f"/api/networks/{created['id']}{tail}",
                                       json=body, headers=HEADERS)  # fmt: skip
        assert refused.status == 400 and reason in (await refused.json())["error"]
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"private words" * 100)
    shared = await call(
        "POST", "/api/networks/{network}/shares", {"path": str(folder)}, network="my club"
    )
    assert shared["network"] == "my club" and shared["magnet"].startswith("magnet:")
    found = await call("GET", "/api/networks/{network}/search", query="?q=notes", network="my club")
    assert found == []
    sent = await call(
        "POST", "/api/networks/{network}/broadcast", {"text": "hello"}, network="my club"
    )
    assert sent["members"] == 0
    left = await call("DELETE", "/api/networks/{network}", network="my club")
    assert left["left"] == "my club"
    assert await call("GET", "/api/networks") == []


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("POST", "/api/networks", {"name": ""}, "name"),
        ("POST", "/api/networks", {"name": "x" * 65}, "network name"),
        ("POST", "/api/networks/join", {"invite": "snet1zzzz"}, "invitation"),
        ("POST", "/api/networks/nope/invites", {}, "no network"),
        ("GET", "/api/networks/nope/members", None, "no network"),
        ("DELETE", "/api/networks/nope/members/x", None, "no network"),
        ("POST", "/api/networks/nope/admins", {"member": "x"}, "no network"),
        ("POST", "/api/networks/nope/admins", {}, "'member'"),
        ("DELETE", "/api/networks/nope/admins/x", None, "no network"),
    ],
)
async def test_bad_network_requests_are_400_with_a_reason(
    client: TestClient[Any, Any], method: str, path: str, body: Any, reason: str
) -> None:
    answer = await client.request(method, path, json=body, headers=HEADERS)
    assert answer.status == 400
    assert reason in (await answer.json())["error"]

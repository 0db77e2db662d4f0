"""The API is declared once: the router and the OpenAPI document come from one table,
and real answers have the declared shapes (a real node, a real HTTP server on loopback)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from api_on_loopback import TOKEN, api_client, check_shape

from network_nodes import loopback_node
from servent import __version__
from servent.daemon.app import ROUTES, build_app
from servent.daemon.openapi import openapi_document
from servent.daemon.schemas import COMPONENTS
from servent.node.events import EVENT_TYPES
from servent.node.status import TorrentStatus
from servent.storage.torrent_creator import create_torrent


def _router_operations(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        assert isinstance(path, str)
        if route.method != "HEAD":  # aiohttp adds HEAD beside each GET
            found.add((route.method.lower(), path))
    return found


def test_every_registered_route_is_in_the_document_and_vice_versa(tmp_path: Path) -> None:
    app = build_app(loopback_node(tmp_path / "data"), TOKEN)
    document = openapi_document(__version__, ROUTES)
    documented = {(m, path) for path, item in document["paths"].items() for m in item}
    assert _router_operations(app) == documented
    assert len(documented) == len(ROUTES)  # no route declared twice


def test_the_document_is_consistent() -> None:
    document = openapi_document(__version__, ROUTES)
    text = repr(document)
    for name in COMPONENTS:
        assert f"#/components/schemas/{name}" in text or name in {"Settings"}
    for path, item in document["paths"].items():
        for operation in item.values():
            placeholders = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            assert [f"{{{n}}}" for n in placeholders] == [
                part for part in path.split("/") if part.startswith("{")
            ]
            if path.startswith("/api/"):
                assert "401" in operation["responses"] and "security" not in operation
            else:
                assert operation["security"] == []  # the web UI's files are public
    events = document["paths"]["/api/events"]["get"]["responses"]["200"]
    assert all(
        name in events["content"]["text/event-stream"]["schema"]["description"]
        for name in EVENT_TYPES
    )
    # A field of TorrentStatus is documented because it is a field, not by hand.
    torrent = document["components"]["schemas"]["Torrent"]
    assert set(torrent["properties"]) == {f.name for f in dataclasses.fields(TorrentStatus)}
    assert torrent["properties"]["error"]["type"] == "string"
    assert torrent["properties"]["error"]["nullable"] is True
    assert torrent["properties"]["eta"]["nullable"] is True


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with api_client(tmp_path) as http:
        yield http


async def test_real_answers_have_the_declared_shapes(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"x" * 40_000)
    (folder / "b.txt").write_bytes(b"notes" * 100)
    torrent = base64.b64encode(create_torrent(folder).to_bytes()).decode()
    declared = {(r.method, r.path): r for r in ROUTES}
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def call(method: str, template: str, path: str, body: Any = None) -> Any:
        route = declared[(method, template)]
        answer = await client.request(method, path, json=body, headers=headers)
        assert answer.status in {route.status, *(code for code, _ in route.also)}, (
            await answer.text()
        )
        value = await answer.json()
        check_shape(value, route.response)
        return value

    served = await call("GET", "/api/openapi.json", "/api/openapi.json")
    documented = {(m, path) for path, item in served["paths"].items() for m in item}
    assert documented == _router_operations(client.app)  # the served document
    added = await call("POST", "/api/torrents", "/api/torrents", {"torrent": torrent})
    one = f"/api/torrents/{added['id']}"
    await call("GET", "/api/status", "/api/status")
    await call("GET", "/api/identity", "/api/identity")
    await call("GET", "/api/torrents", "/api/torrents")
    await call("GET", "/api/torrents/{id}", one)
    await call("GET", "/api/torrents/{id}/files", one + "/files")
    priorities = {"priorities": {"0": 2}}
    await call("PUT", "/api/torrents/{id}/priorities", one + "/priorities", priorities)
    await call("GET", "/api/torrents/{id}/peers", one + "/peers")
    await call("POST", "/api/torrents/{id}/pause", one + "/pause")
    await call("DELETE", "/api/torrents/{id}", one)
    await call("POST", "/api/shares", "/api/shares", {"path": str(folder)})
    await call("GET", "/api/shares", "/api/shares")

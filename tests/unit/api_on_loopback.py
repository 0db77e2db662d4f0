"""The daemon's real HTTP app in front of a real node on loopback, and a check that an
answer has the shape its route declares: shared by the API shape tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from network_nodes import loopback_node
from servent.daemon.app import build_app
from servent.daemon.schemas import COMPONENTS

TOKEN = "test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def api_client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    """An HTTP client of the app of a running loopback node (token :data:`TOKEN`)."""
    async with loopback_node(tmp_path / "data") as node:
        server = TestServer(build_app(node, TOKEN), host="127.0.0.1", port=0)
        async with TestClient(server) as http:
            yield http


def check_shape(value: Any, schema: dict[str, Any]) -> None:
    """``value`` has only declared properties and every required one (arrays: each item)."""
    if "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("type") == "array":
        assert isinstance(value, list)
        for item in value:
            check_shape(item, schema.get("items", {}))
    elif schema.get("type") == "object" and "properties" in schema:
        assert isinstance(value, dict)
        assert set(value) <= set(schema["properties"]), set(value) - set(schema["properties"])
        assert set(schema.get("required", ())) <= set(value)

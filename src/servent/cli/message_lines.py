"""Shared by the messaging commands: readable message lines, and the SSE reader of ``--follow``."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from servent.cli.api_client import ApiClient
from servent.errors import DaemonError

#: The keys of a message in ``servent messages --json`` (the interface the issue fixes).
MESSAGE_KEYS = ("from", "name", "to", "channel", "text", "time", "id", "verified")
#: Extra keys ``--outbox`` shows for each waiting message.
OUTBOX_KEYS = (*MESSAGE_KEYS, "attempts", "next_attempt", "last_error")


def picked(message: dict[str, Any], keys: tuple[str, ...] = MESSAGE_KEYS) -> dict[str, Any]:
    return {key: message.get(key) for key in keys}


def message_line(message: dict[str, Any]) -> str:
    """``TIME  WHO -> WHERE  TEXT`` on one line (new lines in the text shown as ``⏎``)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(message["time"]))
    sender = message.get("name") or message["from"][:12]
    if message.get("channel") is not None:
        where = f"#{message['channel']}" if message["channel"] else "everyone"
    else:
        where = "you" if message.get("direction", "in") == "in" else message["to"][:12]
    text = message["text"].replace("\n", " ⏎ ")
    return f"{when}  {sender} -> {where}: {text}"


def outbox_line(message: dict[str, Any]) -> str:
    error = message.get("last_error") or "not tried yet"
    return (
        f"{message['id']}  to {message['to'][:12]}  {message['attempts']} attempts  "
        f"({error})  {message['text'][:60]}"
    )


def follow_events(client: ApiClient, kinds: frozenset[str]) -> Iterator[dict[str, Any]]:
    """The data of each server-sent event whose name is in ``kinds``, as it arrives
    (a typed event's ``message`` field when it has one)."""
    request = urllib.request.Request(client.url + "/api/events")
    request.add_header("Authorization", f"Bearer {client.token}")
    try:
        response = urllib.request.urlopen(request, timeout=None)
    except OSError as exc:
        raise DaemonError(f"cannot follow the daemon's events: {exc}") from None
    with response:
        name = ""
        for raw in response:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:") and name in kinds:
                data = json.loads(line[5:])
                inner = data.get("message") if isinstance(data, dict) else None
                yield inner if isinstance(inner, dict) else data
            elif not line:
                name = ""

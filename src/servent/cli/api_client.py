"""A small synchronous client for the daemon's HTTP API, shared by the CLI commands.

It finds the daemon of a data directory through ``daemon.json`` and reads the
token from the same directory, so ``servent list`` just works on the machine
where the daemon runs.  Standard library only: CLI start-up stays fast.
"""

from __future__ import annotations

import argparse
import functools
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from servent.daemon.files import read_daemon_file, read_token
from servent.errors import DaemonError

TIMEOUT = 120.0
#: The event stream sends a snapshot every second: this much silence means a hung daemon.
STREAM_TIMEOUT = 30.0
#: Longest SSE line read (a snapshot of many torrents is one line).
MAX_STREAM_LINE = 16 * 1024 * 1024


class ApiClient:
    def __init__(self, url: str, token: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> ApiClient:
        info = read_daemon_file(data_dir)
        return cls(info["url"], read_token(data_dir))

    def _open(self, request: urllib.request.Request, timeout: float) -> Any:
        request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                message = exc.reason
            raise DaemonError(f"{message} (HTTP {exc.code})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DaemonError(
                f"cannot reach the node at {self.url}: {reason} "
                "(is it running? 'servent start' starts it)"
            ) from None

    def events(self, on_open: Callable[[], None] | None = None) -> Iterator[tuple[str, Any]]:
        """``(name, data)`` of each server-sent event of ``/api/events`` as it comes,
        until the daemon ends the stream.  ``on_open`` runs once the daemon answered:
        every event from then on is seen."""
        request = urllib.request.Request(self.url + "/api/events")
        with self._open(request, STREAM_TIMEOUT) as response:
            if on_open is not None:
                on_open()
            name, data = "", ""
            while True:
                try:
                    raw = response.readline(MAX_STREAM_LINE)
                except OSError as exc:
                    raise DaemonError(f"the daemon's event stream broke off: {exc}") from None
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data += line.removeprefix("data: ")
                elif not line and name:
                    try:
                        yield name, json.loads(data)
                    except ValueError:
                        raise DaemonError("the daemon sent an event that is not JSON") from None
                    name, data = "", ""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Call the API; returns the decoded JSON or raises :class:`DaemonError`."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        with self._open(request, self.timeout) as response:
            try:
                payload = response.read()
            except OSError as exc:
                raise DaemonError(f"the daemon's answer broke off: {exc}") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise DaemonError("the daemon answered with something that is not JSON") from None


def find_daemon(data_dir: Path, *, timeout: float = 3.0) -> ApiClient | None:
    """A client for the daemon of ``data_dir`` if one runs and answers, else None."""
    try:
        client = ApiClient.for_data_dir(data_dir)
    except (DaemonError, OSError, KeyError, ValueError):
        return None
    client.timeout = timeout
    try:
        client.request("GET", "/api/status")
    except DaemonError:
        return None
    return client


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--json``, common to every command that talks to the daemon."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the daemon's data directory (default: $XDG_DATA_HOME/servent)",
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")


def client_from_args(args: argparse.Namespace) -> ApiClient:
    from servent.node.config import default_data_dir

    data_dir: Path = args.data_dir.expanduser() if args.data_dir else default_data_dir()
    return ApiClient.for_data_dir(data_dir)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def human_bytes(count: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value = float(count)
    index = 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{value:.0f} {units[index]}" if index == 0 else f"{value:.1f} {units[index]}"


def torrent_line(t: dict[str, Any]) -> str:
    """One readable line per torrent: id, state, progress, rates, peers, ETA, name,
    and for a torrent that stopped on an error, why."""
    eta = t.get("eta")
    eta_text = "-" if eta is None else f"{eta:.0f}s"
    line = (
        f"{t['id'][:12]}  {t['state']:<11} {t['progress'] * 100:5.1f}%  "
        f"{human_bytes(t['size']):>10}  ↓{human_bytes(t['download_rate'])}/s "
        f"↑{human_bytes(t['upload_rate'])}/s  {t['peers']} peers  eta {eta_text}  {t['name']}"
    )
    if t.get("error"):
        line += f"\n{'':14}error: {t['error']}"
    return line


#: Shortest id prefix accepted: an empty or tiny prefix would pick a torrent by accident.
MIN_ID_PREFIX = 4
_HEX = frozenset("0123456789abcdef")
_SHOWN_CANDIDATES = 5


def _candidates(torrents: list[dict[str, Any]]) -> str:
    shown = ", ".join(f"{t['id'][:12]} ({t.get('name', '')})" for t in torrents[:_SHOWN_CANDIDATES])
    more = len(torrents) - _SHOWN_CANDIDATES
    return shown + (f" and {more} more" if more > 0 else "")


def match_id(torrents: list[dict[str, Any]], given: str) -> str:
    """The one torrent id that ``given`` names: the full id or a unique prefix of at
    least :data:`MIN_ID_PREFIX` hex characters.  Anything else is an error that names
    the candidates, so a command never acts on a torrent the user did not mean."""
    prefix = given.strip().lower()
    if len(prefix) == 40 and set(prefix) <= _HEX:
        return prefix
    if not prefix or not set(prefix) <= _HEX or len(prefix) < MIN_ID_PREFIX:
        what = "no torrent id given" if not prefix else f"{given!r} is not a torrent id prefix"
        matches = [t for t in torrents if t["id"].startswith(prefix)] if prefix else torrents
        hint = f"; candidates: {_candidates(matches)}" if matches else "; no torrents"
        raise DaemonError(
            f"{what}: give at least {MIN_ID_PREFIX} hex characters of an id "
            f"('servent list' shows them){hint}"
        )
    matches = [t for t in torrents if t["id"].startswith(prefix)]
    if not matches:
        raise DaemonError(f"no torrent id starts with {prefix!r} ('servent list' shows the ids)")
    if len(matches) > 1:
        raise DaemonError(
            f"{prefix!r} is ambiguous: it matches {len(matches)} torrents: "
            f"{_candidates(matches)}; give more characters"
        )
    return str(matches[0]["id"])


def resolve_id(client: ApiClient, given: str) -> str:
    """The id ``given`` names among the daemon's torrents (see :func:`match_id`)."""
    prefix = given.strip().lower()
    if len(prefix) == 40 and set(prefix) <= _HEX:
        return prefix
    return match_id(client.request("GET", "/api/torrents"), given)


def add_torrent_action(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], action: str
) -> None:
    """``servent ACTION ID``: POST ``/api/torrents/ID/ACTION`` and print the torrent
    (pause and resume differ by nothing else)."""
    parser = subparsers.add_parser(
        action, help=f"{action} a torrent (full id or a unique prefix of 4+ characters)"
    )
    parser.add_argument("id", metavar="ID", help="torrent id, or its first 4+ characters")
    add_client_arguments(parser)
    parser.set_defaults(func=functools.partial(_run_torrent_action, action))


def _run_torrent_action(action: str, args: argparse.Namespace) -> int:
    client = client_from_args(args)
    torrent_id = resolve_id(client, args.id)
    result = client.request("POST", f"/api/torrents/{torrent_id}/{action}")
    if args.json:
        print_json(result)
    else:
        print(torrent_line(result))
    return 0

"""``servent add MAGNET_OR_TORRENT``: add a download to the running daemon.

On a terminal (or with ``--watch``) it then shows where peers may come from
(DHT nodes, trackers, peers connected), updated in place, until the first
peer delivers or the torrent is complete; Ctrl-C stops watching only (the
daemon keeps the torrent).  ``--json`` output stays one JSON document.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from servent.cli.api_client import ApiClient

#: How often the search line is refreshed while watching.
WATCH_REFRESH = 0.5


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("add", help="add a magnet link or .torrent file to the daemon")
    parser.add_argument("source", metavar="MAGNET_OR_TORRENT")
    parser.add_argument("--save-path", metavar="DIR", help="download folder for this torrent")
    parser.add_argument(
        "--peer",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="a peer to download from (repeatable; [IPv6]:PORT for IPv6)",
    )
    watch = parser.add_mutually_exclusive_group()
    watch.add_argument(
        "--watch",
        dest="watch",
        action="store_true",
        default=None,
        help="show where peers come from until one delivers (default on a terminal)",
    )
    watch.add_argument(
        "--no-watch", dest="watch", action="store_false", help="return as soon as it is added"
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def _peer_texts(args: argparse.Namespace) -> list[str]:
    from servent.cli.peer_sources import parse_peer

    peers = [parse_peer(text) for text in args.peer]
    return [f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in peers]


def _add(client: ApiClient, args: argparse.Namespace) -> dict[str, Any]:
    """POST the magnet as JSON, or the .torrent file as it is (no base64 growth)."""
    from pathlib import Path
    from urllib.parse import urlencode

    save_path = str(Path(args.save_path).expanduser().resolve()) if args.save_path else None
    peers = _peer_texts(args)
    if args.source.lower().startswith("magnet:"):
        body: dict[str, Any] = {"magnet": args.source, "peers": peers}
        if save_path is not None:
            body["save_path"] = save_path
        result: dict[str, Any] = client.request("POST", "/api/torrents", body)
        return result
    data = Path(args.source).expanduser().read_bytes()
    query = [("save_path", save_path)] if save_path is not None else []
    query += [("peer", peer) for peer in peers]
    path = "/api/torrents" + ("?" + urlencode(query) if query else "")
    result = client.request("POST", path, raw=data, content_type="application/x-bittorrent")
    return result


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json, torrent_line

    client = client_from_args(args)
    result = _add(client, args)
    watch = args.watch if args.watch is not None else sys.stdout.isatty() and not args.json
    if watch and not _settled(result):
        # With --json the search line goes to stderr: stdout holds only the JSON.
        stream = sys.stderr if args.json else sys.stdout
        watched = watch_search(client, result, stream)
        if watched is not None:
            result = {**watched, "existing": result.get("existing", False)}
    if args.json:
        print_json(result)
    else:
        if result.get("existing"):
            print("already added:")
        print(torrent_line(result))
    return 0


def _settled(torrent: dict[str, Any]) -> bool:
    """Nothing to wait for: peers deliver, it is complete, or it stopped."""
    if torrent["state"] in {"seeding", "error", "paused"}:
        return True
    return bool(torrent["state"] != "metadata" and torrent["peers"] and torrent["have_bytes"])


def search_line(status: dict[str, Any], torrent: dict[str, Any], elapsed: float) -> str:
    """``searching: DHT 12 nodes, 1 tracker, 0 peers (5 s)``: where peers may come from."""
    dht = f"DHT {status['dht_nodes']} nodes" if status["dht_enabled"] else "DHT off"
    trackers = torrent.get("trackers", 0)
    peers = torrent["peers"]
    what = "metadata" if torrent["state"] == "metadata" else "peers"
    return (
        f"searching for {what}: {dht}, {trackers} tracker{'' if trackers == 1 else 's'}, "
        f"{peers} peer{'' if peers == 1 else 's'} connected ({elapsed:.0f} s)"
    )


def watch_search(
    client: ApiClient, torrent: dict[str, Any], stream: TextIO
) -> dict[str, Any] | None:
    """Refresh the search line until :func:`_settled`; the torrent's last JSON (None on
    Ctrl-C or when it was removed meanwhile)."""
    from servent.errors import DaemonError

    in_place = stream.isatty()
    path = f"/api/torrents/{torrent['id']}"
    started = time.monotonic()
    shown = ""
    try:
        while not _settled(torrent):
            line = search_line(
                client.request("GET", "/api/status"), torrent, time.monotonic() - started
            )
            if in_place:
                stream.write("\r\x1b[K" + line)
            elif line.partition(" (")[0] != shown.partition(" (")[0]:
                stream.write(line + "\n")  # not a terminal: a new line when a figure changed
            shown = line
            stream.flush()
            time.sleep(WATCH_REFRESH)  # a display refresh, not synchronisation
            torrent = client.request("GET", path)
    except KeyboardInterrupt:
        stream.write("\nstopped watching; the daemon keeps searching (see 'servent list')\n")
        return None
    except DaemonError as exc:
        stream.write(f"\nstopped watching: {exc}\n")
        return None
    finally:
        if in_place and shown:
            stream.write("\r\x1b[K")
        stream.flush()
    return torrent

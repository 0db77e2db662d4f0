"""``servent live SOURCE``: broadcast a growing stream (a file being written, or stdin).

Prints the live key (``{"live_key", "url"}`` with ``--json``) and then sends
what appears in SOURCE to the daemon, which signs it into pieces and shares
them with viewers (``servent stream LIVEKEY``).  A file is followed from its
start like ``tail -f``; stdin (``-``) until its end.  The broadcast ends
(a signed end piece) at the end of stdin, after ``--idle-end`` seconds
without growth of a file, or on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from servent.cli.api_client import ApiClient

#: A write is sent to the daemon when this much is buffered, or after FLUSH_AFTER.
WRITE_SIZE = 256 * 1024
FLUSH_AFTER = 0.2
FOLLOW_POLL = 0.1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("live", help="broadcast a growing file or stdin live")
    parser.add_argument("source", metavar="SOURCE", help="a file being written, or - for stdin")
    parser.add_argument("--name", metavar="N", help="the broadcast's name (shown to viewers)")
    parser.add_argument(
        "--idle-end",
        type=float,
        metavar="S",
        default=0.0,
        help="end when a file has not grown for S seconds (default: follow until Ctrl-C)",
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


class _Stop(Exception):
    """SIGTERM: end the broadcast as Ctrl-C does."""


def _raise_stop(_signum: int, _frame: object) -> None:
    raise _Stop


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json

    if args.source != "-" and not Path(args.source).expanduser().is_file():
        from servent.errors import ServentError

        raise ServentError(f"no such file to broadcast: {args.source}")
    client = client_from_args(args)
    started: dict[str, Any] = client.request("POST", "/api/live", {"name": args.name or ""})
    if args.json:
        print_json({"live_key": started["live_key"], "url": started["url"]})
    else:
        print(started["live_key"], flush=True)
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        _send(client, started["id"], _chunks(args.source, args.idle_end))
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        client.request("DELETE", f"/api/live/{started['id']}")
    return 0


def _send(client: ApiClient, live_id: str, chunks: Iterator[bytes]) -> None:
    for chunk in chunks:
        client.request(
            "POST", f"/api/live/{live_id}/data", raw=chunk, content_type="application/octet-stream"
        )


def _chunks(source: str, idle_end: float) -> Iterator[bytes]:
    if source == "-":
        yield from _stdin_chunks(sys.stdin.buffer.fileno())
        return
    with Path(source).expanduser().open("rb") as file:
        yield from _file_chunks(file, idle_end)


def _stdin_chunks(fd: int) -> Iterator[bytes]:
    """What arrives on ``fd``, gathered for at most FLUSH_AFTER or WRITE_SIZE bytes."""
    buffered = bytearray()
    first_at = 0.0
    while True:
        wait = None if not buffered else max(0.0, first_at + FLUSH_AFTER - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        data = os.read(fd, WRITE_SIZE) if ready else b""
        if ready and not data:  # the end of the input
            if buffered:
                yield bytes(buffered)
            return
        if data and not buffered:
            first_at = time.monotonic()
        buffered += data
        if len(buffered) >= WRITE_SIZE or (buffered and time.monotonic() - first_at >= FLUSH_AFTER):
            yield bytes(buffered)
            buffered.clear()


def _file_chunks(file: BinaryIO, idle_end: float) -> Iterator[bytes]:
    """A file from its start, following its growth; ends after ``idle_end`` s without any."""
    grew_at = time.monotonic()
    while True:
        data = file.read(WRITE_SIZE)
        if data:
            grew_at = time.monotonic()
            yield data
            continue
        if idle_end and time.monotonic() - grew_at >= idle_end:
            return
        time.sleep(FOLLOW_POLL)

"""``servent pause ID``: pause a torrent in the running daemon."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_torrent_action

    add_torrent_action(subparsers, "pause")

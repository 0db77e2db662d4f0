"""``servent network`` and the ``--network`` flags: arguments, durations and what is printed."""

from __future__ import annotations

import argparse

import pytest

from servent.cli.commands import network
from servent.cli.commands.network import _lines, network_path
from servent.errors import NetworkError
from servent.node.networks import parse_duration

NETWORK = {"id": "ab" * 16, "name": "crew", "epoch": 2, "sequence": 5, "members": 3, "admin": True}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser()
    network.register(top.add_subparsers())
    return top


def test_every_action_parses_with_its_flags() -> None:
    args = parser().parse_args(["network", "invite", "crew", "--uses", "3", "--expires", "2h"])
    assert (args.action, args.name, args.uses, args.expires) == ("invite", "crew", 3, "2h")
    args = parser().parse_args(["network", "revoke", "crew", "ID", "--json"])
    assert (args.action, args.member, args.json) == ("revoke", "ID", True)
    with pytest.raises(SystemExit):
        parser().parse_args(["network"])


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("45", 45)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1h", "2w", "1.5h", "h"])
def test_bad_durations_say_what_a_duration_is(text: str) -> None:
    with pytest.raises(NetworkError, match="a duration is"):
        parse_duration(text)


def test_names_are_quoted_in_api_paths() -> None:
    assert network_path("my crew/1", "/members") == "/api/networks/my%20crew%2F1/members"


def test_printed_lines() -> None:
    assert _lines("create", NETWORK) == [f"created crew  {'ab' * 16}  3 members  epoch 2  admin"]
    assert _lines("list", []) == ["no networks"]
    invite = _lines("invite", {"invite": "snet1abc", "uses": 1, "expires": None})
    assert invite == ["snet1abc", "(1 use(s), no expiry)"]
    member = {"id": "x" * 55, "name": "", "admin": False, "you": False, "connected": True}
    assert _lines("members", [member]) == ["x" * 55 + "  -  connected"]
    assert _lines("leave", {"left": "crew", "id": "ab" * 16}) == ["left crew"]


def test_promote_and_demote_parse_and_print() -> None:
    for verb in ("promote", "demote"):
        args = parser().parse_args(["network", verb, "crew", "ID", "--json"])
        assert (args.action, args.name, args.member, args.json) == (verb, "crew", "ID", True)
        assert _lines(verb, NETWORK) == [f"{verb}d; crew  {'ab' * 16}  3 members  epoch 2  admin"]
    with pytest.raises(SystemExit):
        parser().parse_args(["network", "promote", "crew"])

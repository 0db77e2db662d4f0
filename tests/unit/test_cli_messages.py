"""How the messaging commands print messages: the issue's JSON keys, readable lines."""

from __future__ import annotations

from servent.cli.main import build_parser
from servent.cli.message_lines import MESSAGE_KEYS, message_line, outbox_line, picked
from servent.codec.node_id import format_node_id
from servent.node.message_store import StoredMessage
from servent.node.messaging import message_json

ME, ANN = b"m" * 32, b"a" * 32


def test_json_keys_are_exactly_the_issues() -> None:
    stored = StoredMessage(b"i" * 16, "in", "direct", ANN, None, "hi", 1.0e9, received=1.0e9)
    shown = picked(message_json(stored, ME, {ANN: "Ann"}))
    assert list(shown) == ["from", "name", "to", "channel", "text", "time", "id", "verified"]
    assert shown == {
        "from": format_node_id(ANN), "name": "Ann", "to": format_node_id(ME), "channel": None,
        "text": "hi", "time": 1.0e9, "id": "69" * 16, "verified": True,
    }  # fmt: skip
    assert set(MESSAGE_KEYS) == set(shown)


def test_lines_for_direct_broadcast_and_outbox_messages() -> None:
    direct = message_json(
        StoredMessage(b"d" * 16, "in", "direct", ANN, None, "two\nlines", 0.0), ME, {ANN: "Ann"}
    )
    assert message_line(direct).endswith("Ann -> you: two ⏎ lines")
    news = message_json(StoredMessage(b"b" * 20, "in", "broadcast", ANN, "news", "x", 0.0), ME, {})
    assert message_line(news).endswith(f"{format_node_id(ANN)[:12]} -> #news: x")
    everyone = message_json(StoredMessage(b"e" * 20, "in", "broadcast", ANN, "", "y", 0.0), ME, {})
    assert message_line(everyone).endswith("-> everyone: y")
    waiting = message_json(
        StoredMessage(b"o" * 16, "out", "direct", ANN, None, "later", 0.0, attempts=2,
                      last_error="cannot reach node"),
        ME, {},
    )  # fmt: skip
    assert "2 attempts  (cannot reach node)  later" in outbox_line(waiting)
    assert waiting["to"] == format_node_id(ANN) and waiting["from"] == format_node_id(ME)


def test_the_commands_parse_as_the_issue_writes_them() -> None:
    parser = build_parser()
    send = parser.parse_args(["send", "ID", "some text", "--wait", "5", "--json"])
    assert (send.node_id, send.text, send.wait, send.json) == ("ID", "some text", 5.0, True)
    cast = parser.parse_args(["broadcast", "hello", "--channel", "news", "--json"])
    assert (cast.text, cast.channel, cast.json) == ("hello", "news", True)
    listing = parser.parse_args(["messages", "--follow", "--json", "--outbox"])
    assert listing.follow and listing.json and listing.outbox
    add = parser.parse_args(["contacts", "add", "ID", "Ann"])
    assert (add.action, add.node_id, add.name) == ("add", "ID", "Ann")
    assert parser.parse_args(["contacts", "list", "--json"]).json
    assert parser.parse_args(["contacts", "remove", "ID"]).action == "remove"
    assert parser.parse_args(["block", "ID"]).node_id == "ID"

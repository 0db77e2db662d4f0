"""``servent share`` arguments: ``--with-peer`` with and without a value, before or after PATH."""

from __future__ import annotations

import pytest

from servent.cli.commands.share import OWN_ADDRESS, path_and_peer
from servent.cli.main import build_parser
from servent.errors import ConfigError


def _parsed(*argv: str) -> tuple[str, str | None]:
    args = build_parser().parse_args(["share", *argv])
    return path_and_peer(args.path, args.with_peer)


def test_with_peer_without_a_value_anywhere() -> None:
    assert _parsed("album") == ("album", None)
    assert _parsed("album", "--with-peer") == ("album", OWN_ADDRESS)
    # argparse reads the path as the flag's value here; it is put back.
    assert _parsed("--with-peer", "album") == ("album", OWN_ADDRESS)
    assert _parsed("--with-peer", "/home/me/report.pdf") == ("/home/me/report.pdf", OWN_ADDRESS)


def test_with_peer_with_an_address() -> None:
    assert _parsed("album", "--with-peer", "192.168.1.20:6881") == ("album", "192.168.1.20:6881")
    assert _parsed("--with-peer", "[fe80::1]:6881", "album") == ("album", "[fe80::1]:6881")
    with pytest.raises(ConfigError, match="not a peer address"):
        _parsed("album", "--with-peer", "nowhere")


def test_a_missing_path_is_a_clear_error() -> None:
    for argv in ((), ("--with-peer",), ("--with-peer", "10.0.0.2:6881")):
        with pytest.raises(ConfigError, match="servent share PATH"):
            _parsed(*argv)

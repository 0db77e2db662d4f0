"""``servent get`` / ``servent seed`` uTP flags: the daemon's ``utp_enabled`` and
``utp_preference`` settings, with the daemon's default (uTP on, TCP dialled first)."""

from __future__ import annotations

import pytest

from servent.cli.main import build_parser
from servent.cli.peer_sources import transport_settings
from servent.node.config import Config


@pytest.mark.parametrize("command", [["get", "x.torrent"], ["seed", "folder"]])
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], {"utp_enabled": True, "utp_preference": "prefer-tcp"}),
        (["--no-utp"], {"utp_enabled": False, "utp_preference": "prefer-tcp"}),
        (["--utp-preference", "prefer-utp"], {"utp_enabled": True, "utp_preference": "prefer-utp"}),
        (["--utp-preference", "tcp-only"], {"utp_enabled": True, "utp_preference": "tcp-only"}),
    ],
)
def test_utp_flags_give_the_daemons_settings(
    command: list[str], flags: list[str], expected: dict[str, object]
) -> None:
    args = build_parser().parse_args([*command, *flags])
    settings = transport_settings(args)
    assert settings == expected
    configured = Config().with_values(settings)  # valid as daemon settings too
    assert (configured.utp_enabled, configured.utp_preference) == tuple(expected.values())
    if not flags:  # no flags: the daemon's defaults
        daemon = Config()
        assert tuple(settings.values()) == (daemon.utp_enabled, daemon.utp_preference)


def test_an_unknown_utp_preference_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["get", "x.torrent", "--utp-preference", "sometimes"])
    assert exit_info.value.code == 2
    assert "--utp-preference" in capsys.readouterr().err

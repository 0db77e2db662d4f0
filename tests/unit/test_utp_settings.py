"""The uTP settings: defaults, validation, flags."""

from __future__ import annotations

import argparse

import pytest

from servent.errors import ConfigError
from servent.node.config import Config, add_config_arguments, overrides_from_args


def test_defaults_enable_utp_and_prefer_tcp() -> None:
    config = Config()
    assert config.utp_enabled is True
    assert config.utp_preference == "prefer-tcp"
    assert config.public_dict()["utp_preference"] == "prefer-tcp"


def test_values_are_validated() -> None:
    config = Config().with_values({"utp_enabled": False, "utp_preference": "prefer-utp"})
    assert (config.utp_enabled, config.utp_preference) == (False, "prefer-utp")
    with pytest.raises(ConfigError, match="utp_preference"):
        Config().with_values({"utp_preference": "udp-only"})
    with pytest.raises(ConfigError, match="utp_enabled"):
        Config().with_values({"utp_enabled": "yes"})


def test_flags_named_like_the_keys() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--utp-enabled", "false", "--utp-preference", "tcp-only"])
    assert overrides_from_args(args) == {"utp_enabled": False, "utp_preference": "tcp-only"}

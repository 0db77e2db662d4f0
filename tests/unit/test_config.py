"""Node configuration: defaults, TOML file, flags, and errors that name the key."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from servent.errors import ConfigError
from servent.node.config import (
    Config,
    add_config_arguments,
    default_data_dir,
    load_config,
    overrides_from_args,
)
from servent.node.dht import listen_families


def test_defaults_work_without_a_file(tmp_path: Path) -> None:
    config = load_config(overrides={"data_dir": str(tmp_path)})
    assert config.data_dir == tmp_path
    assert config.api_host == "127.0.0.1"
    assert config.effective_download_dir == tmp_path / "downloads"
    assert config.dht_enabled is True


def test_xdg_data_home_is_the_default_data_dir(tmp_path: Path) -> None:
    assert default_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "servent"
    assert default_data_dir({"XDG_DATA_HOME": "relative"}).name == "servent"
    assert default_data_dir({}) == Path.home() / ".local" / "share" / "servent"


def test_toml_file_then_flags_override(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        "listen_port = 7000\napi_port = 0\ndht_enabled = false\n"
        'dht_bootstrap = ["127.0.0.1:9000"]\nshared_folders = ["/srv/a"]\n'
        f'data_dir = "{tmp_path}"\n'
    )
    config = load_config(file, {"listen_port": 7001})
    assert config.listen_port == 7001
    assert config.api_port == 0
    assert config.dht_enabled is False
    assert config.dht_bootstrap == ("127.0.0.1:9000",)
    assert config.shared_folders == (Path("/srv/a"),)
    assert config.flag_keys == frozenset({"listen_port"})


def test_config_toml_in_data_dir_is_read_when_no_file_named(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("max_connections = 5\n")
    assert load_config(overrides={"data_dir": str(tmp_path)}).max_connections == 5


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("listen_port = 70000", "listen_port"),
        ('api_port = "x"', "api_port"),
        ("dht_enabled = 1", "dht_enabled"),
        ('dht_bootstrap = ["nohost"]', "dht_bootstrap"),
        ("max_connections = 0", "max_connections"),
        ("upload_rate_limit = -1", "upload_rate_limit"),
        ("colour = 3", "colour"),
        ('api_host = ""', "api_host"),
        ("shared_folders = 3", "shared_folders"),
        ('encryption = "maybe"', "encryption"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(text + "\n")
    with pytest.raises(ConfigError, match=key):
        load_config(file, {"data_dir": str(tmp_path)})


def test_broken_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("listen_port = = 3\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_config(file)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_every_setting_has_a_flag(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(
        [
            "--data-dir",
            str(tmp_path),
            "--listen-port",
            "0",
            "--dht-enabled",
            "no",
            "--dht-bootstrap",
            "127.0.0.1:1",
            "--dht-bootstrap",
            "127.0.0.1:2",
            "--api-port",
            "0",
            "--download-rate-limit",
            "1000",
            "--encryption",
            "required",
        ]
    )
    overrides = overrides_from_args(args)
    config = load_config(None, overrides)
    assert config.listen_port == 0
    assert config.dht_enabled is False
    assert config.dht_bootstrap == ("127.0.0.1:1", "127.0.0.1:2")
    assert config.download_rate_limit == 1000
    assert config.encryption == "required"
    assert overrides_from_args(parser.parse_args([])) == {}


def test_config_is_frozen_and_public_dict_is_json_ready(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path)
    with pytest.raises(AttributeError):
        config.listen_port = 1  # type: ignore[misc]
    view = config.public_dict()
    assert view["data_dir"] == str(tmp_path)
    assert isinstance(view["dht_bootstrap"], list)


def test_max_peers_per_ip_from_file_and_flag(tmp_path: Path) -> None:
    """The per-address connection cap (against one host filling a seeder) is a setting."""
    assert load_config(overrides={"data_dir": str(tmp_path)}).max_peers_per_ip == 3
    file = tmp_path / "c.toml"
    file.write_text("max_peers_per_ip = 5\n")
    assert load_config(file, {"data_dir": str(tmp_path)}).max_peers_per_ip == 5
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = overrides_from_args(parser.parse_args(["--max-peers-per-ip", "8"]))
    assert load_config(file, {"data_dir": str(tmp_path), **flags}).max_peers_per_ip == 8
    file.write_text("max_peers_per_ip = 0\n")
    with pytest.raises(ConfigError, match="max_peers_per_ip"):
        load_config(file, {"data_dir": str(tmp_path)})


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "127.0.0.1", "::1", "fe80::1%eth0"])
def test_listen_host_takes_empty_for_every_address_and_keeps_the_others(
    tmp_path: Path, host: str
) -> None:
    file = tmp_path / "c.toml"
    file.write_text(f'listen_host = "{host}"\n')
    assert load_config(file, {"data_dir": str(tmp_path)}).listen_host == host


def test_listen_host_empty_as_a_flag(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--data-dir", str(tmp_path), "--listen-host", ""])
    assert load_config(None, overrides_from_args(args)).listen_host == ""


@pytest.mark.parametrize("text", ['listen_host = " "', "listen_host = 3", 'listen_host = "a b"'])
def test_listen_host_still_refuses_blank_and_non_text(tmp_path: Path, text: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(text + "\n")
    with pytest.raises(ConfigError, match="listen_host"):
        load_config(file, {"data_dir": str(tmp_path)})


@pytest.mark.parametrize(
    ("host", "families"),
    [
        ("", ("0.0.0.0", "::")),
        ("0.0.0.0", ("0.0.0.0", None)),
        ("::", (None, "::")),
        ("192.0.2.7", ("192.0.2.7", None)),
        ("2001:db8::7", (None, "2001:db8::7")),
    ],
)
def test_listen_families_of_each_listen_host(
    host: str, families: tuple[str | None, str | None]
) -> None:
    assert listen_families(host) == families

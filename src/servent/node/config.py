"""Node settings: one frozen :class:`Config`, from defaults, a TOML file and flags.

Precedence, lowest first: built-in defaults, the TOML file, settings changed
at run time through the API (kept in the state database by the node), and
command-line flags.  Every setting has one flat TOML key named like the field
and one flag named like the key with dashes (``listen_port`` /
``--listen-port``), so a user never has to learn two vocabularies.
Bad values raise :class:`~servent.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servent.errors import ConfigError
from servent.node.limits_schedule import LimitsWindow, parse_schedule

DEFAULT_BOOTSTRAP = (
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
)
CONFIG_FILE_NAME = "config.toml"
ENCRYPTION_MODES = ("off", "enabled", "required")
SUPERNODE_MODES = ("auto", "on", "off")
UTP_PREFERENCES = ("prefer-tcp", "prefer-utp", "tcp-only")


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/servent``, else ``~/.local/share/servent`` (XDG base dirs)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "")
    if base and Path(base).is_absolute():
        return Path(base) / "servent"
    return Path.home() / ".local" / "share" / "servent"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a node needs to know before it starts; immutable once built."""

    data_dir: Path = field(default_factory=default_data_dir)
    download_dir: Path | None = None
    """Where new downloads go; ``None`` means ``<data_dir>/downloads``."""
    listen_host: str = "0.0.0.0"
    listen_port: int = 6881
    max_connections: int = 200
    max_peers_per_torrent: int = 50
    max_peers_per_ip: int = 3
    """Connections per torrent with one IP address (a flood from one host cannot fill
    the torrent; a newcomer beyond it may only replace an idle one)."""
    download_rate_limit: int = 0
    """Bytes per second for all torrents together; 0 is unlimited."""
    upload_rate_limit: int = 0
    limits_schedule: tuple[LimitsWindow, ...] = ()
    """Rate limits by time of day (config file only; see :mod:`.limits_schedule`)."""
    dht_enabled: bool = True
    dht_bootstrap: tuple[str, ...] = DEFAULT_BOOTSTRAP
    dht_restrict_ips: bool = True
    """DHT defences keyed by IP (one routing entry and a rate limit per IP); turn off
    only for networks where many nodes share one address (loopback tests)."""
    lsd_enabled: bool = True
    port_mapping: bool = False
    """Ask the router (PCP, NAT-PMP) to forward the listening ports; ``servent start``
    turns it on unless told otherwise, a node built in a program asks for it."""
    encryption: str = "enabled"
    """Peer connection encryption (MSE/PE): "off", "enabled" (accept and offer both) or
    "required" (plaintext peers refused)."""
    utp_enabled: bool = True
    """Accept and dial peers over uTP (BEP 29) on the listen port, shared with the DHT."""
    utp_preference: str = "prefer-tcp"
    """How to dial: "prefer-tcp" (uTP if TCP fails), "prefer-utp" (TCP if uTP fails) or
    "tcp-only"."""
    holepunch_tcp: bool = True
    """A BEP 55 hole punch tries TCP simultaneous open from the listening port besides
    uTP (decision 0048); the listening port then allows our own sockets to share it."""
    relay_enabled: bool = False
    """Relay node channels for unreachable nodes and introduce them for hole punches
    (``docs/relay.md``); for reachable nodes only."""
    relay_max_rate: int = 1 << 20
    """Bytes per second all relayed circuits together may use (0 = unlimited)."""
    api_host: str = "127.0.0.1"
    api_port: int = 8765
    """0 lets the system pick a free port (clients read it from ``daemon.json``)."""
    shared_folders: tuple[Path, ...] = ()
    supernode: str = "auto"
    """Search role: ``auto`` (reachable and up 30 min), ``on`` or ``off`` (docs/search.md)."""
    searchable: bool = True
    """False keeps this node's shares out of every search answer and the keyword index."""
    search_bootstrap: tuple[str, ...] = ()
    """Nodes (``host:port``) asked first for the supernodes of the search network."""
    name: str | None = None
    """Display name other nodes see beside this node's ID (``servent id``); none by default."""
    flag_keys: frozenset[str] = field(default=frozenset(), compare=False)
    """Keys given on the command line: run-time stored settings never override them."""

    @property
    def effective_download_dir(self) -> Path:
        return self.download_dir if self.download_dir is not None else self.data_dir / "downloads"

    def with_values(self, values: Mapping[str, object]) -> Config:
        """A copy with ``values`` (raw, as from TOML or JSON) validated and applied."""
        return dataclasses.replace(self, **{k: _validate(k, v) for k, v in values.items()})

    def public_dict(self) -> dict[str, object]:
        """JSON-ready view of every setting (paths as strings)."""
        out: dict[str, object] = {}
        for key in SETTING_KEYS:
            value = getattr(self, key)
            if isinstance(value, Path):
                value = str(value)
            elif key == "limits_schedule":
                value = [window.as_config() for window in self.limits_schedule]
            elif isinstance(value, tuple):
                value = [str(v) for v in value]
            out[key] = value
        out["download_dir"] = str(self.effective_download_dir)
        return out


SETTING_KEYS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Config) if f.name != "flag_keys"
)
#: Settings the API may change while the node runs (the rest need a restart).
RUNTIME_KEYS = frozenset(
    {
        "max_connections",
        "max_peers_per_torrent",
        "download_rate_limit",
        "upload_rate_limit",
    }
)
#: Settings the API may store for the next start (applied by ``Node.start``).
STORED_KEYS = RUNTIME_KEYS | {"listen_port", "encryption"}
_PORT_KEYS = frozenset({"listen_port", "api_port"})
_COUNT_KEYS = frozenset({"max_connections", "max_peers_per_torrent", "max_peers_per_ip"})
_RATE_KEYS = frozenset({"download_rate_limit", "upload_rate_limit", "relay_max_rate"})
_BOOL_KEYS = frozenset(
    {
        "dht_enabled", "dht_restrict_ips", "lsd_enabled", "utp_enabled", "port_mapping",
        "searchable", "relay_enabled", "holepunch_tcp",
    }
)  # fmt: skip
_ADDRESS_LIST_KEYS = frozenset({"dht_bootstrap", "search_bootstrap"})
_HOST_KEYS = frozenset({"listen_host", "api_host"})
_PATH_KEYS = frozenset({"data_dir", "download_dir"})
#: Settings too structured for a flag: the config file only.
_FILE_ONLY_KEYS = frozenset({"limits_schedule"})


def _int(key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer in {low}..{high}, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{key}: {value} is outside {low}..{high}")
    return value


def _path(key: str, value: object) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ConfigError(f"{key}: expected a path, got {value!r}")
    return Path(value).expanduser()


def _bootstrap_entry(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected 'host:port' strings, got {value!r}")
    host, sep, port = value.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{key}: {value!r} is not 'host:port'")
    return value


MAX_NAME_LENGTH = 64


def _display_name(key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: expected a non-empty text, got {value!r}")
    if len(value) > MAX_NAME_LENGTH or not value.isprintable():
        raise ConfigError(f"{key}: at most {MAX_NAME_LENGTH} printable characters, got {value!r}")
    return value.strip()


def _validate(key: str, value: object) -> Any:
    """Check one raw setting and return it in the field's type."""
    if key not in SETTING_KEYS:
        close = difflib.get_close_matches(key, SETTING_KEYS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"{key}: unknown setting ({hint}settings: {', '.join(SETTING_KEYS)})")
    if key in _PORT_KEYS:
        return _int(key, value, 0, 65535)
    if key in _COUNT_KEYS:
        return _int(key, value, 1, 100_000)
    if key in _RATE_KEYS:
        return _int(key, value, 0, 1 << 40)
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if key in _HOST_KEYS:
        if not isinstance(value, str) or not value or len(value) > 255 or " " in value:
            raise ConfigError(f"{key}: expected a host name or address, got {value!r}")
        return value
    if key in _PATH_KEYS:
        if key == "download_dir" and value is None:
            return None
        return _path(key, value)
    if key == "encryption":
        if value not in ENCRYPTION_MODES:
            modes = ", ".join(ENCRYPTION_MODES)
            raise ConfigError(f"{key}: expected one of {modes}, got {value!r}")
        return value
    if key == "utp_preference":
        if value not in UTP_PREFERENCES:
            raise ConfigError(f"{key}: expected one of {', '.join(UTP_PREFERENCES)}, got {value!r}")
        return value
    if key == "name":
        return _display_name(key, value)
    if key == "limits_schedule":
        return parse_schedule(value)
    if key == "supernode":
        if value not in SUPERNODE_MODES:
            raise ConfigError(f"{key}: expected one of {', '.join(SUPERNODE_MODES)}, got {value!r}")
        return value
    if key in _ADDRESS_LIST_KEYS:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list of 'host:port'")
        return tuple(_bootstrap_entry(key, v) for v in value)
    if key == "shared_folders":
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list of folders")
        return tuple(_path(key, v) for v in value)
    raise ConfigError(f"{key}: cannot be set")  # pragma: no cover - every key handled above


def read_toml(path: Path) -> dict[str, object]:
    """The flat settings table of one TOML file."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    return dict(data)


def load_config(
    config_file: Path | None = None,
    overrides: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    defaults: Mapping[str, object] | None = None,
) -> Config:
    """Build the config: defaults (``defaults`` over the built-in ones), then the TOML
    file, then ``overrides`` (flags).

    Without ``config_file`` the file ``<data_dir>/config.toml`` is read when it
    exists; an explicitly named file must exist.
    """
    flags = dict(overrides or {})
    config = Config(data_dir=default_data_dir(environ)).with_values(defaults or {})
    if "data_dir" in flags:
        config = config.with_values({"data_dir": flags["data_dir"]})
    if config_file is None:
        candidate = config.data_dir / CONFIG_FILE_NAME
        file_values = read_toml(candidate) if candidate.is_file() else {}
    else:
        if not config_file.is_file():
            raise ConfigError(f"config: file {config_file} does not exist")
        file_values = read_toml(config_file)
    file_name = config_file if config_file is not None else config.data_dir / CONFIG_FILE_NAME
    config = _apply(config, file_values, lambda key: f"config file {file_name}: {key}")
    config = _apply(config, flags, _flag)
    return dataclasses.replace(config, flag_keys=frozenset(flags))


def _apply(config: Config, values: Mapping[str, object], where: Callable[[str], str]) -> Config:
    """``config`` with ``values``; a bad value is one line naming where it was given
    (the file and key, or the flag), the value and what is allowed."""
    for key, value in values.items():
        try:
            _validate(key, value)
        except ConfigError as exc:
            detail = str(exc).removeprefix(f"{key}: ")
            raise ConfigError(f"{where(key)}: {detail}") from None
    return config.with_values(values)


# -- command-line flags ------------------------------------------------------


HELP = {
    "data_dir": "state, token and daemon.json (default: $XDG_DATA_HOME/servent)",
    "download_dir": "where downloads go (default: DATA_DIR/downloads)",
    "listen_host": "address for peer connections and the DHT (default 0.0.0.0)",
    "listen_port": "TCP/UDP port for peers and the DHT (0 = any free port)",
    "max_connections": "peer connections in total",
    "max_peers_per_torrent": "peer connections per torrent",
    "max_peers_per_ip": "peer connections per torrent with one IP address",
    "download_rate_limit": "bytes/s for all torrents (0 = unlimited)",
    "upload_rate_limit": "bytes/s for all torrents (0 = unlimited)",
    "limits_schedule": "rate limits by time of day (config file only)",
    "dht_enabled": "join the Mainline DHT (true/false)",
    "dht_bootstrap": "DHT entry node; repeat the flag for more",
    "dht_restrict_ips": "per-IP DHT defences; false only for loopback test networks",
    "lsd_enabled": "local service discovery on the LAN (true/false)",
    "port_mapping": "ask the router to forward the peer ports (PCP/NAT-PMP; true/false)",
    "encryption": "peer connection encryption: off, enabled or required",
    "utp_enabled": "peer connections over uTP too (true/false)",
    "utp_preference": "dialling order: prefer-tcp, prefer-utp or tcp-only",
    "holepunch_tcp": "hole punches try TCP simultaneous open too (true/false)",
    "relay_enabled": "relay and introduce for unreachable nodes (true/false)",
    "relay_max_rate": "bytes/s for all relayed circuits (0 = unlimited)",
    "api_host": "address of the HTTP API and web UI (default 127.0.0.1)",
    "api_port": "port of the HTTP API and web UI (0 = any free port)",
    "shared_folders": "folder to share and seed; repeat the flag for more",
    "supernode": "search role: auto, on or off",
    "searchable": "answer searches and publish this node's shares (true/false)",
    "search_bootstrap": "a node asked first for search supernodes; repeat the flag for more",
    "name": "display name shown to other nodes beside this node's ID",
}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _bool_flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser, *, skip: Sequence[str] = ()) -> None:
    """One flag per setting (``--listen-port``...); absent flags stay absent."""
    for key in SETTING_KEYS:
        if key in skip or key in _FILE_ONLY_KEYS:
            continue
        flag = _flag(key)
        kwargs: dict[str, Any] = {"dest": f"cfg_{key}", "default": argparse.SUPPRESS}
        if key in _BOOL_KEYS:
            kwargs.update(type=_bool_flag, metavar="BOOL")
        elif key in _PORT_KEYS | _COUNT_KEYS | _RATE_KEYS:
            kwargs.update(type=int, metavar="N")
        elif key in _ADDRESS_LIST_KEYS or key == "shared_folders":
            metavar = "DIR" if key == "shared_folders" else "HOST:PORT"
            kwargs.update(action="append", metavar=metavar)
        elif key == "supernode":
            kwargs.update(choices=SUPERNODE_MODES, metavar="MODE")
        elif key == "encryption":
            kwargs.update(choices=ENCRYPTION_MODES, metavar="MODE")
        elif key == "utp_preference":
            kwargs.update(choices=UTP_PREFERENCES, metavar="ORDER")
        elif key == "name":
            kwargs.update(metavar="NAME")
        else:
            kwargs.update(metavar="PATH" if key in _PATH_KEYS else "HOST")
        parser.add_argument(flag, help=f"{HELP.get(key, key)} [{key}]", **kwargs)


def overrides_from_args(args: argparse.Namespace) -> dict[str, object]:
    """The settings given as flags, keyed like the TOML file."""
    return {key: getattr(args, f"cfg_{key}") for key in SETTING_KEYS if hasattr(args, f"cfg_{key}")}

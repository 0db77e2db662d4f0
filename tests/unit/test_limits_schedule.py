"""``limits_schedule``: parsing, which window is in force, and the boundaries it is applied at."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from servent.errors import ConfigError
from servent.node.config import Config, add_config_arguments, load_config
from servent.node.limits_schedule import (
    MAX_WAIT,
    LimitsWindow,
    follow_schedule,
    parse_schedule,
    scheduled_rates,
    seconds_to_next_boundary,
)
from servent.node.node import Node

DAY = [
    {"from": "08:00", "to": "18:00", "download_rate_limit": 1000, "upload_rate_limit": 500},
    {"from": "23:30", "to": "06:00", "upload_rate_limit": 0},
]


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, second)


def test_windows_parse_and_print_back() -> None:
    windows = parse_schedule(DAY)
    assert windows == (
        LimitsWindow(8 * 60, 18 * 60, 1000, 500),
        LimitsWindow(23 * 60 + 30, 6 * 60, None, 0),
    )
    assert [w.as_config() for w in windows] == DAY


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("08:00-18:00", "list"),
        ([{"from": "8:00", "to": "18:00", "upload_rate_limit": 1}], "HH:MM"),
        ([{"from": "08:00", "to": "24:00", "upload_rate_limit": 1}], "HH:MM"),
        ([{"from": "08:00", "to": "18:00"}], "needs download_rate_limit or upload_rate_limit"),
        ([{"from": "08:00", "to": "18:00", "upload_rate_limit": -1}], "bytes/s"),
        ([{"from": "08:00", "to": "18:00", "upload_rate_limit": True}], "bytes/s"),
        ([{"from": "08:00", "to": "18:00", "upload": 1}], "unknown keys"),
        (["08:00"], "table"),
        ([DAY[0]] * 49, "at most 48"),
    ],
)
def test_bad_schedules_are_refused_with_a_clear_message(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_schedule(value)


def test_the_window_in_force_and_the_node_settings_outside() -> None:
    windows = parse_schedule(DAY)
    assert scheduled_rates(windows, at(7, 59, 59), 5, 6) == (5, 6)  # outside: the node's own
    assert scheduled_rates(windows, at(8), 5, 6) == (1000, 500)
    assert scheduled_rates(windows, at(17, 59), 5, 6) == (1000, 500)
    assert scheduled_rates(windows, at(18), 5, 6) == (5, 6)
    assert scheduled_rates(windows, at(23, 45), 5, 6) == (5, 0)  # past midnight, upload only
    assert scheduled_rates(windows, at(3), 5, 6) == (5, 0)
    overlapping = parse_schedule([{"from": "00:00", "to": "00:00", "download_rate_limit": 7}])
    assert scheduled_rates(overlapping + windows, at(9), 5, 6) == (7, 6)  # whole day; first wins


def test_the_next_boundary() -> None:
    windows = parse_schedule(DAY)
    assert seconds_to_next_boundary(windows, at(7, 59, 30)) == 30
    assert seconds_to_next_boundary(windows, at(8)) == MAX_WAIT  # at most five minutes apart
    assert seconds_to_next_boundary(windows, at(23, 29)) == 60
    assert seconds_to_next_boundary((), at(12)) == MAX_WAIT


async def test_follow_applies_at_each_boundary_with_an_injected_clock() -> None:
    windows = parse_schedule([{"from": "08:00", "to": "08:01", "download_rate_limit": 1000}])
    clock = [at(7, 59, 50)]
    applied: list[tuple[str, tuple[int, int]]] = []

    def apply() -> None:
        applied.append((clock[0].strftime("%H:%M:%S"), scheduled_rates(windows, clock[0], 0, 0)))

    async def sleep(seconds: float) -> None:
        if len(applied) == 4:
            raise asyncio.CancelledError
        clock[0] += timedelta(seconds=seconds)

    with pytest.raises(asyncio.CancelledError):
        await follow_schedule(windows, apply, lambda: clock[0], sleep)
    assert applied == [
        ("07:59:50", (0, 0)),
        ("08:00:00", (1000, 0)),
        ("08:01:00", (0, 0)),
        ("08:06:00", (0, 0)),
    ]


def test_the_config_file_takes_a_schedule_and_no_flag_is_made(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        "limits_schedule = [\n"
        '  {from = "08:00", to = "18:00", download_rate_limit = 1000, upload_rate_limit = 500},\n'
        "]\n"
    )
    config = load_config(config_file, environ={"XDG_DATA_HOME": str(tmp_path)})
    assert config.limits_schedule == (LimitsWindow(480, 1080, 1000, 500),)
    assert config.public_dict()["limits_schedule"] == [DAY[0]]
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    assert "--limits-schedule" not in parser.format_help()


async def test_a_node_changes_its_limits_when_a_window_opens(tmp_path: Path) -> None:
    opens_in_five_seconds = at(7, 59, 55)  # time enough to start on a loaded machine
    started = time.monotonic()
    schedule = [{"from": "08:00", "to": "18:00", "download_rate_limit": 4096}]
    config = Config(data_dir=tmp_path, listen_host="127.0.0.1", listen_port=0, dht_enabled=False,
                    lsd_enabled=False, download_rate_limit=100_000).with_values(
        {"limits_schedule": schedule}
    )  # fmt: skip
    node = Node(config)
    node._local_time = lambda: opens_in_five_seconds + timedelta(seconds=time.monotonic() - started)
    async with node:
        assert node._swarm_limits.download_rate_limit == 100_000  # before the window
        deadline = time.monotonic() + 20
        while node._swarm_limits.download_rate_limit != 4096:
            assert time.monotonic() < deadline, "the window never applied"
            await asyncio.sleep(0.05)

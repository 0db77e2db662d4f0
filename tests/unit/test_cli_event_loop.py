"""The command line's event loop: uvloop by default, asyncio's own on request (decision 0056)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from servent.cli import event_loop
from servent.errors import ConfigError


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_the_command_line_runs_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.ENV_VAR, raising=False)
    assert event_loop.loop_name() == "uvloop"
    assert issubclass(event_loop.run(_loop_type()), uvloop.Loop)


@pytest.mark.parametrize("value", ["asyncio", " ASYNCIO "])
def test_servent_loop_asyncio_picks_the_standard_loop(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(event_loop.ENV_VAR, value)
    assert event_loop.loop_name() == "asyncio"
    loop_type = event_loop.run(_loop_type())
    assert not issubclass(loop_type, uvloop.Loop)
    assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_an_unknown_loop_name_is_a_config_error_and_the_coroutine_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(event_loop.ENV_VAR, "trio")
    coroutine = _loop_type()
    with pytest.raises(ConfigError, match="SERVENT_LOOP='trio'"):
        event_loop.run(coroutine)
    assert coroutine.cr_frame is None  # closed, not left pending


def test_run_returns_the_result_and_raises_what_the_coroutine_raises() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise LookupError("inside")

    assert event_loop.run(answer()) == 42
    with pytest.raises(LookupError, match="inside"):
        event_loop.run(fail())

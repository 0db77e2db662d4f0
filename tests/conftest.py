"""Shared pytest configuration."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from scan_paths import SCAN_PATHS, scan_path

settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Started in the background (``pytest ... &`` in a script, some CI runners), the test process
# ignores SIGINT, and so does every child it starts: a test pressing Ctrl-C on a CLI child
# would wait for nothing.  Children start as from a terminal, whatever started the tests.
if (
    threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
):
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def _private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands run without ``--data-dir`` keep their state in a temporary XDG data home,
    never in the home folder of whoever runs the tests."""
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data-home"))
    yield
    if previous is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = previous


@pytest.fixture(params=sorted(SCAN_PATHS))
def both_scan_paths(request: pytest.FixtureRequest) -> Iterator[None]:
    """The test runs once per piece-run scan (compiled, where built, and pure Python)."""
    with scan_path(request.param):
        yield

"""The CLI entry point: discovery of commands and error reporting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from servent.cli.main import main


def test_version_flag_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("servent ")


def test_python_dash_m_runs_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servent", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "usage: servent" in result.stdout


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["--data-dir", "X"], ["start", "--data-dir", "X"]),
        (["-v", "--data-dir", "X"], ["-v", "start", "--data-dir", "X"]),
        (["-vv", "--port", "1"], ["-vv", "start", "--port", "1"]),
        (["info", "--json", "F"], ["info", "--json", "F"]),
        (["--version"], ["--version"]),
        (["-h"], ["-h"]),
        ([], []),
    ],
)
def test_options_without_a_command_go_to_the_default_command(
    given: list[str], expected: list[str]
) -> None:
    from servent.cli.main import _with_default_command, build_parser

    known = build_parser().get_default("known_commands")
    assert _with_default_command(given, known) == expected


def test_start_options_work_without_naming_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from servent.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(tmp_path), "--help"])
    assert exit_info.value.code == 0
    assert "usage: servent start" in capsys.readouterr().out

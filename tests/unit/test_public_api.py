"""The package's deliberate public surface stays importable."""

from __future__ import annotations

import servent


def test_everything_in_all_is_importable() -> None:
    for name in servent.__all__:
        assert getattr(servent, name) is not None, name


def test_servent_error_is_the_root_of_all_deliberate_errors() -> None:
    from servent import errors

    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, servent.ServentError), value


def test_importing_servent_does_not_load_the_upper_layers() -> None:
    import subprocess
    import sys

    code = "import servent, sys; print(any(m.startswith('servent.node') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_library_entry_points_are_the_real_objects() -> None:
    from servent.codec.magnet import parse_magnet
    from servent.node.node import Node

    assert servent.parse_magnet is parse_magnet
    assert servent.Node is Node


def test_every_lazy_name_is_listed_in_all() -> None:
    assert set(servent._LAZY) | {"ServentError", "__version__"} == set(servent.__all__)

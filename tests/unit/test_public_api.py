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

"""Validation of file paths taken from torrents (hostile input).

A path is a tuple of components relative to the download folder.  We refuse,
rather than silently rename, anything that could escape that folder or would
mean something else on one of the systems servent runs on:

* Linux: empty components, ``.``/``..``, ``/`` or NUL inside a component;
* Windows: ``\\``, drive letters and alternate data streams (``:``), the
  characters ``<>"|?*``, control characters, reserved device names (``CON``,
  ``NUL``, ``COM1`` ... with or without an extension), and trailing dots or
  spaces (Windows strips them, so ``".. "`` would become ``..``);
* macOS: ``:`` (the legacy HFS separator).

Two paths that differ only by case or Unicode normalisation would land on the
same file on macOS and Windows; :func:`check_unique_paths` refuses them too.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable

from servent.errors import UnsafePathError

MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_PATH_DEPTH = 64

_FORBIDDEN_CHARS = frozenset('/\\:<>"|?*') | frozenset(chr(c) for c in range(32)) | {"\x7f"}
_RESERVED_WINDOWS = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in "123456789¹²³"}
    | {f"LPT{i}" for i in "123456789¹²³"}
)


def display_path(path: Iterable[str]) -> str:
    """A path as the user should see it in an error message."""
    return repr("/".join(path))


@functools.lru_cache(maxsize=65536)
def component_problem(component: str) -> str | None:
    """Why ``component`` is unsafe on some system, or None (cached: names repeat)."""
    if not component:
        return "empty component"
    if component in (".", ".."):
        return f"component {component!r}"
    bad = sorted(set(component) & _FORBIDDEN_CHARS)
    if bad:
        return f"forbidden character {bad[0]!r}"
    if component[-1] in ". ":
        return "component ends with a dot or space"
    stem = component.split(".", 1)[0].rstrip(" ").upper()
    if stem in _RESERVED_WINDOWS:
        return f"reserved device name {component!r}"
    if len(component.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        return "component longer than 255 bytes"
    return None


def check_component(component: str, path: tuple[str, ...]) -> None:
    """Raise :class:`UnsafePathError` if ``component`` is unsafe on any system."""
    problem = component_problem(component)
    if problem is not None:
        raise UnsafePathError(f"unsafe path {display_path(path)}: {problem}")


def check_path(path: tuple[str, ...]) -> None:
    """Raise :class:`UnsafePathError` unless every component of ``path`` is safe."""
    if not path:
        raise UnsafePathError("unsafe path: no components")
    if len(path) > MAX_PATH_DEPTH:
        raise UnsafePathError(f"unsafe path {display_path(path[:4])}...: deeper than 64 levels")
    if sum(len(c) for c in path) > MAX_PATH_BYTES:
        raise UnsafePathError(f"unsafe path {display_path(path[:4])}...: longer than 4096 bytes")
    for component in path:
        check_component(component, path)


@functools.lru_cache(maxsize=65536)
def _fold_component(component: str) -> str:
    return unicodedata.normalize("NFC", component).casefold()


def _fold(path: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(map(_fold_component, path))


def check_unique_paths(paths: Iterable[tuple[str, ...]]) -> None:
    """Refuse duplicates (after case folding and NFC) and a file used as a folder."""
    files: dict[tuple[str, ...], tuple[str, ...]] = {}
    folders: set[tuple[str, ...]] = set()
    for path in paths:
        key = _fold(path)
        if key in files:
            raise UnsafePathError(
                f"paths {display_path(files[key])} and {display_path(path)} name the same file"
            )
        if key in folders:
            raise UnsafePathError(f"path {display_path(path)} is both a file and a folder")
        files[key] = path
        for depth in range(1, len(key)):
            prefix = key[:depth]
            if prefix in files:
                raise UnsafePathError(
                    f"path {display_path(files[prefix])} is both a file and a folder"
                )
            folders.add(prefix)

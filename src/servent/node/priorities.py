"""File priorities as users set them: a full list, or changes by file index.

A pure function, so the bounds (indexes, pad files, 0..7) are tested without a node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from servent.errors import NodeError

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo

MAX_PRIORITY = 7


def merged_priorities(
    metainfo: Metainfo, stored: tuple[int, ...], priorities: Sequence[int] | dict[int, int]
) -> tuple[int, ...]:
    """The priorities after applying ``priorities`` (all files, or ``{index: priority}``)
    to the ``stored`` ones; raises :class:`NodeError` naming the first bad value."""
    count = len(metainfo.files)
    current = list(stored) if len(stored) == count else [1] * count
    if isinstance(priorities, dict):
        updates = priorities
    else:
        if len(priorities) != count:
            raise NodeError(f"expected {count} priorities, got {len(priorities)}")
        updates = dict(enumerate(priorities))
    for index, priority in updates.items():
        if not isinstance(index, int) or not 0 <= index < count:
            raise NodeError(f"file index {index!r} outside 0..{count - 1}")
        if metainfo.files[index].pad and isinstance(priorities, dict):
            raise NodeError(f"file {index} is a pad file (BEP 47); it has no priority")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise NodeError(f"priority {priority!r} is not an integer")
        if not 0 <= priority <= MAX_PRIORITY:
            raise NodeError(f"priority {priority} outside 0..{MAX_PRIORITY}")
        current[index] = priority
    return tuple(current)

"""Optional compiled helpers; every one has a pure-Python twin that is used without it.

Why a loader of its own: the extension is compiled in place beside its C
source (``hatch_build.py``, when the project is installed), and a ``.so``
left over from an older source must never run in place of the edited one.
The build stamps the SHA-256 of the C text into the module; :func:`load`
hands the module out only while the source beside it (if any: a wheel ships
none) still has that hash.  ``SERVENT_NO_NATIVE=1`` turns it off (for
measurements and the differential tests).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from pathlib import Path
from types import ModuleType

__all__ = ["load", "source_hash"]

_HERE = Path(__file__).resolve().parent


def source_hash(path: Path) -> str:
    """The stamp a build gives the module compiled from ``path`` (with the headers beside it)."""
    digest = hashlib.sha256(path.read_bytes())
    for header in sorted(path.parent.glob("*.h")):
        digest.update(header.read_bytes())
    return digest.hexdigest()


def load(name: str) -> ModuleType | None:
    """The compiled module ``servent._native.<name>``, or ``None`` (absent, stale, disabled)."""
    if os.environ.get("SERVENT_NO_NATIVE", "") not in ("", "0"):
        return None
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None  # never built (no compiler): the pure-Python path
    source = _HERE / f"{name}.c"
    if source.exists() and getattr(module, "SOURCE_HASH", None) != source_hash(source):
        warnings.warn(
            f"{source.name} changed since it was compiled: using the pure-Python path "
            "(re-run scripts/bootstrap to rebuild)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return module

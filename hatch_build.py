"""Hatch build hook: compiles servent's optional C extension (``src/servent/_native/*.c``).

Why a hook and not setuptools: the project builds with hatchling, and the
one extension is a single C file with no generated code, so one compiler
call per file is the whole build.  It never fails the install: without a
compiler (or Python headers) it warns and servent runs its pure-Python path.

Editable installs (``scripts/bootstrap``) compile in place beside the source;
a wheel gets the module added to it.  The SHA-256 of the C text (and of the
headers beside it) is stamped into the module, and ``servent._native.load``
refuses a module whose stamp no longer matches the source beside it, so a
stale build never shadows an edited source.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NATIVE_DIR = Path("src/servent/_native")
PACKAGE_DIR = "servent/_native"


def source_stamp(source: Path) -> str:
    """SHA-256 of the C file and every header beside it (``servent._native.source_hash``)."""
    digest = hashlib.sha256(source.read_bytes())
    for header in sorted(source.parent.glob("*.h")):
        digest.update(header.read_bytes())
    return digest.hexdigest()


def compile_extension(source: Path, target: Path) -> str | None:
    """Compile ``source`` into the extension module ``target``; an error message or None."""
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    stamp = source_stamp(source)
    command = [
        *compiler,
        "-shared",
        "-fPIC",
        "-O2",
        "-Wall",
        f"-I{sysconfig.get_path('include')}",
        f'-DSERVENT_SOURCE_HASH="{stamp}"',
        str(source),
        "-o",
        str(target),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{command[0]}: {exc}"
    if done.returncode != 0:
        return done.stderr.strip() or f"{command[0]} exited with {done.returncode}"
    return None


class NativeBuildHook(BuildHookInterface):  # type: ignore[misc]
    """Compiles each C file of ``servent._native`` for the wheel being built."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("SERVENT_NO_NATIVE", "") not in ("", "0"):
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        root = Path(self.root)
        editable = version == "editable"
        for source in sorted((root / NATIVE_DIR).glob("*.c")):
            name = source.stem + suffix
            if editable:
                target = root / NATIVE_DIR / name
            else:
                target = Path(tempfile.mkdtemp(prefix="servent-native-")) / name
            error = compile_extension(source, target)
            if error is not None:
                self.app.display_warning(
                    f"servent: {source.name} not compiled, the pure-Python path is used:\n{error}"
                )
                continue
            if not editable:
                build_data["force_include"][str(target)] = f"{PACKAGE_DIR}/{name}"
                build_data["pure_python"] = False
                build_data["infer_tag"] = True

"""The layering rule of the design map: a layer imports only layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import servent

LAYERS = {
    "errors": 0,
    "codec": 1,
    "proto": 2,
    "storage": 3,
    "net": 4,
    "testing": 4,
    "node": 5,
    "cli": 6,
    "daemon": 6,
}
PACKAGE = Path(servent.__file__).parent


def _layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "servent" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_layer_imports_a_layer_above_it() -> None:
    violations = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        own = _layer_of(".".join(relative.parts))
        if own is None:
            continue
        for imported in _imports(path):
            other = _layer_of(imported)
            if other is not None and other > own:
                violations.append(f"{relative}: imports {imported}")
    assert violations == []

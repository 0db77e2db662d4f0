"""The layering rule of the design map: a layer imports only layers below it, and no
module imports itself again through others (counting imports made only for the type
checker, which still tie the modules together)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
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
#: ``import servent`` is the library's public face, which re-exports every layer.
ROOT_LAYER = 6
PACKAGE = Path(servent.__file__).parent


def _layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "servent":
        return None
    if len(parts) < 2:
        return ROOT_LAYER
    return LAYERS.get(parts[1])


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        found.update(_targets(node, path))
    return found


def _targets(node: ast.AST, path: Path) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = _absolute(node, path)
        if base is None:
            return
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            # ``from servent.net import ut_pex`` imports the module ut_pex; a name that
            # is not a module comes from the package itself.
            yield candidate if _source_of(candidate) is not None else base


def _absolute(node: ast.ImportFrom, path: Path) -> str | None:
    if node.level == 0:
        return node.module
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _source_of(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != "servent":
        return None
    if len(parts) == 1:
        return PACKAGE / "__init__.py"
    relative = Path(*parts[1:])
    for candidate in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_level_imports(path: Path) -> set[str]:
    """Imports that run (or that the type checker follows) when the module is imported:
    top-level statements, ``if TYPE_CHECKING:`` blocks and try/except included;
    imports inside functions are not (they run later, on call)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        found.update(_targets(statement, path))
        for child in ast.iter_child_nodes(statement):
            if isinstance(child, ast.stmt):
                pending.append(child)
            elif isinstance(child, ast.excepthandler):
                pending.extend(child.body)
    return {name for name in found if _source_of(name) is not None}


def _import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        own = _module_name(path)
        graph[own] = {name for name in _module_level_imports(path) if name != own}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_layer_imports_a_layer_above_it() -> None:
    violations = []
    for path in PACKAGE.rglob("*.py"):
        own = _layer_of(_module_name(path))
        if own is None or (path.parent == PACKAGE and path.name == "__init__.py"):
            continue
        for imported in _imports(path):
            other = _layer_of(imported)
            if other is not None and other > own:
                violations.append(f"{_module_name(path)}: imports {imported}")
    assert violations == []


def test_no_import_cycles_counting_type_checking_imports() -> None:
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"x": {"y"}, "y": set()}) == []


def test_imports_made_only_for_the_type_checker_are_counted(tmp_path: Path) -> None:
    fake = tmp_path / "fake.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "from servent.net import known_peers\n"
        "if TYPE_CHECKING:\n"
        "    from servent.net.torrent_session import TorrentSession\n"
        "def later() -> None:\n"
        "    from servent.node.node import Node\n"
    )
    assert _module_level_imports(fake) == {
        "servent.net.known_peers",
        "servent.net.torrent_session",  # the old cycle's edge
    }  # and not servent.node.node: a function's import runs on call

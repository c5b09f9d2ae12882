"""Imports point one way (README "Layout", model/DESIGN.md): an AST scan of our own packages.

    storage          imports nothing of ours
    extractors       storage
    model core       storage, model core            (every model/ module outside training/)
    pipeline         storage, extractors, model core (never training)
    training   storage, extractors, model core, pipeline.models, pipeline.config,
                     pipeline.text_scoring (the product's text path, scored by evaluation)

Nothing outside ``training`` imports it (tests excepted), and there is no import cycle
among our modules. Every ``import`` counts, at module level or inside a function: a deferred
import is still a dependency, and a loop of them still binds the modules together. Imports
under ``if TYPE_CHECKING:`` never run, so they count for the direction but not for cycles.
Dynamic imports (``importlib.import_module`` on a computed name) are not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.locations import REPO_ROOT

#: Our top-level packages, each a folder of the checkout.
OUR_PACKAGES: tuple[str, ...] = ("storage", "extractors", "model", "pipeline")

#: Layer -> the layers it may import. "model core" is every model module outside training.
ALLOWED_LAYERS: dict[str, frozenset[str]] = {
    "storage": frozenset({"storage"}),
    "extractors": frozenset({"storage", "extractors"}),
    "model core": frozenset({"storage", "model core"}),
    "pipeline": frozenset({"storage", "extractors", "model core", "pipeline"}),
    "training": frozenset({"storage", "extractors", "model core", "training"}),
}
#: Single modules a layer may import beyond ``ALLOWED_LAYERS``: training builds on the one model holder,
#: and evaluation scores the product's own text path (probe sentences).
ALLOWED_MODULES: dict[str, frozenset[str]] = {
    "training": frozenset({"pipeline.models", "pipeline.config", "pipeline.text_scoring"}),
}


@dataclass(frozen=True)
class Import:
    """One import statement of one of our modules.

    Attributes:
        importer: The importing module ("pipeline.score").
        target: The imported name, absolute ("extractors.media", "torch.nn"); for
            ``from X import y`` it is ``X.y`` when that is a module of ours, else ``X``.
        path: The importer's file.
        line: Line of the statement.
        in_function: Inside a function or method (runs when called, not at import).
        type_checking: Under ``if TYPE_CHECKING:`` (never runs).
    """

    importer: str
    target: str
    path: Path
    line: int
    in_function: bool
    type_checking: bool

    def where(self) -> str:
        kind = " (type checking only)" if self.type_checking else " (in a function)" if self.in_function else ""
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}{kind}"


def our_modules(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every module of ``OUR_PACKAGES``: dotted name -> file (a package is its ``__init__.py``)."""
    modules: dict[str, Path] = {}
    for package in OUR_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, is_package: bool, known: set[str]) -> None:
        self.module, self.path, self.known = module, path, known
        self.package = module if is_package else module.rpartition(".")[0]
        self.function_depth = 0
        self.type_checking_depth = 0
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt) -> None:
        self.found.append(Import(self.module, target, self.path, node.lineno, self.function_depth > 0,
                                 self.type_checking_depth > 0))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_checking_depth += 1
        for child in node.body:
            self.visit(child)
        self.type_checking_depth -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base_parts = self.package.split(".")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join(p for p in (*base_parts, node.module or "") if p)
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(submodule if submodule in self.known else base, node)


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import statement of ``module`` (see ``Import``), module level and function level."""
    collector = _Collector(module, path, path.name == "__init__.py", known)
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return collector.found


def all_imports(root: Path = REPO_ROOT) -> Iterator[Import]:
    """The imports of every module of ours."""
    modules = our_modules(root)
    for name, path in modules.items():
        yield from imports_of(name, path, set(modules))


def resolve_ours(target: str, modules: set[str] | dict[str, Path]) -> str | None:
    """The module of ours that ``target`` names (its longest known prefix), or None for a third party."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def layer_of(module: str) -> str:
    """The layer of one of our modules (see the module docstring)."""
    top = module.split(".")[0]
    if top == "model":
        return "training" if module == "training" or module.startswith("training.") else "model core"
    return top


def internal_edges() -> list[tuple[str, str, Import]]:
    """(importer, imported module of ours, the import) for every import between our modules."""
    modules = our_modules()
    edges = []
    for imp in all_imports():
        target = resolve_ours(imp.target, modules)
        if target is not None and target != imp.importer:
            edges.append((imp.importer, target, imp))
    return edges


def test_the_scan_sees_our_packages():
    modules = our_modules()
    for package in OUR_PACKAGES:
        assert package in modules, f"{package}/__init__.py not found: the layering scan would be vacuous"
    assert len(internal_edges()) > 20


def test_imports_point_one_way():
    offending = []
    for importer, target, imp in internal_edges():
        layer, target_layer = layer_of(importer), layer_of(target)
        if target_layer in ALLOWED_LAYERS[layer] or target in ALLOWED_MODULES.get(layer, ()):
            continue
        allowed = sorted(ALLOWED_LAYERS[layer] | ALLOWED_MODULES.get(layer, frozenset()))
        offending.append(f"{importer} ({layer}) imports {target} ({target_layer}) at {imp.where()}; "
                         f"{layer} may import: {', '.join(allowed)}")
    assert not offending, f"{len(offending)} imports against the layering:\n" + "\n".join(sorted(offending))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _one_loop(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest closed path through the component's first module (breadth-first)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return component


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], list[Import]] = {}
    for importer, target, imp in internal_edges():
        if imp.type_checking:
            continue
        graph.setdefault(importer, set()).add(target)
        graph.setdefault(target, set())
        where.setdefault((importer, target), []).append(imp)
    reports = []
    for component in _cycles(graph):
        loop = _one_loop(component, graph)
        steps = [f"  {a} -> {b} at {', '.join(i.where() for i in where[(a, b)])}" for a, b in zip(loop, loop[1:])]
        reports.append(f"cycle among {', '.join(component)}:\n" + "\n".join(steps))
    assert not reports, "import cycles (module or function level):\n" + "\n".join(reports)


@pytest.mark.parametrize("source, expected", [
    ("import a.b\n", [("a.b", False, False)]),
    ("def f():\n    from .c import d\n", [("pkg.c", True, False)]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\nelse:\n    import y\n",
     [("typing", False, False), ("x", False, True), ("y", False, False)]),
    ("from pkg import mod, name\n", [("pkg.mod", False, False), ("pkg", False, False)]),
])
def test_the_scanner_reads_imports(tmp_path: Path, source: str, expected: list):
    path = tmp_path / "pkg" / "m.py"
    path.parent.mkdir()
    path.write_text(source)
    found = imports_of("pkg.m", path, {"pkg", "pkg.m", "pkg.mod", "pkg.c"})
    assert [(i.target, i.in_function, i.type_checking) for i in found] == expected

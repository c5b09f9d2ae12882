"""Imports point one way (README "Layout", model/DESIGN.md): an AST scan of every room of the checkout.

One rule, no exceptions: the rooms form one ordered chain, lowest first,

    storage -> extractors -> model (the core) -> pipeline -> training -> bench, examples

and a module may import its own room or any room below it, never one above. ``bench`` and
``examples`` share the top rung but are separate rooms (scripts, not packages: their ``.py``
files are scanned as modules), so neither imports the other. ``tests`` may import anything and
is not scanned. Training sits above the pipeline because it must see exactly what inference
computes: it builds on the product's stage sequence, model holder and text path, while the
model core below both stays arrays in, score out, and imports no media library
(``MEDIA_LIBRARIES``).

There is no import cycle among our modules either. Every ``import`` counts, at module level or
inside a function: a deferred import is still a dependency, and a loop of them still binds the
modules together. Imports under ``if TYPE_CHECKING:`` never run, so they count for the direction
but not for cycles. Dynamic imports (``importlib.import_module`` on a computed name) are not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.locations import REPO_ROOT

#: The rooms, lowest rung first; each rung lists the top-level folders on it. A module may import its
#: own room or a room on a lower rung.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("storage",), ("extractors",), ("model",), ("pipeline",), ("training",), ("bench", "examples"),
)
#: Every room scanned: our packages and the script folders.
ROOMS: tuple[str, ...] = tuple(room for rung in LAYERS for room in rung)
#: Top-level folders that hold Python but are no room of the chain: the tests may import anything.
UNLAYERED: frozenset[str] = frozenset({"tests"})
#: Libraries that read or decode media (video, audio, images, speech): the extractors' business, never
#: the model core's, which sees arrays only.
MEDIA_LIBRARIES: frozenset[str] = frozenset({
    "cv2", "ffmpeg", "librosa", "parselmouth", "faster_whisper", "mediapipe", "facenet_pytorch", "imageio_ffmpeg",
    "PIL",
})
#: The model core's room.
MODEL_CORE = "model"


def rung_of(room: str) -> int:
    """The rung of a room in ``LAYERS`` (0 = the lowest)."""
    return next(i for i, rung in enumerate(LAYERS) if room in rung)


def may_import(importer_room: str, target_room: str) -> bool:
    """The one rule: a room imports itself or a room on a lower rung."""
    return target_room == importer_room or rung_of(target_room) < rung_of(importer_room)


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
    """Every module of ``ROOMS``: dotted name -> file (a package is its ``__init__.py``; a script of
    ``bench/`` or ``examples/`` is ``examples.make_example``)."""
    modules: dict[str, Path] = {}
    for room in ROOMS:
        for path in sorted((root / room).rglob("*.py")):
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


def room_of(module: str) -> str:
    """The room of one of our modules: its top-level folder."""
    return module.split(".")[0]


def internal_edges() -> list[tuple[str, str, Import]]:
    """(importer, imported module of ours, the import) for every import between our modules."""
    modules = our_modules()
    edges = []
    for imp in all_imports():
        target = resolve_ours(imp.target, modules)
        if target is not None and target != imp.importer:
            edges.append((imp.importer, target, imp))
    return edges


def test_the_scan_sees_every_room():
    modules = our_modules()
    for room in ROOMS:
        assert any(room_of(m) == room for m in modules), f"no module found in {room}/: the scan would be vacuous"
    assert len(internal_edges()) > 20
    with_python = {d.name for d in REPO_ROOT.iterdir()
                   if d.is_dir() and not d.name.startswith(".") and next(d.rglob("*.py"), None) is not None}
    assert with_python - set(ROOMS) - UNLAYERED == set(), "a top-level folder with Python is no room of LAYERS"


def test_imports_point_one_way():
    offending = []
    for importer, target, imp in internal_edges():
        room, target_room = room_of(importer), room_of(target)
        if not may_import(room, target_room):
            below = [r for r in ROOMS if r != room and rung_of(r) < rung_of(room)]
            offending.append(f"{importer} ({room}) imports {target} ({target_room}) at {imp.where()}; "
                             f"{room} may import itself and {', '.join(below) or 'nothing of ours'}")
    assert not offending, f"{len(offending)} imports against the layering:\n" + "\n".join(sorted(offending))


def test_the_model_core_imports_no_media_library():
    modules = our_modules()
    offending = [f"{imp.importer} imports {imp.target} at {imp.where()}"
                 for name, path in modules.items() if room_of(name) == MODEL_CORE
                 for imp in imports_of(name, path, set(modules))
                 if imp.target.split(".")[0] in MEDIA_LIBRARIES]
    assert not offending, ("the model core sees arrays only; media belongs to the extractors:\n"
                           + "\n".join(sorted(offending)))


@pytest.mark.parametrize("importer, target, allowed", [
    ("storage", "storage", True), ("extractors", "storage", True), ("model", "extractors", True),
    ("pipeline", "model", True), ("training", "pipeline", True), ("bench", "training", True),
    ("examples", "pipeline", True), ("model", "pipeline", False), ("pipeline", "training", False),
    ("storage", "extractors", False), ("bench", "examples", False), ("examples", "bench", False),
])
def test_the_rule(importer: str, target: str, allowed: bool):
    assert may_import(importer, target) is allowed


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

"""Imports: every module of edge_dct/ and converters/ imports, and no two import each other.

The import graph is read from the sources with ``ast`` (every ``import`` / ``from ... import``,
also inside functions, relative ones resolved) over the modules of both packages, their
subpackages included. ``from pkg import name`` is an edge to the submodule ``pkg.name`` when
there is one, else to ``pkg`` (its ``__init__``). A package's ``__init__`` importing its own
submodules is the usual public-entry-point pattern; a submodule importing its package's
``__init__`` back closes a cycle and is reported like any other.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("edge_dct", "converters")
_EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def discover_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path | None]:
    """Dotted module name -> its source file (None for a compiled extension), for every module
    of the packages (folders with an ``__init__.py``, recursively)."""
    modules: dict[str, Path | None] = {}
    for package in packages:
        for init in sorted((root / package).rglob("__init__.py")):
            folder = init.parent
            if not _inside_packages(root, folder):
                continue
            prefix = ".".join(folder.relative_to(root).parts)
            modules[prefix] = init
            for f in sorted(folder.iterdir()):
                if f.suffix == ".py" and f.name != "__init__.py":
                    modules[f"{prefix}.{f.stem}"] = f
                elif f.name.endswith(_EXTENSION_SUFFIXES):
                    modules.setdefault(f"{prefix}.{f.name.split('.')[0]}", None)
    return modules


def _inside_packages(root: Path, folder: Path) -> bool:
    """Whether every folder from the package root down to ``folder`` has an __init__.py."""
    rel = folder.relative_to(root)
    return all((root.joinpath(*rel.parts[:i]) / "__init__.py").is_file()
               for i in range(1, len(rel.parts) + 1))


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name a (relative) import in ``module`` refers to."""
    if level == 0:
        return target or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    base = parts[:len(parts) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _known(name: str, modules: dict) -> str | None:
    """``name``, or its longest prefix that is a module of the packages."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def import_graph(modules: dict[str, Path | None]) -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports (edges between package modules only)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        if path is None:
            continue
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_known(a.name, modules) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else _known(base, modules))
            graph[name].update(t for t in targets if t is not None and t != name)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle through the component's first module: [m0, m1, ..., m0]."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first: a shortest cycle back to start
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a strongly connected component without a cycle")


def cycles_touching(package: str) -> list[str]:
    """Every import cycle (one per strongly connected component) with a module of ``package``,
    as ``a -> b -> a`` lines."""
    graph = import_graph(discover_modules())
    return [" -> ".join(a_cycle(graph, c)) for c in strongly_connected(graph)
            if any(m == package or m.startswith(package + ".") for m in c)]


# -- the graph builder on small made-up packages -----------------------------------------------

def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_graph_resolves_relative_submodule_and_nested_imports(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "from .a import thing\nfrom . import sub\n",
        "pkg/a.py": "def f():\n    from pkg.sub import deep\n    import pkg.b\n",
        "pkg/b.py": "from .sub.deep import x\nfrom os import path\nimport numpy\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/deep.py": "from .. import b\nfrom ..a import f\n",
        "pkg/notes/readme.py": "import pkg.a\n",  # no __init__.py: not a module of pkg
    })
    graph = import_graph(discover_modules(tmp_path, ("pkg",)))
    assert set(graph) == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.deep"}
    assert graph["pkg"] == {"pkg.a", "pkg.sub"}
    assert graph["pkg.a"] == {"pkg.sub.deep", "pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.deep"}
    assert graph["pkg.sub.deep"] == {"pkg.b", "pkg.a"}
    components = strongly_connected(graph)
    assert components == [["pkg.a", "pkg.b", "pkg.sub.deep"]]
    assert a_cycle(graph, components[0]) == ["pkg.a", "pkg.sub.deep", "pkg.a"]  # a shortest


def test_submodule_importing_its_package_is_a_cycle(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.core import run\n",
        "pkg/core.py": "def run():\n    from pkg import VERSION\n",  # pkg.VERSION: the __init__
        "pkg/ok.py": "from pkg import core\n",  # pkg.core: a submodule, no cycle
    })
    graph = import_graph(discover_modules(tmp_path, ("pkg",)))
    assert graph["pkg.ok"] == {"pkg.core"}
    assert [a_cycle(graph, c) for c in strongly_connected(graph)] == [["pkg", "pkg.core", "pkg"]]


# -- the real packages -------------------------------------------------------------------------

@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    cycles = cycles_touching(package)
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


IMPORT_EACH = """
import importlib, pkgutil, sys, traceback
package = importlib.import_module(sys.argv[1])
failed = []
def record(name):
    failed.append(f"{name}: {traceback.format_exc(limit=3)}")
for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=record):
    if info.name.endswith(".__main__"):  # runs the command line when imported
        continue
    try:
        importlib.import_module(info.name)
        print(info.name)
    except Exception:
        record(info.name)
print("FAILED", *failed, sep="\\n" if failed else "")
sys.exit(1 if failed else 0)
"""


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports(package: str) -> None:
    """pkgutil.walk_packages over the package, importing each module (a fresh interpreter);
    ``__main__`` modules, which run their command when imported, are left out."""
    if package == "converters":
        missing = [m for m in ("tensorflow", "torch") if importlib.util.find_spec(m) is None]
        if missing:
            pytest.skip(f"converters needs {', '.join(missing)}")
    run = subprocess.run([sys.executable, "-c", IMPORT_EACH, package], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    imported = set(run.stdout.split("FAILED")[0].split())
    expected = {m for m in discover_modules()
                if m.startswith(package + ".") and not m.endswith(".__main__")}
    assert expected <= imported, sorted(expected - imported)


@pytest.mark.parametrize("module", sorted(m for m in discover_modules()
                                          if m.split(".")[0] == "edge_dct"
                                          and not m.endswith(".__main__")))
def test_edge_dct_module_imports_first(module: str) -> None:
    """Each edge_dct module imported first in a fresh interpreter (a cycle can hide behind
    the order in which modules happen to be imported)."""
    run = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]

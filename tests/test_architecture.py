"""The package's imports run one way (issue 13): no import cycles, not even through imports
hidden inside functions, and the layers only import downwards.

Layers, lowest first: core (errors, results, panel, geo, parallel, datadir) -> exposure ->
estimators and inference -> report (reads results) -> orchestration (rundir, run, spec,
claims, power, figures, datasets) -> command line. The graph is read from the source with
``ast`` (every ``import`` statement, wherever it is), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import zoneimpact

PKG = Path(__file__).resolve().parents[1] / "zoneimpact"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Module -> package modules it imports (anywhere in its source)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # imports under "if TYPE_CHECKING:" are annotations, not run-time dependencies
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for stmt in block.body
            for n in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                # "from . import style" imports the submodule, not the package's __init__
                names = subs if len(subs) == len(node.names) else [target, *subs]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            graph[mod].update(n for n in names if n in mods and n != mod)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_detector_finds_a_cycle() -> None:
    # the checker itself must be able to fail
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert _cycles(import_graph()) == []


CORE = {
    "zoneimpact.errors",
    "zoneimpact.results",
    "zoneimpact.panel",
    "zoneimpact.geo",
    "zoneimpact.parallel",
    "zoneimpact.datadir",
    "zoneimpact.labels",
    "zoneimpact._frames",
    "zoneimpact._maketables",
    "zoneimpact.files",
    "zoneimpact.registry",
}


@pytest.mark.parametrize("module", sorted(CORE))
def test_core_imports_only_core(module: str) -> None:
    assert import_graph()[module] <= CORE, module


def test_report_layer_only_reads_results() -> None:
    graph = import_graph()
    for mod, deps in graph.items():
        if not mod.startswith("zoneimpact.report"):
            continue
        wrong = {
            d
            for d in deps
            if d.startswith(("zoneimpact.estimators", "zoneimpact.inference"))
            or d
            in {
                "zoneimpact.run",
                "zoneimpact.rundir",
                "zoneimpact.claims",
                "zoneimpact.spec",
                "zoneimpact.power",
                "zoneimpact.datasets",
            }
        }
        assert not wrong, f"{mod} imports {sorted(wrong)}"


def test_exposure_does_not_import_the_simulator_or_estimators() -> None:
    deps = import_graph()["zoneimpact.exposure"]
    assert "zoneimpact.simulate" not in deps
    assert not {d for d in deps if d.startswith("zoneimpact.estimators")}


def test_registry_is_the_one_place_that_knows_estimators() -> None:
    """``power`` and ``claims`` take what they need from the registry entry, not from
    comparisons with estimator names; every entry's ``fit`` resolves and every estimator
    module has an entry."""
    from zoneimpact import registry
    from zoneimpact.estimators import get_estimator

    names = set(registry.names())
    root = Path(zoneimpact.__file__).parent
    for mod in ("power.py", "claims.py"):
        tree = ast.parse((root / mod).read_text())
        for node in ast.walk(tree):
            sides = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            about_estimator = any(
                "estimator" in (getattr(c, "id", None) or getattr(c, "attr", None) or "")
                for c in sides
            )
            if about_estimator and any(
                isinstance(c, ast.Constant) and c.value in names for c in sides
            ):
                raise AssertionError(f"{mod}:{node.lineno} compares with an estimator name")
    for name in names:
        assert callable(get_estimator(name)), name
    paths = {registry.entry(n).path.split(":")[0] for n in names}  # type: ignore[union-attr]
    modules = {
        f"zoneimpact.estimators.{p.stem}"
        for p in (root / "estimators").glob("*.py")
        if not p.stem.startswith("_")
    }
    assert modules <= paths, sorted(modules - paths)

"""The layer rules of docs/architecture.md, enforced over the import graph (a plain test, no plug-in).

Every ``import`` and ``from … import`` in ``src/arcticcodex`` — at module level, inside functions
(lazy imports) and under ``TYPE_CHECKING`` alike — is an edge from the importing unit (a top-level
module or package) to the imported one.  A unit may import only from its own layer or a lower one,
and the units form no cycle, so any unit can be understood (and tested) with only what lies below it.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "arcticcodex"

#: lowest first; a unit is a top-level module or package of arcticcodex ("" is the package's own __init__)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "fileio", "terminal", "_sync", "layout", "retry", "forge", "trustfile", "db"),  # foundation
    ("configsections", "configteachers", "configschema", "config", "configfile", "workspace"),  # configuration
    ("provenance", "vault", "teachers"),  # stores and services
    ("agent", "refine", "dataset"),  # components
    ("distill", "gpu", "human_review", "training", "evaluation", "loop"),  # workflows
    ("cli", "studio", "compat", ""),  # edges
)
LAYER_OF = {unit: number for number, units in enumerate(LAYERS) for unit in units}
LAYER_NAMES = ("foundation", "configuration", "stores and services", "components", "workflows", "edges")


def unit_of(module: tuple[str, ...]) -> str:
    return module[0] if module else ""


def imports(path: Path, parts: tuple[str, ...] | None = None) -> Iterator[tuple[tuple[str, ...], int]]:
    """The arcticcodex modules ``path`` imports (as name parts below ``arcticcodex``), with their lines.

    ``parts`` is the module's own name below ``arcticcodex`` (by default, from where ``path`` lies).
    """
    parts = parts or path.relative_to(PACKAGE).with_suffix("").parts
    package = parts[:-1]  # the package a relative import starts from (an __init__ is in its own package)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = (*base, *(node.module.split(".") if node.module else ()))
                if node.module is None:  # from . import name: each name may be a submodule
                    for alias in node.names:
                        yield (*target, alias.name), node.lineno
                    continue
                yield target, node.lineno
            elif node.module and node.module.split(".")[0] == "arcticcodex":
                yield tuple(node.module.split(".")[1:]), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "arcticcodex":
                    yield tuple(alias.name.split(".")[1:]), node.lineno


@cache
def unit_edges() -> dict[str, dict[str, str]]:
    """unit -> {imported unit: 'file:line' of one such import}."""
    edges: dict[str, dict[str, str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        source = unit_of(parts if parts != ("__init__",) else ())
        for target, line in imports(path):
            imported = unit_of(target)
            if imported != source and imported in LAYER_OF | {"__version__": 0}:
                edges.setdefault(source, {}).setdefault(imported, f"{path.relative_to(PACKAGE.parent)}:{line}")
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    units = {unit for unit in units if unit not in ("__init__", "__pycache__")}
    missing = sorted(units - set(LAYER_OF))
    assert not missing, f"add {missing} to a layer in tests/test_architecture.py and docs/architecture.md"


def test_no_unit_imports_from_a_higher_layer() -> None:
    upward = [
        f"{where}: {source or 'arcticcodex'} ({LAYER_NAMES[LAYER_OF[source]]}) imports {target} "
        f"({LAYER_NAMES[LAYER_OF[target]]})"
        for source, targets in unit_edges().items()
        for target, where in targets.items()
        if target in LAYER_OF and LAYER_OF[target] > LAYER_OF[source]
    ]
    assert not upward, "imports that reach up a layer:\n" + "\n".join(upward)


def test_the_units_form_no_cycle() -> None:
    edges = {source: {t for t in targets if t in LAYER_OF} for source, targets in unit_edges().items()}
    cycle = _find_cycle(edges)
    where = [unit_edges()[a][b] for a, b in itertools.pairwise(cycle)]
    assert not cycle, "import cycle: " + " -> ".join(cycle) + "\n" + "\n".join(where)


def _find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph as a path that ends where it starts, or [] (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for following in sorted(edges.get(node, ())):
            if state.get(following) == 1:
                return [*path[path.index(following) :], following]
            if following not in state and (found := visit(following)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]), ({"a": {"b"}, "b": {"c"}}, [])],
)
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], expected: list[str]) -> None:
    assert _find_cycle(edges) == expected


def test_the_scan_sees_lazy_relative_and_absolute_imports(tmp_path: Path) -> None:
    """The scan itself: an import inside a function, ``..`` and absolute forms are all edges."""
    module = tmp_path / "module.py"
    module.write_text(
        "from ..dataset.writer import FORMAT\n"
        "import arcticcodex.gpu.vast\n"
        "def later():\n    from .. import teachers\n    from ...errors import UserError\n"
    )
    found = {target for target, _ in imports(module, ("vault", "walk"))}
    assert found == {("dataset", "writer"), ("gpu", "vast"), ("teachers",), ("errors",)}
    assert "config" in unit_edges()["workspace"] and "errors" in unit_edges()["db"]

"""The layers stay true: every module of the library and the dashboard imports only its own layer and the ones
below it, the import graph has no cycle (read from the source, so a lazy import inside a function counts too),
the library never imports Streamlit, nothing below the report layer pandas or plotly; and modules stay small,
lines short, statements unpacked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "learndrop"
# bottom to top: a module may import from its own layer and the ones before it, nothing above
LAYERS = (
    {"errors", "status", "typecheck", "files"},  # plain helpers, no learndrop imports of note
    {"policy_config", "config", "events"},  # what a run is and what it says
    {"summary"},  # a run's figures, summed from its events
    {"models", "data"},  # networks cut into units; data sets in memory
    {"method"},  # Learn&Drop and its peers: scores, policies, dropping, the cache, FLOPs
    {"training"},  # the loop, its checkpoints, data-parallel processes
    {"report"},  # tables, replays, frontiers and figures from events
    {"runs"},  # run folders, the catalogue, the queue the dashboard trains through
    {"bench", "integrations"},  # measurements; Lightning
    {"cli"},  # the command line
    {"__init__", "__main__"},  # the package's face
    {"dashboard"},  # the Streamlit app's helpers (a reader of the library)
)
NO_FRAMES = {"models", "data", "method", "training"}  # no pandas or plotly below the report layer
MAX_LINES, MAX_WIDTH = 300, 110


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "dashboard").glob("*.py")])
NAMES = {_name(p): p for p in MODULES}
# what users see and run: lines short and statements unpacked too (pages have their own 100-line bound)
SURFACES = sorted([*(ROOT / "pages").glob("*.py"), ROOT / "app.py", *(ROOT / "examples").glob("*.py")])


def _imports(path: Path) -> set[str]:
    """Absolute dotted names of everything a module imports: ``from . import x`` imports the module ``x``, and
    ``from .m import y`` the module ``m`` (or ``m.y`` where that is a module of ours)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                out.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in NAMES else module)
    return out


def _layer(name: str) -> int:
    parts = name.split(".")
    key = parts[0] if parts[0] == "dashboard" else (parts[1] if len(parts) > 1 else "__init__")
    return next(i for i, layer in enumerate(LAYERS) if key in layer)


def _ours(path: Path) -> set[str]:
    """The modules of ours ``path`` imports (a name imported from a module counts as that module)."""
    out = set()
    for name in _imports(path):
        while name and name not in NAMES:
            name = name.rpartition(".")[0]
        if name and name != _name(path):
            out.add(name)
    return out


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_imports_only_its_layer_and_below(path):
    name = _name(path)
    imports = _imports(path)
    if name.startswith("learndrop"):
        assert not any(i.split(".")[0] in ("streamlit", "dashboard") for i in imports), "the library is no app"
    if name.split(".")[1:2] and name.split(".")[1] in NO_FRAMES:
        assert not {i.split(".")[0] for i in imports} & {"pandas", "plotly"}, f"{name} imports pandas or plotly"
    above = sorted(i for i in _ours(path) if _layer(i) > _layer(name))
    assert not above, f"{name} (layer {_layer(name)}) imports from above it: {above}"


def test_the_import_graph_has_no_cycle():
    graph = {name: _ours(path) for name, path in NAMES.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(name):], name]))
        if name in done:
            return
        for target in sorted(graph[name]):
            if not (target == name.rpartition(".")[0] and name.startswith(target)):  # a package's own __init__
                visit(target, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_modules_are_small_lines_short_and_statements_unpacked():
    files = MODULES + [p for p in SURFACES if p.parent.name == "examples"]  # pages have their own bound
    too_long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split along a concept): {too_long}"
    wide = [f"{p.relative_to(ROOT)}:{i}" for p in MODULES + SURFACES
            for i, line in enumerate(p.read_text().splitlines(), 1) if len(line) > MAX_WIDTH]
    assert not wide, f"lines over {MAX_WIDTH} characters: {wide[:10]} ({len(wide)} in all)"
    packed = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in MODULES + SURFACES
              for n in ast.walk(ast.parse(p.read_text()))
              if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Tuple) and len(n.targets[0].elts) >= 3
              and isinstance(n.value, ast.Tuple)]
    assert not packed, f"assignments packing three or more values: {packed}"


def test_pages_stay_thin_and_nothing_cites_a_spec_outside_the_repository():
    pages = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "pages").glob("*.py")}
    assert pages and all(n < 100 for n in pages.values()), pages
    cites = [str(p.relative_to(ROOT)) for p in [*MODULES, *(ROOT / "pages").glob("*.py")] if "SPEC" in p.read_text()]
    assert not cites, f"cites SPEC: {cites}"

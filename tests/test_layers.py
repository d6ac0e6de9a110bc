"""The layers stay honest: each subpackage imports only what sits below it (read from the source, so a
lazy import inside a function counts too), the library never imports Streamlit, the method no pandas."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "learndrop"
# what each layer may import from the library (a prefix of the module's dotted path under learndrop)
ALLOWED = {
    "models": {"errors", "models"},
    "data": {"errors", "data"},
    "method": {"config", "events", "errors", "models", "method"},
    "training": {"config", "events", "errors", "status", "models", "data", "method", "training", "report.summary",
                 "runs.store", "runs.files"},  # the run folder's whole-file writes (checkpoints: all or nothing)
    "report": {"config", "events", "errors", "method.policy", "method.cache", "report", "status"},
    "runs": {"config", "events", "errors", "status", "models", "data", "method", "training", "report", "runs"},
}
NO_FRAMES = {"models", "data", "method", "training"}  # no pandas or plotly below the report layer


def _imports(path: Path) -> set[str]:
    """Absolute dotted names of everything a module imports."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.add(module)
            if not node.module:  # from . import x: x is a module
                out |= {f"{module}.{alias.name}" for alias in node.names}
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_its_layer_and_below(path):
    rel = path.relative_to(PACKAGE)
    imports = _imports(path)
    assert not any(name.split(".")[0] == "streamlit" for name in imports), "the library never imports Streamlit"
    layer = rel.parts[0] if len(rel.parts) > 1 else None
    if layer in NO_FRAMES:
        assert not {n.split(".")[0] for n in imports} & {"pandas", "plotly"}, f"{rel} imports pandas or plotly"
    if layer in ALLOWED:
        ours = {n[len("learndrop."):] for n in imports if n.startswith("learndrop.")}
        wrong = {n for n in ours if not any(n == a or n.startswith(a + ".") for a in ALLOWED[layer])}
        assert not wrong, f"{rel} (layer {layer}) imports {sorted(wrong)}"


def test_the_layout_has_its_subpackages_and_small_modules():
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert {"method", "training", "runs", "report", "data", "models"} <= subpackages
    too_long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 350}
    assert not too_long, f"modules over 350 lines: {too_long}"
    long_functions = {}
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 120:
                long_functions[f"{path.relative_to(PACKAGE)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert not long_functions, f"functions over 120 lines: {long_functions}"


def test_pages_stay_thin_and_nothing_cites_a_spec_outside_the_repository():
    pages = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "pages").glob("*.py")}
    assert pages and all(n < 100 for n in pages.values()), pages
    cites = [str(p.relative_to(ROOT)) for p in [*MODULES, *(ROOT / "pages").glob("*.py"), *(ROOT / "dashboard").glob("*.py")]
             if "SPEC" in p.read_text()]
    assert not cites, f"cites SPEC: {cites}"

"""The package's layers: data flows one way, and nothing private crosses a module's border.

Read with ``ast`` from the source files (nothing is imported), following
``../shared/DESIGN.md``: the lowest layer (argument checks, codecs, memory,
caches, the grid) is imported by the axes, the axes by the space, the space
by results and execution (execution imports results' sinks, results never
imports execution), execution by the analyses (which nothing imports but the
examples, the command line and the package's ``__init__``), and everything by
the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labeled_spaces"

# the layer of each top-level module or subpackage; a module may import only its own
# layer or lower ones
LAYERS = {
    "_checks": 0,
    "_paths": 0,
    "_codec": 0,
    "_memory": 0,
    "_caches": 0,
    "grid": 1,
    "axes": 2,
    "space": 3,
    "results": 4,
    "execution": 5,
    "analysis": 6,  # sensitivity, gradients, refine, fit: Programs and designs on the executors
    "examples": 7,
    "cli": 8,
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> list[str]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _resolve(path: Path, node: ast.ImportFrom) -> list[str]:
    """The absolute dotted module an import-from names."""
    if node.level == 0:
        return (node.module or "").split(".")
    here = _dotted(path)
    package = here if path.name == "__init__.py" else here[:-1]
    base = package[: len(package) - (node.level - 1)]
    return base + (node.module.split(".") if node.module else [])


def _imports(path: Path) -> list[tuple[list[str], list[str], int]]:
    """``(module parts, imported names, line)`` of every import of the package itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "labeled_spaces":
                    found.append((parts, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            parts = _resolve(path, node)
            if parts and parts[0] == "labeled_spaces":
                found.append((parts, [a.name for a in node.names], node.lineno))
    return found


def _layer(parts: list[str]) -> int | None:
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_down_the_layers(path):
    own = _dotted(path)
    if own == ["labeled_spaces"]:
        return  # the package's __init__ re-exports everything
    mine = _layer(own)
    assert mine is not None, f"{own} has no layer in LAYERS; add it"
    for parts, names, line in _imports(path):
        targets = [parts] if len(parts) > 1 else [[*parts, n] for n in names]
        for target in targets:
            theirs = _layer(target)
            assert theirs is not None, f"{path.name}:{line} imports {'.'.join(target)}"
            assert theirs <= mine, (
                f"{'.'.join(own)} (layer {mine}) imports {'.'.join(target)} (layer {theirs}) "
                f"at line {line}: data must flow down"
            )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_crosses_a_module(path):
    for parts, names, line in _imports(path):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        # modules whose name starts with "_" (_checks, _codec) are fine; their names are public
        private = [n for n in private if not PACKAGE.joinpath(*parts[1:], f"{n}.py").exists()]
        assert not private, f"{path.name}:{line} imports private {private} from {'.'.join(parts)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_attribute_of_another_object(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        owner = node.value
        assert isinstance(owner, ast.Name) and owner.id in ("self", "cls"), (
            f"{path.relative_to(PACKAGE)}:{node.lineno} reaches into .{name} of "
            f"{ast.unparse(owner)}: hand it over through a public attribute instead"
        )


def test_executors_and_the_cluster_code_import_no_zarr_and_no_store():
    # the Sink seam: sinks come from results.sink's factory, never built by an executor
    for path in (PACKAGE / "execution").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [".".join(_resolve(path, node))]
            else:
                continue
            assert not [n for n in names if n.split(".")[0] == "zarr" or n.endswith(
                "results.store")], f"{path.name}:{node.lineno} imports {names}"


def test_results_never_import_execution():
    for path in (PACKAGE / "results").rglob("*.py"):
        for parts, names, line in _imports(path):
            assert "execution" not in [*parts[1:2], *(names if len(parts) == 1 else [])], (
                f"{path.name}:{line} imports execution")


def test_only_the_top_layers_import_analysis():
    # the analyses are a client of the engine: nothing below them may depend on them
    for path in _modules():
        own = _dotted(path)
        if own == ["labeled_spaces"] or (len(own) > 1 and own[1] in ("analysis", "examples",
                                                                     "cli")):
            continue
        for parts, names, line in _imports(path):
            assert "analysis" not in [*parts[1:2], *(names if len(parts) == 1 else [])], (
                f"{path.name}:{line} imports analysis")


def test_no_grab_bag_modules():
    names = {p.stem for p in _modules()}
    assert not names & {"utils", "helpers", "misc", "common"}


def test_modules_hold_one_idea_each():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over ~400 lines: {long}"

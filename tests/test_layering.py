"""The package's layers: data flows one way, and nothing private crosses a module's border.

Read with ``ast`` from the source files (nothing is imported), following
``../shared/DESIGN.md``: the lowest layer (argument checks, codecs, memory,
caches, the attrs schema, the formatting of reprs, the grid) is imported by
the axes, the axes by the space, the space by results and execution
(execution imports results' sinks, results never imports execution),
execution by the analyses (which nothing imports but the examples, the
command line and the package's ``__init__``), and everything by the command
line. No module imports itself back through others, only ``_schema`` spells
an attrs key, and every ``__repr__`` is built with ``_format``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labeled_spaces"

# the layer of each top-level module or subpackage; a module may import only its own
# layer or lower ones
LAYERS = {
    "_checks": 0,
    "_paths": 0,
    "_parser": 0,  # the command line's argparse, with one-line errors
    "_codec": 0,
    "_memory": 0,
    "_caches": 0,
    "_schema": 0,
    "_format": 0,
    "_timing": 0,
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


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the import nodes under ``if TYPE_CHECKING:`` (never run)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    return skipped


def _import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, function-local imports included.

    ``from .x import name`` depends on ``x`` itself when ``x.name`` is a module of
    the package, else on ``x`` (for a package, its ``__init__``).
    """
    modules = {".".join(_dotted(p)): p for p in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped = _type_checking_only(tree)
        deps = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.split(".")[0] == "labeled_spaces"}
            elif isinstance(node, ast.ImportFrom):
                target = ".".join(_resolve(path, node))
                if target.split(".")[0] == "labeled_spaces":
                    deps |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                             for a in node.names}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_circle_of_imports():
    # a circle (even one dodged by an import inside a function) means two modules share an
    # idea: move it to the module named after it instead
    graph = _import_graph()
    circles = _cycles(graph)
    assert not circles, "import circles: " + "; ".join(
        " -> ".join(f"{m} (imports {sorted(graph[m] & set(c))})" for m in c) for c in circles)


def test_the_circle_finder_finds_circles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# an attrs key: the package's prefix followed by a name (prose has a space after the colon)
_ATTRS_KEY = re.compile(r"labeled_spaces:(?!\s)")


def _code_strings(tree: ast.Module) -> list[tuple[str, int]]:
    """The string constants of code (f-strings' literal parts too), docstrings left out."""
    prose = {id(node.value) for node in ast.walk(tree)
             if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    return [(node.value, node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in prose]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_attrs_keys_are_spelled_only_in_the_schema(path):
    if path == PACKAGE / "_schema.py":
        return
    tree = ast.parse(path.read_text(), filename=str(path))
    spelled = [(text, line) for text, line in _code_strings(tree) if _ATTRS_KEY.search(text)]
    assert not spelled, (f"{path.relative_to(PACKAGE)} spells attrs keys {spelled}: import "
                         "them from labeled_spaces._schema")


def test_the_key_finder_sees_f_strings_and_skips_docstrings():
    tree = ast.parse('''"""Doc: ``labeled_spaces:mode``."""
x = f"labeled_spaces:{name}"
y = "labeled_spaces: prose"
''')
    assert [t for t, _ in _code_strings(tree) if _ATTRS_KEY.search(t)] == ["labeled_spaces:"]


def _format_names(tree: ast.Module, path: Path) -> set[str]:
    """The names a module imports from ``labeled_spaces._format``."""
    return {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and _resolve(path, node) == ["labeled_spaces", "_format"] for a in node.names}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_repr_goes_through_the_formatting_module(path):
    # one thing reads the same wherever it is shown: sizes, dims, counts, call-like reprs
    tree = ast.parse(path.read_text(), filename=str(path))
    formatters = _format_names(tree, path)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__repr__":
            called = {c.func.id for c in ast.walk(node)
                      if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            assert called & formatters, (
                f"{path.relative_to(PACKAGE)}:{node.lineno} builds a repr without "
                "labeled_spaces._format (call_repr, space_lines, results_lines, ...)")

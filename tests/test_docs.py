"""The documentation runs: every docstring example, and every Python block of the README."""

from __future__ import annotations

import doctest
import importlib
import logging
import pkgutil
import re
from pathlib import Path

import pytest

import labeled_spaces

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(labeled_spaces.__path__, prefix="labeled_spaces.")
)


@pytest.mark.parametrize("name", ["labeled_spaces", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert failed == 0, f"{failed} of {attempted} docstring examples of {name} failed"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)  # the examples write files (kuramoto.nc)
    namespace: dict = {}  # one namespace: later blocks use what earlier ones made
    # the README's "Growing a sweep" block sets the package's logger to INFO and gives the
    # root logger a handler: both are put back, or later tests in this process see INFO
    logger, root = logging.getLogger("labeled_spaces"), logging.getLogger()
    level, handlers = logger.level, list(root.handlers)
    try:
        for k, block in enumerate(blocks):
            exec(compile(block, f"README.md python block {k}", "exec"), namespace)
    finally:
        logger.setLevel(level)
        root.handlers[:] = handlers
    printed = capsys.readouterr().out
    # a few of the values the README shows in its comments
    assert "{'coupling': 7, 'noise': 3}" in printed
    assert "{'noise': 3} 1.0" in printed
    assert "[0 2]" in printed
    assert "3 {'k': Array(0.75, dtype=float32)}" in printed

"""The package's type hints: mypy finds no error in it, and users' type checkers see them.

mypy is a declared dev dependency (pyproject.toml), configured under
``[tool.mypy]``; each check runs it in a subprocess with a fresh cache, and a
failure shows mypy's own report.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import labeled_spaces

ROOT = Path(__file__).resolve().parents[1]


def _mypy(args: list[str], cwd: Path, cache: Path, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_package_type_checks(tmp_path):
    """``mypy`` in the repository root (the settings of pyproject.toml) reports nothing."""
    result = _mypy(["--config-file", str(ROOT / "pyproject.toml")], ROOT, tmp_path / "cache")
    assert result.returncode == 0, (
        f"mypy labeled_spaces found errors (exit {result.returncode}):\n"
        f"{result.stdout}{result.stderr}"
    )
    assert "Success: no issues found" in result.stdout


def _checked_copy() -> Path:
    """The installed package where pip installed it (CI's ``pip install ".[dev]"``), else the
    one this suite imports (an editable install or the source tree)."""
    try:
        dist = importlib.metadata.distribution("labeled_spaces")
    except importlib.metadata.PackageNotFoundError:
        return Path(labeled_spaces.__file__).parent
    files = {str(f).replace(os.sep, "/") for f in dist.files or ()}
    in_tree = Path(str(dist.locate_file(""))).resolve() == ROOT.resolve()
    if in_tree or "labeled_spaces/__init__.py" not in files:
        # an editable install, or the metadata a build left in the source tree (which may
        # be older than the tree): the files are the source's
        return Path(labeled_spaces.__file__).parent
    assert "labeled_spaces/py.typed" in files, f"{dist.locate_file('')}: no labeled_spaces/py.typed"
    return Path(str(dist.locate_file("labeled_spaces")))


def test_py_typed_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["labeled_spaces"]
    assert (ROOT / "labeled_spaces" / "py.typed").is_file()


def test_users_type_checker_sees_the_hints(tmp_path):
    """A user's mypy reads the package's hints (py.typed) and catches a misuse.

    It looks the package up in the installed copy (so in CI the check covers
    what the wheel holds), else in the copy this suite imports. Without
    py.typed mypy would refuse to read an installed package
    (``import-untyped``) and treat everything from it as ``Any``.
    """
    package = _checked_copy()
    assert (package / "py.typed").is_file()
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent("""
        import labeled_spaces as ls

        axis = ls.GridAxis(0.0, 1.0, 3)
        label: str = axis.coordinate()  # a NumPy array, not a str
    """))
    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    result = _mypy(["--no-incremental", "user.py"], tmp_path, tmp_path / "cache", env)
    report = result.stdout + result.stderr
    assert "import-untyped" not in report, report
    assert result.returncode == 1, report
    assert 'user.py:5: error: Incompatible types in assignment (expression has type "ndarray' in (
        report), report
    assert "Found 1 error in 1 file" in report, report

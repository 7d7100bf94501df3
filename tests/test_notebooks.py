"""The notebooks in notebooks/ are stored executed, and still run from top to bottom.

They are committed with their outputs, so that the figures show on the repository
page: every code cell has been executed in order in one fresh kernel, every cell
that shows a figure holds a PNG, and the outputs hold the expected text and no
machine-specific paths.

Each notebook is also executed again, from a temporary copy with its outputs
cleared (the committed file is never rewritten), in a fresh kernel of the
interpreter that runs the tests (a temporary kernel spec that points at
``sys.executable``, so a ``python3`` kernel of another environment can never be
picked up by accident), with the Agg matplotlib backend as default and the
notebooks folder as working directory; its fresh outputs must hold the same
expected text and figures.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import ipykernel  # noqa: F401 - the kernel the notebooks run in: a dev dependency
import nbclient
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "labeled-spaces-tests"

# text that must appear in the outputs of the executed notebook
EXPECTED = {
    "quickstart.ipynb": [
        "{'coupling': 8, 'noise': 4}",
        "round trip identical: True",
        "time coordinate kept: True {'long_name': 'time', 'units': 'a.u.'}",
        "failed at index 3 with {'k': Array(0.75, dtype=float32)}",
        "low must be less than high, got low=1.0, high=0.0",
    ],
    "axes_and_spaces.ipynb": [
        # the seed's own output
        "Created parameter space with 12 combinations",
        "Zip mode: 2 combinations (uses minimum axis size)",
        "Parallel execution complete! Got 64 results",
        "Complex space: 27 combinations",
        # the zip-mode warning, on one line, without a file name
        "UserWarning: in zip mode the axes have different sizes [3, 2]",
        # labeled spaces: sizes, a sel, slices that keep their flat indices
        "{'coupling_strength': 4, 'noise_level': 3} (4, 3)",
        "{'coupling.delay': 3, 'coupling.strength': 5, 'model.noise_amplitude': 3}",
        "{'coupling.delay': 3, 'model.noise_amplitude': 3} 9",
        "[1 2 3] [0 2 4]",
        # a product over axes whose points are arrays
        "18 {'gain': 3, 'offset': 2, 'weights': 3}",
        "{'gain': (3,), 'offset': (3,), 'weights': (2, 2)}",
        # labeled results
        "('coupling', 'noise') (8, 8)",
        "{'coupling': 4, 'noise': 3, 'phase': 100}",
    ],
    "labeled_results.ipynb": [
        "Dimensions:    (coupling: 11, noise: 3, time: 50, region: 68, region_to: 68)",
        "the space from the file gives the same results: True",
        "{'conduction': 3, 'coupling': 6}",
        "interrupted: 18 of 33 combinations on disk",
        "resuming: 2 of 4 blocks already stored in sweep.zarr",
        "ParallelResult {'coupling': 11, 'noise': 3, 'time': 50, 'region': 68, 'region_to': 68}",
        "the same results as ParallelExecution: True",
    ],
    "sensitivity_and_gradients.ipynb": [
        # Sobol indices per factor and region, the second output read from the store
        "('factor', 'region') (3, 68)",
        "resuming: 1 of 1 blocks already stored in sobol.zarr",
        "most influential factor for the order parameter: coupling",
        # a gradient map over coupling x noise
        "('coupling', 'noise', 'wrt') ['coupling', 'noise'] ('coupling', 'noise', 'wrt', 'region')",
    ],
    "refine_and_fit.ipynb": [
        "384 points in rounds [0, 1, 2, 3, 4, 5]",
        "['coupling_fit', 'loss', 'loss_trace', 'noise_fit'] ('coupling', 'noise', 'step')",
        # best() recovers the parameters of the synthetic data
        "best fit: coupling = 0.08, noise = 0.10, spread = 2.0 (fixed)",
    ],
    "designs.ipynb": [
        # a Sobol design of 64 points against an 8 x 8 grid
        "{'sample': 64} {'coupling': 8, 'noise': 8}",
        "distinct couplings: grid 8, Sobol 64",
        # noise replicates as a dimension
        "{'coupling': 21, 'replicate': 8, 'noise': 2}",
        # a store grown along coupling: previewed, then only the new block computed
        "Store:         grow.zarr (growing coupling: 11 -> 21), 1 of 2 blocks done",
        "INFO:labeled_spaces:growing coupling: 11 -> 21 in grow.zarr",
        "INFO:labeled_spaces:resuming: 1 of 2 blocks already stored in grow.zarr",
        "grown store identical to a fresh run: True",
        # the cost of a large sweep before it runs
        "<labeled_spaces.Explanation> ParallelExecution, 66,256 combinations",
    ],
}

# paths of this machine that must not end up in stored outputs
MACHINE_PATHS = re.compile(r"site-packages|ipykernel_\d+|/home/|/Users/|/tmp/|/work/")


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec for this interpreter, found first on JUPYTER_PATH."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "labeled_spaces tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore::DeprecationWarning")
    return KERNEL


def _text(output: dict) -> str:
    if output["output_type"] == "stream":
        return output["text"]
    if output["output_type"] in ("execute_result", "display_data"):
        return output.get("data", {}).get("text/plain", "")
    return ""


def _cell_text(cell) -> str:
    """A cell's text, each stream whole: the kernel flushes stdout on a timer, so under load
    one print may arrive as two stream outputs (a loaded full run once missed '{...} 9')."""
    streams: dict[str, str] = {}
    rest = []
    for output in cell.outputs:
        if output["output_type"] == "stream":
            streams[output["name"]] = streams.get(output["name"], "") + output["text"]
        else:
            rest.append(_text(output))
    return "\n".join([*streams.values(), *rest])


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _shows_figure(cell) -> bool:
    return "plt.show()" in cell.source


def _has_png(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.outputs)


def _check_outputs(name: str, nb) -> None:
    """No errors, a PNG wherever a figure is shown, and the expected text."""
    code = _code_cells(nb)
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"], name
    no_png = [c.source.splitlines()[0] for c in code if _shows_figure(c) and not _has_png(c)]
    assert not no_png, f"{name}: cells that show a figure but hold no image/png: {no_png}"
    text = "\n".join(_cell_text(c) for c in code)
    for expected in EXPECTED.get(name, []):
        assert expected in text, f"{name}: {expected!r} not in the outputs"


def test_there_are_notebooks() -> None:
    names = [p.name for p in _notebooks()]
    assert "quickstart.ipynb" in names and "axes_and_spaces.ipynb" in names
    assert set(EXPECTED) <= set(names)


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_is_stored_with_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = _code_cells(nb)
    assert code, f"{path.name} has no code cells"
    counts = [c.execution_count for c in code]
    # every code cell executed, top to bottom, in one fresh kernel
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts}"
    assert any(_shows_figure(c) for c in code), f"{path.name} shows no figure"
    _check_outputs(path.name, nb)
    text = "\n".join(_text(o) for c in code for o in c.outputs)
    found = sorted(set(MACHINE_PATHS.findall(text)))
    assert not found, f"{path.name}: machine-specific paths in the outputs: {found}"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_runs(path: Path, kernel_name: str, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    stored = path.read_bytes()
    nb = nbformat.read(copy, as_version=4)
    for cell in _code_cells(nb):  # check fresh outputs only
        cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=300,
        startup_timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    _check_outputs(path.name, nb)
    assert path.read_bytes() == stored, f"running {path.name} changed the committed file"

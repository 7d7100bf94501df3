"""The ``labeled-spaces`` command (labeled_spaces.cli): ``demo`` and ``info``.

The small demo runs once per module (about 15 s on two CPU cores); the tests
read what it wrote.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import jax
import matplotlib.image
import numpy as np
import pytest
import xarray as xr

from labeled_spaces import GridAxis, ModelError, ParallelExecution, Space, open_results
from labeled_spaces.cli import main
from labeled_spaces.examples.connectome import load_connectome
from labeled_spaces.examples.demo import demo_sweep
from labeled_spaces.examples.figures import FIGURE_PIXELS, synchrony_onset

SIZES = {"coupling": 21, "noise": 6, "time": 200, "region": 68, "region_to": 68}


@dataclass
class Ran:
    """One in-process run of ``main``."""

    code: int
    out: str
    err: str


def run(*argv: str) -> Ran:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(argv))
    return Ran(code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ran]:
    folder = tmp_path_factory.mktemp("cli") / "demo"
    ran = run("demo", "--small", "--out", str(folder))
    assert ran.code == 0, ran.err[-3000:]
    return folder, ran


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its modification time and size."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------


def test_demo_netcdf_has_labeled_dims_coords_and_units(demo: tuple[Path, Ran]) -> None:
    folder, _ = demo
    with xr.open_dataset(folder / "demo.nc") as ds:
        ds = ds.load()
    assert dict(ds.sizes) == SIZES
    assert ds["order"].dims == ("coupling", "noise")
    assert ds["R_t"].dims == ("coupling", "noise", "time")
    assert ds["fc"].dims == ("coupling", "noise", "region", "region_to")
    np.testing.assert_allclose(ds["coupling"].values, np.linspace(0.0, 0.5, 21))
    np.testing.assert_allclose(ds["noise"].values, np.linspace(0.0, 0.5, 6))
    np.testing.assert_allclose(ds["time"].values, demo_sweep(small=True).times())
    labels = load_connectome().labels.tolist()
    assert ds["region"].values.tolist() == labels == ds["region_to"].values.tolist()
    assert ds["coupling"].attrs["units"] == "rad/ms"
    assert ds["noise"].attrs["units"] == "rad/sqrt(ms)"
    assert ds["time"].attrs["units"] == "ms"
    for name in ("order", "R_t", "fc"):
        assert ds[name].attrs["units"] == "1" and ds[name].attrs["long_name"]
        assert np.isfinite(ds[name].values).all()
    assert open_results(folder / "demo.nc").space.sizes == {"coupling": 21, "noise": 6}


def test_demo_synchronises_with_coupling(demo: tuple[Path, Ran]) -> None:
    folder, _ = demo
    with xr.open_dataset(folder / "demo.nc") as ds:
        order = ds["order"].load()
    assert ((order >= 0) & (order <= 1)).all()
    quiet = order.sel(noise=0.0).values
    assert quiet[0] < 0.2 and quiet[-1] > 0.8  # incoherent without coupling, synchronous at K=0.5
    assert (np.diff(quiet) > -0.02).all()  # and rising in between
    onset = synchrony_onset(order)
    # noise moves the onset to stronger coupling
    assert onset[0.0] is not None and onset[0.5] is not None and onset[0.5] > onset[0.0]
    fc = xr.open_dataset(folder / "demo.nc")["fc"]
    np.testing.assert_allclose(np.diagonal(fc.sel(coupling=0.5, noise=0.0).values), 1.0)


def test_demo_prints_a_summary_and_logs_progress(demo: tuple[Path, Ran]) -> None:
    folder, ran = demo
    assert "dims: coupling: 21, noise: 6, time: 200, region: 68, region_to: 68" in ran.out
    with xr.open_dataset(folder / "demo.nc") as ds:
        onset = synchrony_onset(ds["order"].load())
    for noise, at in onset.items():  # one line per noise level, as computed from the file
        where = "not reached" if at is None else f"at coupling = {at:g} rad/ms"
        assert f"noise = {noise:g} rad/sqrt(ms): {where}" in ran.out
    for name in ("demo.zarr", "demo.nc", "demo.png"):
        assert str(folder / name) in ran.out
    assert "a new store" in ran.out
    assert "created store" in ran.err  # progress goes to logging on stderr, not stdout
    assert "created store" not in ran.out


def test_demo_figure_is_a_png_of_the_expected_size(demo: tuple[Path, Ran]) -> None:
    path = demo[0] / "demo.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == FIGURE_PIXELS[::-1]
    assert image[..., :3].std() > 0.1  # drawn on, not blank


def test_demo_store_is_complete_and_matches_the_export(demo: tuple[Path, Ran]) -> None:
    folder, _ = demo
    stored = open_results(folder / "demo.zarr")
    assert stored.complete and len(stored) == 126
    with xr.open_dataset(folder / "demo.nc") as exported:
        np.testing.assert_array_equal(stored["order"].values, exported["order"].values)


def test_demo_rerun_resumes_without_recomputing(demo: tuple[Path, Ran],
                                                caplog: pytest.LogCaptureFixture) -> None:
    folder, _ = demo
    before = snapshot(folder / "demo.zarr")
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        ran = run("demo", "--small", "--out", str(folder))
    assert ran.code == 0, ran.err[-3000:]
    messages = [r.getMessage() for r in caplog.records if r.name == "labeled_spaces"]
    assert any(m.startswith("resuming: 7 of 7 blocks already stored") for m in messages)
    assert snapshot(folder / "demo.zarr") == before  # not a byte of the store was written
    assert "resumed: 126 of 126 combinations were already stored" in ran.out
    assert "all already in the store" in ran.out
    assert (folder / "demo.nc").exists() and (folder / "demo.png").exists()


def test_demo_refuses_a_store_of_the_other_size(demo: tuple[Path, Ran]) -> None:
    folder, _ = demo
    before = snapshot(folder / "demo.zarr")
    ran = run("demo", "--quiet", "--out", str(folder))  # the default size, into the small store
    assert ran.code == 2
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in ran.err
    assert lines[0].startswith("labeled-spaces demo: error: ")
    assert "holds the small demo" in lines[0] and str(folder) in lines[0]
    assert snapshot(folder / "demo.zarr") == before


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------


def _check_info(text: str) -> None:
    assert "dims: coupling: 21, noise: 6, time: 200, region: 68, region_to: 68" in text
    assert re.search(r"^  coupling +\(coupling\) +float64 +0 \.\. 0\.5 rad/ms \(21 values\)  "
                     r"global coupling K$", text, re.MULTILINE)
    assert re.search(r"^  noise .* 0 \.\. 0\.5 rad/sqrt\(ms\) \(6 values\)", text, re.MULTILINE)
    assert re.search(r"^  time .* 10 \.\. 2000 ms \(200 values\)", text, re.MULTILINE)
    assert "'r_lateralorbitofrontal' .. 'l_insula' (68 values)" in text
    assert re.search(r"^  order +\(coupling, noise\) +float32  units 1", text, re.MULTILINE)
    assert re.search(r"^  fc +\(coupling, noise, region, region_to\) +float32", text,
                     re.MULTILINE)
    assert "N=126, mode='product', axes=2" in text
    assert "GridAxis(low=0.0, high=0.5, n=21" in text and "GridAxis(low=0.0, high=0.5, n=6" in text
    assert "key: [0, 0] (threefry2x32)" in text
    assert re.search(r"versions: labeled_spaces \S+, jax \S+", text)


def test_info_on_the_netcdf(demo: tuple[Path, Ran]) -> None:
    ran = run("info", str(demo[0] / "demo.nc"))
    assert ran.code == 0 and ran.err == ""
    assert ran.out.startswith(f"{demo[0] / 'demo.nc'}: labeled_spaces results, netCDF file")
    _check_info(ran.out)
    assert "complete: 126 of 126 combinations" in ran.out


def test_info_on_the_store(demo: tuple[Path, Ran]) -> None:
    ran = run("info", str(demo[0] / "demo.zarr"))
    assert ran.code == 0 and ran.err == ""
    assert "labeled_spaces results, zarr store" in ran.out
    _check_info(ran.out)
    assert "complete: 7 of 7 blocks done (126 of 126 combinations)" in ran.out


def test_info_on_a_partial_store(tmp_path: Path) -> None:
    def check(k: np.ndarray) -> np.ndarray:
        if np.any(k > 0.6):
            raise ValueError("diverges for k > 0.6")
        return k

    def fragile(params: dict) -> dict:
        # a failure at run time (not at tracing), so the blocks before it are stored
        shape = jax.ShapeDtypeStruct((), np.float32)
        return {"y": 2 * jax.pure_callback(check, shape, params["k"], vmap_method="sequential")}

    space = Space({"k": GridAxis(0.0, 1.0, 5)}, mode="product")
    store = tmp_path / "partial.zarr"
    with pytest.raises(ModelError):
        ParallelExecution(fragile, space, chunk_size=1, progress=False, store=str(store)).run()
    done = int(open_results(store).done.sum())
    assert 0 < done < 5
    ran = run("info", str(store))
    assert ran.code == 0
    assert f"partial: {done} of 5 blocks done ({done} of 5 combinations)" in ran.out


@pytest.mark.filterwarnings("ignore:Consolidated metadata")  # zarr's, about xarray's copy
def test_info_on_a_zarr_copy_of_results(tmp_path: Path) -> None:
    # ds.to_zarr(path) has no completion mask: open_results reads it, and so does info
    space = Space({"k": GridAxis(0.0, 1.0, 5)}, mode="product")
    copy = tmp_path / "copy.zarr"
    ParallelExecution(lambda p: {"y": 2 * p["k"]}, space, progress=False).run(
        ).to_xarray().to_zarr(copy)
    assert open_results(copy).complete
    ran = run("info", str(copy))
    assert ran.code == 0 and ran.err == ""
    assert "complete: 5 of 5 combinations" in ran.out


# ---------------------------------------------------------------------------
# errors: one line on stderr, exit code 2
# ---------------------------------------------------------------------------


def _bad_paths(tmp: Path) -> dict[str, Path]:
    text = tmp / "notes.txt"
    text.write_text("not results\n")
    garbage = tmp / "broken.nc"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(256))
    (tmp / "folder").mkdir()
    (tmp / "folder" / "a.txt").write_text("x")
    return {"missing": tmp / "missing.nc", "text": text, "garbage": garbage,
            "folder": tmp / "folder"}


@pytest.mark.parametrize("kind", ["missing", "text", "garbage", "folder"])
def test_info_on_a_bad_path_is_one_line_and_exit_code_2(tmp_path: Path, kind: str) -> None:
    path = _bad_paths(tmp_path)[kind]
    ran = run("info", str(path))
    assert ran.code == 2 and ran.out == ""
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in ran.err, ran.err
    assert lines[0].startswith("labeled-spaces info: error: ") and str(path) in lines[0]


@pytest.mark.parametrize("argv", [
    [], ["dmeo"], ["demo", "--smal"], ["demo", "--out"], ["demo", "-s"], ["info"],
    ["info", "a.nc", "b.nc"],
])
def test_bad_arguments_are_one_line_and_exit_code_2(argv: list[str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # were an argument taken, the demo would write here
    ran = run(*argv)
    assert ran.code == 2 and ran.out == ""
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in ran.err, ran.err
    assert lines[0].startswith("labeled-spaces") and "error: " in lines[0]


@pytest.mark.parametrize(("argv", "expected"), [
    (["demo", "--smal"], "unknown option --smal for labeled-spaces demo (its options: "
                         "-h/--help, --out DIR, --small, -q/--quiet); did you mean --small? "
                         "(see labeled-spaces demo --help)"),
    (["demo", "--quite"], "unknown option --quite for labeled-spaces demo (its options: "
                          "-h/--help, --out DIR, --small, -q/--quiet); did you mean --quiet? "
                          "(see labeled-spaces demo --help)"),
    (["info", "a.nc", "b.nc"], "unrecognized arguments: b.nc (see labeled-spaces info --help)"),
])
def test_an_unknown_option_is_reported_by_its_subcommand_with_the_nearest_option(
        argv: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The help to read is the subcommand's, which lists its options; a typo is named."""
    monkeypatch.chdir(tmp_path)
    ran = run(*argv)
    assert ran.code == 2 and ran.err.strip() == f"labeled-spaces: error: {expected}"


def test_demo_into_a_file_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    ran = run("demo", "--small", "--quiet", "--out", str(tmp_path / "taken"))
    assert ran.code == 2
    assert len(ran.err.strip().splitlines()) == 1 and "Traceback" not in ran.err


def test_help_exits_0(capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--help"]) == 0
    assert "--small" in capsys.readouterr().out


def test_console_script(tmp_path: Path) -> None:
    """The installed entry point; Python's own exit path prints no traceback either."""
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "labeled-spaces"]
    assert script.value == "labeled_spaces.cli:main"
    command = Path(sys.executable).with_name("labeled-spaces")
    assert command.exists(), "reinstall the package (pip install -e .) to get the command"
    missing = str(tmp_path / "missing.zarr")
    proc = subprocess.run([str(command), "info", missing], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"labeled-spaces info: error: path must be an existing zarr store or netCDF file, "
        f"got {missing!r}"]


# ---------------------------------------------------------------------------
# damaged stores and the failures the command expects
# ---------------------------------------------------------------------------


def _damage_first_chunk(store: Path, name: str) -> None:
    chunk = next(p for p in sorted((store / name / "c").rglob("*")) if p.is_file())
    chunk.write_bytes(b"\x00garbage" * 40)


@pytest.mark.parametrize("damage, said", [
    (lambda s: _damage_first_chunk(s, "order"), r"is damaged and cannot be read \(RuntimeError"),
    (lambda s: _damage_first_chunk(s, "labeled_spaces/done"), r"is damaged and cannot be read"),
    (lambda s: (s / "fc" / "zarr.json").unlink(), r"it lacks the arrays \['fc'\]"),
    (lambda s: __import__("shutil").rmtree(s / "labeled_spaces"),
     r"it lacks the arrays \['labeled_spaces/done'\]"),
    (lambda s: (s / "zarr.json").write_text("garbage"), r"Expecting value"),
], ids=["chunk", "done-mask", "missing-array", "missing-mask", "metadata"])
def test_demo_on_a_damaged_store_is_one_line_and_exit_code_2(
        demo: tuple[Path, Ran], tmp_path: Path, damage, said) -> None:
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(demo[0], folder)
    damage(folder / "demo.zarr")
    before = snapshot(folder / "demo.zarr")
    ran = run("demo", "--small", "--quiet", "--out", str(folder))
    assert ran.code == 2, ran.err[-3000:]
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in ran.err
    assert lines[0].startswith("labeled-spaces demo: error: ")
    assert re.search(said, lines[0]), lines[0]
    assert snapshot(folder / "demo.zarr") == before  # nothing written into it


def test_expected_failures_are_one_line_and_bugs_keep_their_traceback(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import labeled_spaces.cli as cli
    from labeled_spaces._checks import fail
    from labeled_spaces.grid import Grid

    def refused(path):  # a refusal of the package: a raise statement in labeled_spaces
        fail("path", "a file of results", path, TypeError)

    def unwritable(path):
        raise PermissionError(13, "Permission denied", path)

    def buggy(path):  # an operation failing inside the package: a bug
        return Grid(None)

    def foreign(path):  # a library's own ValueError, not reported on purpose
        return np.asarray("text", dtype=float)

    path = str(tmp_path / "x.nc")
    for describe, said in ((refused, "path must be a file of results, got"),
                           (unwritable, "Permission denied")):
        monkeypatch.setattr(cli, "describe", describe)
        ran = run("info", path)
        assert ran.code == 2 and len(ran.err.strip().splitlines()) == 1
        assert ran.err.startswith("labeled-spaces info: error: ") and said in ran.err
    for describe, kind in ((buggy, TypeError), (foreign, ValueError)):
        monkeypatch.setattr(cli, "describe", describe)
        with pytest.raises(kind):
            run("info", path)


def test_info_names_string_labels_alike_in_a_store_and_a_netcdf_file(tmp_path: Path) -> None:
    # zarr 3 reads them as NumPy's StringDType, once shown as "StringDType()" beside "<U1"
    from labeled_spaces.cli import describe

    space = Space({"k": GridAxis(0.0, 1.0, 2)}, mode="product")
    results = ParallelExecution(lambda s: s["k"] * np.ones(2, np.float32), space,
                                output_dims={"result": ("region",)},
                                output_coords={"region": np.array(["a", "b"])},
                                store=str(tmp_path / "s.zarr"), progress=False).run()
    results.to_netcdf(tmp_path / "s.nc")
    rows = [next(line for line in describe(tmp_path / name).splitlines()
                 if line.strip().startswith("region")) for name in ("s.zarr", "s.nc")]
    # open_results gives them back as fixed-width unicode from either file
    assert rows[0] == rows[1] and "StringDType" not in rows[0] and "<U1" in rows[0], rows

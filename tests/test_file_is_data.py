"""A file is only data: nothing outside it is read, nothing it claims beyond its size is built.

Malicious files are made here with xarray, netCDF4 and h5py: HDF5 external
storage and links, attrs that claim huge axes or dtypes, JSON nested too
deep, a malformed output tree, pipes and links inside a store. Files
written get the umask's permissions, and leftovers of killed writes are
cleaned only when they are our own and stale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr

import labeled_spaces as ls
from labeled_spaces.cli import main


def small_results():
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
    return ls.ParallelExecution(lambda s: s["k"] * 2, space, progress=False).run()


def run_info(path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "labeled_spaces.cli", "info", str(path)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
    return proc.returncode, proc.stderr


def hdf5_results(path: Path, make_result) -> None:
    """A netCDF4-readable file of results whose ``result`` variable ``make_result`` makes."""
    attrs = small_results().to_xarray().attrs
    with h5py.File(path, "w") as f:
        k = f.create_dataset("k", data=np.array([0.0, 0.5, 1.0]))
        k.make_scale("k")
        result = make_result(f)
        result.dims[0].attach_scale(k)
        for name, value in attrs.items():
            f.attrs[name] = value


def test_hdf5_external_storage_is_refused_before_reading(tmp_path):
    secret = tmp_path / "secret.bin"
    np.array([7.0, 8.0, 9.0], np.float32).tofile(secret)
    path = tmp_path / "external.nc"
    hdf5_results(path, lambda f: f.create_dataset("result", shape=(3,), dtype="float32",
                                                  external=[(str(secret), 0, 12)]))
    with xr.open_dataset(path) as plain:  # what the HDF5 library would read: the other file
        assert plain["result"].values.tolist() == [7.0, 8.0, 9.0]
    with pytest.raises(ValueError, match="keeps its data in another file"):
        ls.open_results(path)
    code, err = run_info(path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "external storage" in err


def test_hdf5_links_out_of_the_file_and_virtual_datasets_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.array([7.0, 8.0, 9.0], np.float32)
    linked = tmp_path / "linked.nc"
    small_results().to_netcdf(linked)
    with h5py.File(linked, "a") as f:
        f["elsewhere"] = h5py.ExternalLink(str(other), "/data")
    with pytest.raises(ValueError, match="is a link to"):
        ls.open_results(linked)
    virtual = tmp_path / "virtual.nc"

    def make(f):
        layout = h5py.VirtualLayout(shape=(3,), dtype="float32")
        layout[:] = h5py.VirtualSource(str(other), "data", shape=(3,))
        return f.create_virtual_dataset("result", layout)

    hdf5_results(virtual, make)
    with pytest.raises(ValueError, match="virtual dataset"):
        ls.open_results(virtual)


def with_attrs(tmp_path: Path, name: str, change) -> Path:
    """A small results file whose attrs ``change`` edits (a dict in place)."""
    ds = small_results().to_xarray()
    attrs = dict(ds.attrs)
    change(attrs)
    ds.attrs = attrs
    path = tmp_path / name
    ds.to_netcdf(path)
    return path


def test_attrs_that_claim_a_huge_axis_are_refused(tmp_path):
    def huge(attrs):
        axes = json.loads(attrs["labeled_spaces:axes"])
        axes[0]["n"] = 2**29
        attrs["labeled_spaces:axes"] = json.dumps(axes)

    path = with_attrs(tmp_path, "huge.nc", huge)
    assert path.stat().st_size < 20_000
    with pytest.raises(ValueError, match=r"the axis at 'k' \(536,870,912 points\) claims"):
        ls.open_results(path)
    shape = with_attrs(tmp_path, "shape.nc", lambda a: a.update({
        "labeled_spaces:axes": json.dumps([{"type": "GridAxis", "low": 0.0, "high": 1.0,
                                            "n": 3, "shape": [2**16, 2**16], "path": "k"}])}))
    with pytest.raises(ValueError, match="the axis at 'k'.* claims .* GB, more than"):
        ls.open_results(shape)


def test_attrs_that_claim_a_huge_dtype_are_refused(tmp_path):
    path = with_attrs(tmp_path, "dtype.nc", lambda a: a.update({
        "labeled_spaces:axes": json.dumps([{"type": "DataAxis", "values": ["a", "b", "c"],
                                            "dtype": "S2000000000", "path": "k"}])}))
    with pytest.raises(ValueError, match="dtype S2000000000 claims 6 GB"):
        ls.open_results(path)
    fixed = with_attrs(tmp_path, "fixed.nc", lambda a: a.update({
        "labeled_spaces:state": json.dumps({"dict": [["k", {"axis": 0}], ["x", {"leaf": {
            "array": {"values": ["a"], "dtype": "U500000000"}}}]]})}))
    with pytest.raises(ValueError, match="dtype U500000000 claims 2 GB"):
        ls.open_results(fixed)


def test_a_file_dimension_beyond_its_size_is_refused_before_xarray_loads_it(tmp_path):
    path = tmp_path / "dims.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("k", 2**30)
        var = nc.createVariable("k", "f8", ("k",), chunksizes=(1024,), zlib=True)
        var.setncattr("units", "s")  # no data written: the file stays small
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match="the coordinate 'k' .* claims 8.59 GB"):
        ls.open_results(path)
    code, err = run_info(path)
    assert code == 2 and "claims 8.59 GB" in err


@pytest.mark.parametrize("entry, raw, match", [
    ("labeled_spaces:axes", "[" * 100_000 + "]" * 100_000, "nests deeper than 64"),
    ("labeled_spaces:state", '{"list": ' * 200 + "[]" + "}" * 200, "nests deeper than 64"),
    ("labeled_spaces:output_tree", '{"dict": 5}', "must describe an output structure"),
    ("labeled_spaces:output_tree", '[1, 2]', "must describe an output structure"),
    ("labeled_spaces:output_tree", '{"dict": [[1, {"leaf": 0}]]}', "output structure"),
    ("labeled_spaces:outputs", '{"a": 1}', "must be a list of output names"),
    ("labeled_spaces:output_dims", '[1]', "must map outputs to dimension names"),
    ("labeled_spaces:netcdf_names", '{"a": [1]}', "must map names in the file"),
], ids=["deep-axes", "deep-state", "tree-dict", "tree-list", "tree-key", "outputs",
        "output-dims", "netcdf-names"])
def test_malformed_attrs_are_a_value_error(tmp_path, entry, raw, match):
    path = with_attrs(tmp_path, "bad.nc", lambda a: a.update({entry: raw}))
    with pytest.raises(ValueError, match=match):
        ls.open_results(path)


def test_a_pipe_is_never_opened(tmp_path):
    fifo = tmp_path / "results.nc"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"named pipe \(FIFO\)"):
        ls.open_results(fifo)
    code, err = run_info(fifo)  # would wait forever on the pipe
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("labeled-spaces info: error: ") and "named pipe" in line
    assert main(["info", "/dev/zero"]) == 2  # a device


def test_a_store_with_a_link_or_a_pipe_inside_is_refused(tmp_path):
    store = tmp_path / "run.zarr"
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 4)}, mode="product")
    ls.ParallelExecution(lambda s: s["k"], space, chunk_size=2, progress=False,
                         store=str(store)).run()
    chunk = next(p for p in (store / "result").rglob("*") if p.is_file() and "c" in p.parts)
    chunk.unlink()
    os.symlink(tmp_path / "elsewhere", chunk)
    with pytest.raises(ValueError, match="symbolic link"):
        ls.open_results(store)
    chunk.unlink()
    os.mkfifo(chunk)
    with pytest.raises(ValueError, match="neither"):
        ls.open_results(store)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        small_results().to_netcdf(tmp_path / "sweep.nc")
        space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
        ls.ParallelExecution(lambda s: s["k"], space, progress=False,
                             store=str(tmp_path / "run.zarr")).run()
    finally:
        os.umask(old)
    assert (tmp_path / "sweep.nc").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "run.zarr").stat().st_mode & 0o777 == 0o777 & ~umask


def test_leftovers_of_killed_writes_are_cleaned_only_when_ours_and_stale(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = time.time() - 3600

    def leftover(name: str, age: float = old) -> Path:
        path = tmp_path / name
        path.write_bytes(b"partial")
        os.utime(path, (age, age))
        return path

    stale = leftover(f".sweep.nc.{dead.pid}-0123456789abcdef.tmp")
    fresh = leftover(f".sweep.nc.{dead.pid}-1123456789abcdef.tmp", time.time())
    running = leftover(f".sweep.nc.{os.getpid()}-2123456789abcdef.tmp")
    other = leftover(".sweep.nc.notours.tmp")
    another_file = leftover(f".other.nc.{dead.pid}-3123456789abcdef.tmp")
    small_results().to_netcdf(tmp_path / "sweep.nc")
    assert not stale.exists()
    assert fresh.exists() and running.exists() and other.exists() and another_file.exists()
    assert ls.open_results(tmp_path / "sweep.nc").complete

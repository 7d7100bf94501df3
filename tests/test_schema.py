"""The attrs schema: every ``labeled_spaces:*`` key a Dataset, store or file holds, declared."""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import pytest
import xarray as xr

import labeled_spaces as ls
from labeled_spaces import _schema


def _keys(ds: xr.Dataset) -> set[str]:
    """The package's keys among the attrs of ``ds`` and of its variables."""
    found = {k for k in ds.attrs if k.startswith(_schema.PREFIX)}
    for var in ds.variables.values():
        found |= {k for k in var.attrs if k.startswith(_schema.PREFIX)}
    return found


def _model(s):
    # a list output (netCDF renames "[0]"), bfloat16 (widened, its dtype kept) and complex
    return [s["k"] * 2, s["k"].astype(jnp.bfloat16), (s["k"] + 1j * s["m"]).astype(jnp.complex64)]


def test_every_key_written_is_declared_in_the_schema(tmp_path):
    state = {"k": ls.GridAxis(0.0, 1.0, 4), "m": ls.GridAxis(0.0, 1.0, 4), "dt": 0.5}
    space = ls.Space(state, mode="zip", key=jax.random.key(3, impl="rbg"))[1:3]  # selection
    results = ls.ParallelExecution(_model, space, progress=False,
                                   store=str(tmp_path / "s.zarr")).run()
    results.to_netcdf(tmp_path / "s.nc")
    with xr.open_zarr(tmp_path / "s.zarr") as stored, xr.open_dataset(
            tmp_path / "s.nc", auto_complex=True) as saved:
        written = _keys(results.to_xarray()) | _keys(stored) | _keys(saved)
    # a state whose structure the attrs cannot encode: its fixed leaves are saved by path
    point = collections.namedtuple("Point", "k dt")(ls.GridAxis(0.0, 1.0, 4), 0.5)
    written |= _keys(ls.ParallelExecution(lambda s: s.k * s.dt, ls.Space(point),
                                          progress=False).run().to_xarray())
    assert written <= _schema.KEYS, f"undeclared keys {written - _schema.KEYS}"
    # a raw key (PRNGKey) is saved as such: its key leaves give raw keys once rebuilt
    raw = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2), "n": ls.PointKey()}, key=jax.random.PRNGKey(1))
    written |= _keys(ls.ParallelExecution(lambda s: s["k"] + jax.random.uniform(s["n"]), raw,
                                          progress=False).run().to_xarray())
    # refine's results say how the refinement was asked for
    box = ls.Space({"x": ls.GridAxis(0.0, 1.0, 2), "y": ls.GridAxis(0.0, 1.0, 2)},
                   mode="product")
    written |= _keys(ls.refine(lambda s: s["x"] * s["y"], box, n=5, batch=1).to_xarray())
    # the results of an analysis name it (labeled_spaces:analysis)
    written |= _keys(ls.gradients(lambda s: s["k"] ** 2, ls.Space({"k": ls.GridAxis(0.0, 1.0, 2)}),
                                  progress=False).to_xarray())
    # every kind of entry occurs here: the test sees them all
    assert written == _schema.KEYS


def test_read_entry_parses_checks_and_names_what_is_missing():
    attrs = {_schema.KEY_ATTR: "[0, 7]", _schema.STATE_ATTR: "[" * 100 + "]" * 100}
    assert _schema.read_entry(attrs, _schema.KEY_ATTR) == [0, 7]
    assert _schema.read_entry(attrs, _schema.AXES_ATTR, None) is None
    with pytest.raises(ValueError, match="attrs lack the labeled_spaces entry "
                                         "'labeled_spaces:axes': not results"):
        _schema.read_entry(attrs, _schema.AXES_ATTR, hint=": not results")
    with pytest.raises(ValueError, match="'labeled_spaces:state' nests deeper than 64"):
        _schema.read_entry(attrs, _schema.STATE_ATTR)


def test_the_keys_are_the_documented_spellings():
    # the schema is the file format: these spellings are what files hold and must not change
    assert sorted(k.removeprefix(_schema.PREFIX) for k in _schema.KEYS) == [
        "analysis", "arguments", "axes", "complex", "dim", "dtype", "identity", "key", "key_impl",
        "key_kind", "leaves",
        "mode",
        "netcdf_names", "output_dims", "output_dtypes", "output_tree", "outputs", "refine",
        "selected_from",
        "selection",
        "state", "state_nodes", "store", "versions"]
    assert all(k.startswith("labeled_spaces:") for k in _schema.KEYS)

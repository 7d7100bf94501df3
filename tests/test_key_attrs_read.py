"""A file's key entries and its store's chunk names, hand-edited: clear refusals, never a miscount.

What a file says about its PRNG key (``labeled_spaces:key``, ``key_impl``,
``key_kind``, a KeyAxis's saved key) is checked where it is read: integers
out of uint32's range, a name that is no JAX PRNG implementation, or key
data of the wrong shape are a ``ValueError`` naming the entry, in a message
of bounded length. A file in a store's folders whose name is no chunk key
(``-1``, ``+1``) is not taken for a block.
"""

from __future__ import annotations

import json
import shutil

import jax
import netCDF4
import numpy as np
import pytest
import zarr

import labeled_spaces as ls


def model(s):
    return s["k"] * 2 + jax.random.uniform(s["n"])


def space():
    return ls.Space({"k": ls.GridAxis(0.0, 1.0, 4), "n": ls.PointKey()},
                    key=jax.random.PRNGKey(1))


def saved(tmp_path, kind):
    """A small results file (``nc``) or store (``zarr``) of ``space()``, in blocks of 2."""
    path = tmp_path / f"run.{kind}"
    if kind == "zarr":
        ls.ParallelExecution(model, space(), chunk_size=2, progress=False,
                             store=str(path)).run()
    else:
        ls.ParallelExecution(model, space(), progress=False).run().to_netcdf(path)
    return path


def edit(path, key, value):
    if path.is_dir():
        zarr.open_group(str(path), mode="r+").attrs[key] = value
    else:
        with netCDF4.Dataset(path, "a") as nc:
            nc.setncattr(key, value)


@pytest.mark.parametrize("kind", ["nc", "zarr"])
@pytest.mark.parametrize("entry, value, match", [
    ("key", "[1099511627776, 0]", r"labeled_spaces:key .*unsigned 32-bit integers\), got \[1099"),
    ("key", "[-1, 0]", r"unsigned 32-bit integers\), got \[-1, 0\]"),
    ("key", "[Infinity, 0]", r"unsigned 32-bit integers\), got \[inf, 0\]"),
    ("key", json.dumps([10**400, 0]), "unsigned 32-bit integers"),
    ("key", "[[0, 1]]", r"must hold one PRNG key's data, got the data of \(1,\) keys"),
    ("key_impl", "os.system", "must be the name of a JAX PRNG implementation .*'os.system'"),
    ("key_impl", "x" * 1_000_000, "must be the name of a JAX PRNG implementation"),
    ("key_impl", "rbg", r"of implementation 'rbg' \(shape \(4,\)\), got shape \(2,\)"),
    ("key_kind", "x" * 1_000_000, "labeled_spaces:key_kind must be 'raw'"),
    # not a key entry, but read beside them: the file's mode is named, not Space's argument
    ("mode", "qmc", r"attrs entry labeled_spaces:mode must be 'product', 'zip', 'sobol', "
                    r"'halton' or 'lhs', got 'qmc'"),
], ids=["key-2**40", "key-negative", "key-inf", "key-10**400", "key-2d", "impl-module-path",
        "impl-huge", "impl-of-another-shape", "kind-huge", "mode-unknown"])
def test_a_hand_edited_key_entry_is_a_short_value_error(tmp_path, kind, entry, value, match):
    path = saved(tmp_path, kind)
    edit(path, f"labeled_spaces:{entry}", value)
    with pytest.raises(ValueError, match=match) as err:
        ls.open_results(path)
    # the message names what was expected, not the whole of what the file holds
    assert len(str(err.value)) < 400 and "PRNGImpl" not in str(err.value)
    with pytest.raises(ValueError, match=match):
        ls.open_results(path, state=space().state)


@pytest.mark.parametrize("key, match", [
    ({"data": [2**40, 0], "impl": "threefry2x32", "typed": True}, "unsigned 32-bit integers"),
    ({"data": [0, 0], "impl": "builtins.eval", "typed": True}, "'builtins.eval'"),
    ({"data": [0, 0], "impl": "threefry2x32", "typed": "yes"}, "'typed' \\(a bool\\)"),
])
def test_a_keyaxis_key_edited_in_the_file_is_refused(tmp_path, key, match):
    sub = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2), "seed": ls.KeyAxis(3)},
                   mode="product").isel(seed=[2, 0])
    path = tmp_path / "sub.nc"
    ls.ParallelExecution(lambda s: s["k"] + jax.random.uniform(s["seed"]), sub,
                         progress=False).run().to_netcdf(path)
    with netCDF4.Dataset(path, "a") as nc:
        axes = json.loads(nc.getncattr("labeled_spaces:axes"))
        assert axes[1]["type"] == "KeyAxis" and "key" in axes[1]
        axes[1]["key"] = key
        nc.setncattr("labeled_spaces:axes", json.dumps(axes))
    with pytest.raises(ValueError, match=match):
        ls.open_results(path)


def test_a_file_named_minus_one_is_no_block_of_a_store(tmp_path):
    path = saved(tmp_path, "zarr")
    fresh = ls.ParallelExecution(model, space(), progress=False).run().to_xarray()
    # the last block unfinished (its chunk and done mark gone), and files named -1 beside:
    # int("-1") is the last block, which they would count as written and done
    (path / "labeled_spaces" / "done" / "c" / "1").unlink()
    (path / "result" / "c" / "1").unlink()
    shutil.copy(path / "labeled_spaces" / "done" / "c" / "0",
                path / "labeled_spaces" / "done" / "c" / "-1")
    shutil.copy(path / "result" / "c" / "0", path / "result" / "c" / "-1")
    opened = ls.open_results(path)
    assert not opened.complete
    resumed = ls.ParallelExecution(model, space(), chunk_size=2, progress=False,
                                   store=str(path)).run()
    assert resumed.complete
    np.testing.assert_array_equal(resumed.to_xarray()["result"].values,
                                  fresh["result"].values)


@pytest.mark.parametrize("positions, match", [
    ([1.5, 2], r"positions must be integers, got \[1.5, 2\]"),
    (list(range(100_000)), r"labeled_spaces:selection must hold one position per point along "
                           r"'sample' \(2\), got positions of shape \(100000,\)"),
], ids=["float", "long"])
def test_a_selection_edited_in_the_file_is_refused_briefly(tmp_path, positions, match):
    sub = ls.Space({"k": ls.GridAxis(0.0, 1.0, 4), "m": ls.GridAxis(0.0, 1.0, 4)})[1:3]
    path = tmp_path / "slice.nc"
    ls.ParallelExecution(lambda s: s["k"] + s["m"], sub, progress=False).run().to_netcdf(path)
    with netCDF4.Dataset(path, "a") as nc:
        kept = json.loads(nc.getncattr("labeled_spaces:selection"))
        assert kept["positions"] == {"sample": [1, 2]}
        kept["positions"]["sample"] = positions  # 1.5 was cut to 1 and opened
        nc.setncattr("labeled_spaces:selection", json.dumps(kept))
    with pytest.raises(ValueError, match=match) as err:
        ls.open_results(path)
    assert len(str(err.value)) < 600


@pytest.mark.parametrize("kind", ["nc", "zarr"])
@pytest.mark.parametrize("entry, value, start", [
    ("mode", "x" * 2_000_000, "attrs entry labeled_spaces:mode must be 'product', 'zip', "),
    ("leaves", json.dumps("x" * 2_000_000), "attrs entry labeled_spaces:leaves must be a JSON"),
    ("state", json.dumps([1] * 400_000), "attrs entry labeled_spaces:state must be a JSON"),
    ("outputs", json.dumps("x" * 2_000_000), "attrs entry labeled_spaces:outputs"),
], ids=["mode", "leaves", "state", "outputs"])
def test_a_refusal_quotes_a_bounded_part_of_a_huge_entry(tmp_path, kind, entry, value, start):
    path = saved(tmp_path, kind)
    edit(path, f"labeled_spaces:{entry}", value)
    with pytest.raises(ValueError) as err:
        ls.open_results(path)
    text = str(err.value)
    # it was the whole entry (2 MB) quoted back
    assert text.startswith(start) and len(text) <= 2000
    assert "characters elided" in text or "..." in text  # cut, and saying so


@pytest.mark.parametrize("kind", ["nc", "zarr"])
def test_a_key_attr_edited_away_from_the_runs_identity_is_refused(tmp_path, kind):
    # a grid space with PointKeys: no coordinate depends on the key, so only the run's
    # identity can tell that a rerun of the rebuilt space would draw other noise
    def noisy(state):
        return {"u": state["a"] + jax.random.uniform(state["k"])}

    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 8), "k": ls.PointKey()}, mode="product",
                     key=jax.random.key(3))
    results = ls.ParallelExecution(noisy, space, progress=False,
                                   store=str(tmp_path / "run.zarr") if kind == "zarr" else None
                                   ).run()
    path = tmp_path / "run.zarr" if kind == "zarr" else tmp_path / "run.nc"
    if kind == "nc":
        results.to_netcdf(path)
    again = ls.open_results(path)  # untouched: opens, and reruns to the same bits
    np.testing.assert_array_equal(
        ls.ParallelExecution(noisy, again.space, progress=False).run()["u"].values,
        results["u"].values)
    edited = tmp_path / f"edited.{kind}"  # a copy: the reopened results still read the file
    (shutil.copytree if kind == "zarr" else shutil.copy)(path, edited)
    edit(edited, "labeled_spaces:key", "[0, 4]")
    with pytest.raises(ValueError, match=r"rebuilt from attrs entry labeled_spaces:key gives "
                                         r"other keys than the run's own record in "
                                         r"labeled_spaces:identity \(key\[1\]: 3 -> 4"):
        ls.open_results(edited)


WRITER = """
import sys, jax
jax.config.update("jax_threefry_partitionable", False)
import labeled_spaces as ls
space = ls.Space({"c": ls.GridAxis(0.0, 1.0, 4), "r": ls.KeyAxis(3)}, mode="product")
ls.ParallelExecution(lambda s: s["c"] + jax.random.uniform(s["r"]), space, progress=False,
                     store=sys.argv[1]).run()
"""


def test_a_key_axis_split_under_another_jax_setting_is_refused(tmp_path):
    # a KeyAxis's keys fold from the key JAX's split gives it, whose rule is a setting
    # (jax_threefry_partitionable): the replicate numbers read the same, so a store resumed
    # or a file reopened under the other setting mixed or relabelled other keys
    import subprocess
    import sys

    path = tmp_path / "r.zarr"
    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True)
    assert jax.config.jax_threefry_partitionable  # this process splits the other way
    space = ls.Space({"c": ls.GridAxis(0.0, 1.0, 4), "r": ls.KeyAxis(3)}, mode="product")
    with pytest.raises(ValueError, match=r"was made for another space: axes\.r\.axis_key"):
        ls.ParallelExecution(lambda s: s["c"] + jax.random.uniform(s["r"]), space,
                             progress=False, store=path).run()
    with pytest.raises(ValueError, match=r"the KeyAxis 'r' folds its keys from .* the run "
                                         r"from .*jax_threefry_partitionable"):
        ls.open_results(path)
    with jax.threefry_partitionable(False):  # the run's setting: it opens, with the run's keys
        opened = ls.open_results(path)
        assert opened.space.N == 12

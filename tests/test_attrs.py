"""Space ⇄ attrs: self-contained files, references to big values, and files that are data."""

from __future__ import annotations

import builtins
import contextlib
import importlib
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import xarray as xr

from labeled_spaces import (
    DataAxis,
    GridAxis,
    NumPyroAxis,
    ParallelExecution,
    Space,
    UniformAxis,
)
from labeled_spaces.axes import NotRebuildable

KEY = jax.random.key(4)


def round_trip(attrs: dict) -> dict:
    """The attrs as read back from a file (JSON strings)."""
    return json.loads(json.dumps(attrs))


# ---------------------------------------------------------------------------
# item 3: the fixed leaves are in the file
# ---------------------------------------------------------------------------


def fixed_state() -> dict:
    return {
        "a": GridAxis(0.0, 1.0, 3),
        "u": UniformAxis(0.0, 1.0, 2),
        "fixed": {
            "k": 2,
            "name": "run-1",
            "flag": True,
            "none": None,
            "w": [1.5, np.float32(0.25)],
            "arr": np.arange(3, dtype=np.int32),
            "z": 1 + 2j,
            "zc": np.complex64(0.5 - 1j),
            "j": jnp.array([0.5, 1.5]),
            "t": (np.int16(3), "x"),
        },
    }


def fixed_model(s):
    f = s["fixed"]
    return {"y": s["a"] * f["k"] + s["u"] * f["w"][1] + jnp.sum(f["arr"]) + jnp.sum(f["j"])
            + jnp.real(f["z"]) + jnp.imag(f["zc"]) + f["t"][0]}


def test_from_attrs_alone_gives_the_same_points_and_results(assert_tree_equal):
    space = Space(fixed_state(), mode="product", key=KEY)
    rebuilt = Space.from_attrs(round_trip(space.attrs))
    assert rebuilt.sizes == {"a": 3, "u": 2}
    for i in range(len(space)):
        assert_tree_equal(rebuilt[i], space[i])
    fixed = rebuilt[0]["fixed"]
    # the leaves come back as the types they were given
    assert fixed["k"] == 2 and type(fixed["k"]) is int
    assert fixed["name"] == "run-1" and fixed["flag"] is True and fixed["none"] is None
    assert type(fixed["w"][1]) is np.float32 and fixed["w"][1] == 0.25
    assert fixed["arr"].dtype == np.int32 and fixed["arr"].tolist() == [0, 1, 2]
    assert fixed["z"] == 1 + 2j and type(fixed["zc"]) is np.complex64
    assert isinstance(fixed["j"], jax.Array) and fixed["j"].tolist() == [0.5, 1.5]
    assert type(fixed["t"]) is tuple and type(fixed["t"][0]) is np.int16
    ours = ParallelExecution(fixed_model, space, progress=False).run().to_xarray()
    theirs = ParallelExecution(fixed_model, rebuilt, progress=False).run().to_xarray()
    xr.testing.assert_identical(theirs, ours)
    np.testing.assert_array_equal(ours["y"].values[2, 1],
                                  fixed_model(space[5])["y"])


class Opaque:
    """A fixed leaf that JSON cannot describe."""


def test_fixed_leaves_that_cannot_be_encoded_ask_for_the_state(assert_tree_equal):
    state = {"a": GridAxis(0.0, 1.0, 3), "cfg": {"solver": Opaque(), "dt": 0.1}}
    space = Space(state, key=KEY)
    attrs = round_trip(space.attrs)
    with pytest.raises(NotRebuildable, match=r"the fixed leaf at 'cfg\.solver' of the saved "
                       r"state \(a Opaque\) .*state=\.\.\."):
        Space.from_attrs(attrs)
    rebuilt = Space.from_attrs(attrs, state=state)
    assert rebuilt[1]["cfg"]["solver"] is state["cfg"]["solver"]
    for i in range(len(space)):
        assert_tree_equal(rebuilt[i], space[i])


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_typed_prng_keys_as_fixed_leaves_are_saved_and_rebuilt(impl, tmp_path):
    keys = {"one": jax.random.key(11, impl=impl),
            "many": jax.random.split(jax.random.key(12, impl=impl), 3)}
    state = {"a": GridAxis(0.0, 1.0, 3), **keys}

    def noisy(s):
        return s["a"] + jax.random.normal(s["one"]) + jax.random.normal(s["many"][2])

    results = ParallelExecution(noisy, Space(state, key=KEY), progress=False).run()
    path = tmp_path / "keys.nc"
    results.to_netcdf(path)  # to_xarray and the attrs encode the keys
    from labeled_spaces import open_results

    rebuilt = open_results(path).space
    for name, key in keys.items():
        got = rebuilt[0][name]
        assert jax.random.key_impl(got) == jax.random.key_impl(key)
        np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(key))
    again = ParallelExecution(noisy, rebuilt, progress=False).run().to_xarray()
    xr.testing.assert_identical(again["result"], results.to_xarray()["result"])


@pytest.mark.parametrize("leaf", [jnp.array(2.0), jnp.asarray(3), jnp.asarray(0.5 - 1j),
                                  jnp.broadcast_to(jnp.asarray(1.5), (2, 3))],
                         ids=["float", "int", "complex", "broadcast"])
def test_weakly_typed_jax_leaves_come_back_weakly_typed(leaf, tmp_path):
    # jnp.array(2.0) promotes like the Python number: bfloat16 * it stays bfloat16, where a
    # strong float32 makes float32; a rebuilt space that lost the weak type ran another
    # program, and its store refused to resume ("holds other outputs")
    from labeled_spaces import open_results

    def model(s):
        return jnp.real(s["a"].astype(jnp.bfloat16) * s["w"]).sum()

    state = {"a": GridAxis(0.0, 1.0, 4), "w": leaf}
    path = tmp_path / "weak.zarr"
    first = ParallelExecution(model, Space(state, key=KEY), store=path, progress=False).run()
    rebuilt = open_results(path).space
    got = rebuilt[0]["w"]
    assert got.weak_type and got.dtype == leaf.dtype and got.shape == leaf.shape
    np.testing.assert_array_equal(np.asarray(got), np.asarray(leaf))
    again = ParallelExecution(model, rebuilt, store=path, progress=False).run()
    ours, theirs = first.to_xarray()["result"], again.to_xarray()["result"]
    assert theirs.dtype == ours.dtype
    assert ours.dtype == (np.float32 if leaf.dtype.kind == "c" else jnp.bfloat16)
    # (xarray's own comparison of bfloat16 arrays reports equal ones as differing)
    np.testing.assert_array_equal(theirs.values.view(np.uint16), ours.values.view(np.uint16))
    # a strong JAX array stays strong
    strong = Space.from_attrs(round_trip(Space({"a": GridAxis(0.0, 1.0, 2),
                                                "w": jnp.float32(2.0)}).attrs))
    assert not strong[0]["w"].weak_type


def test_sub_spaces_with_fixed_dims_rebuild_with_either_state(assert_tree_equal):
    state = {"a": GridAxis(0.0, 1.0, 5), "b": UniformAxis(0.0, 1.0, 3), "dt": 0.1}
    space = Space(state, mode="product", key=KEY)
    sub = space.isel(a=2)
    attrs = round_trip(sub.attrs)
    for given in (state, sub.state, None):
        rebuilt = Space.from_attrs(attrs, state=given)
        assert rebuilt.sizes == {"b": 3}
        xr.testing.assert_identical(xr.Dataset(coords=rebuilt.coords),
                                    xr.Dataset(coords=sub.coords))
        for i in range(3):
            assert_tree_equal(rebuilt[i], sub[i])
            assert float(rebuilt[i]["a"]) == 0.5 and rebuilt[i]["dt"] == 0.1


def test_only_zip_spaces_record_their_dim():
    state = {"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(0.0, 1.0, 3)}
    assert "labeled_spaces:dim" not in Space(state, mode="product").attrs
    zipped = Space(state, mode="zip", dim="run")
    assert zipped.attrs["labeled_spaces:dim"] == "run"
    assert Space.from_attrs(round_trip(zipped.attrs)).dims == ("run",)


# ---------------------------------------------------------------------------
# item 3 and 20: big DataAxis values are the file's coordinates, not JSON
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.complex64])
def test_big_data_axis_values_refer_to_their_coordinate(dtype, assert_tree_equal):
    values = (np.arange(20_002) % 97).reshape(10_001, 2).astype(dtype)
    state = {"w": DataAxis(values, name="conn"), "g": GridAxis(0.0, 1.0, 2)}
    space = Space(state, mode="product", key=KEY)
    attrs = round_trip(space.attrs)
    specs = json.loads(attrs["labeled_spaces:axes"])
    assert specs[1]["values"] == {"coordinate": "conn_value", "dtype": np.dtype(dtype).name,
                                  "shape": [10_001, 2]}
    assert len(attrs["labeled_spaces:axes"]) < 1_000
    with pytest.raises(NotRebuildable, match=r"the axis at 'w': .*coordinate 'conn_value' .*"
                       r"labeled_spaces\.open_results\(path\)"):
        Space.from_attrs(attrs)
    rebuilt = Space.from_attrs(attrs, data=space.to_xarray())
    assert rebuilt.axes[1].data.dtype == dtype
    np.testing.assert_array_equal(rebuilt.axes[1].data, values)
    for i in (0, 1, 7, 20_001):
        assert_tree_equal(rebuilt[i], space[i])
    # the original state holds the same axis: it is taken from there
    assert Space.from_attrs(attrs, state=state).axes[1] is state["w"]


def test_connectome_sweep_attrs_hold_references_not_values(assert_tree_equal):
    weights = np.random.default_rng(0).random((200, 68, 68))
    space = Space({"weights": DataAxis(weights), "coupling": GridAxis(0.0, 1.0, 3)},
                  mode="product")
    attrs = space.attrs
    assert attrs["labeled_spaces:axes"] is space.attrs["labeled_spaces:axes"]  # built once
    assert len(attrs["labeled_spaces:axes"]) < 10_000  # 924,800 numbers are not inlined
    spec = json.loads(attrs["labeled_spaces:axes"])[1]
    assert spec["values"]["coordinate"] == "weights_value"
    data = xr.Dataset(coords=space.coords)
    rebuilt = Space.from_attrs(round_trip(attrs), data=data)
    np.testing.assert_array_equal(rebuilt.axes[1].data, weights)
    assert_tree_equal(rebuilt[599], space[599])
    # a selection of some of them: values and value coordinate are the sub-space's coordinate
    sub = space.isel(weights=slice(10, 160))
    assert len(sub.attrs["labeled_spaces:axes"]) < 10_000
    again = Space.from_attrs(round_trip(sub.attrs), data=xr.Dataset(coords=sub.coords))
    xr.testing.assert_identical(xr.Dataset(coords=again.coords), xr.Dataset(coords=sub.coords))
    assert_tree_equal(again[100], sub[100])


# ---------------------------------------------------------------------------
# item 17: DataAxis labels keep their dtype through the attrs
# ---------------------------------------------------------------------------

LABELS = {
    "int8": np.array([-3, 0, 7], np.int8),
    "float32": np.array([0.5, 0.25, 0.1], np.float32),
    "uint64": np.array([1, 2**63, 2**64 - 1], np.uint64),
    "datetime64": np.array(["2020-01-01", "2020-01-02", "2021-06-30"], "datetime64[ns]"),
    "bytes": np.array([b"a", b"bb", b"\xff"]),
    "complex": np.array([1 + 1j, 2, -3j], np.complex64),
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_data_axis_labels_keep_their_dtype(kind, assert_tree_equal):
    labels = LABELS[kind]
    space = Space({"d": DataAxis([1.0, 2.0, 3.0], labels=labels), "g": GridAxis(0.0, 1.0, 2)},
                  mode="product")
    rebuilt = Space.from_attrs(round_trip(space.attrs))
    got = rebuilt.coords["d"].values
    assert got.dtype == labels.dtype
    np.testing.assert_array_equal(got, labels)
    assert rebuilt.sel(d=labels[1]).sizes == {"g": 2}
    assert_tree_equal(rebuilt.sel(d=labels[2])[1], space.sel(d=labels[2])[1])


# ---------------------------------------------------------------------------
# item 18: a file is data, never code
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def nothing_imported_or_called(monkeypatch):
    """Record imports of modules not yet loaded, and calls of what attrs might name."""
    calls: list[str] = []
    before = set(sys.modules)
    real_import, real_import_module = builtins.__import__, importlib.import_module

    def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name not in sys.modules:
            calls.append(f"import {name}")
        return real_import(name, globals, locals, fromlist, level)

    def recording_import_module(name, package=None):
        calls.append(f"importlib.import_module({name!r})")
        return real_import_module(name, package)

    monkeypatch.setattr(builtins, "__import__", recording_import)
    monkeypatch.setattr(importlib, "import_module", recording_import_module)
    for owner, attr in ((os, "getcwd"), (os, "system"), (subprocess, "Popen"),
                        (builtins, "eval"), (builtins, "exec")):
        monkeypatch.setattr(owner, attr,
                            lambda *a, _n=f"{owner.__name__}.{attr}", **k: calls.append(_n))
    try:
        yield calls
    finally:
        monkeypatch.undo()
    assert calls == []
    assert set(sys.modules) - before == set()


def base_attrs() -> dict:
    state = {
        "n": NumPyroAxis(dist.Normal(0.0, 1.0), 2),
        "d": DataAxis([1.0, 2.0], labels=["x", "y"]),
        "g": GridAxis(0.0, 1.0, 2),
    }
    return round_trip(Space(state, mode="product").attrs)


def with_spec(path: str, change) -> dict:
    attrs = base_attrs()
    specs = json.loads(attrs["labeled_spaces:axes"])
    spec = next(s for s in specs if s["path"] == path)
    change(spec)
    attrs["labeled_spaces:axes"] = json.dumps(specs)
    return attrs


def distribution(cls: str, **params) -> dict:
    return {"class": cls, "params": params}


def axis_type(name):
    return lambda: with_spec("g", lambda s: s.update(type=name))


def distribution_named(spec: dict):
    return lambda: with_spec("n", lambda s: s.__setitem__("distribution", spec))


def spec_entry(path: str, **entries):
    return lambda: with_spec(path, lambda s: s.update(entries))


def attrs_entry(name: str, value):
    return lambda: {**base_attrs(), f"labeled_spaces:{name}": value}


NORMAL = "numpyro.distributions.continuous.Normal"

# case: (the crafted attrs, what the error must name)
CRAFTED = {
    "axis type os.getcwd": (axis_type("os.getcwd"), "os.getcwd"),
    "axis type builtins.eval": (axis_type("builtins.eval"), "builtins.eval"),
    "axis type: an unregistered class": (axis_type("AbstractAxis"), "AbstractAxis"),
    "axis type: a dotted path": (axis_type("labeled_spaces.axes.GridAxis"),
                                 "labeled_spaces.axes.GridAxis"),
    "distribution os.getcwd": (distribution_named(distribution("os.getcwd")), "os.getcwd"),
    "distribution builtins.eval": (
        distribution_named(distribution("builtins.eval", source="1")), "builtins.eval"),
    "distribution subprocess.Popen": (
        distribution_named(distribution("subprocess.Popen", args=["ls"])), "subprocess.Popen"),
    "distribution not loaded": (
        distribution_named(distribution("numpyro.contrib.tfp.distributions.Normal")),
        "numpyro.contrib.tfp.distributions.Normal"),
    "distribution base class": (
        distribution_named(distribution("numpyro.distributions.distribution.Distribution")),
        "numpyro.distributions.distribution.Distribution"),
    "nested distribution os.system": (
        distribution_named(distribution(
            NORMAL, loc={"distribution": distribution("os.system", command="echo hi")},
            scale=1.0)),
        "os.system"),
    "distribution argument __class__": (
        distribution_named(distribution(NORMAL, loc=0.0, scale=1.0, __class__=1)), "__class__"),
    "distribution argument of an unknown kind": (
        distribution_named(distribution(NORMAL, loc={"pickle": "x"}, scale=1.0)),
        "{'pickle': 'x'}"),
    "key_impl not a string": (attrs_entry("key_impl", ["os.getcwd"]), "['os.getcwd']"),
    "key_impl os.getcwd": (attrs_entry("key_impl", "os.getcwd"), "os.getcwd"),
    "data dtype os.getcwd": (spec_entry("d", dtype="os.getcwd"), "os.getcwd"),
    "labels dtype object": (spec_entry("d", labels_dtype="object"), "'object'"),
    "grid dtype os.getcwd": (spec_entry("g", dtype="os.getcwd"), "os.getcwd"),
    "state leaf pickle": (
        attrs_entry("state", json.dumps({"leaf": {"pickle": "gASV"}})), "['pickle']"),
    "state node os.getcwd": (
        attrs_entry("state", json.dumps({"class": "os.getcwd"})), "['class']"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_from_attrs_never_imports_or_calls_what_a_file_names(case, monkeypatch):
    make, named = CRAFTED[case]
    attrs = make()
    with nothing_imported_or_called(monkeypatch), pytest.raises(ValueError) as info:
        Space.from_attrs(attrs)
    assert named in str(info.value)
    assert not isinstance(info.value, TypeError)


def test_the_crafted_files_are_valid_apart_from_what_they_name(monkeypatch):
    # each crafted file fails only by what it names: the base rebuilds, importing nothing
    with nothing_imported_or_called(monkeypatch):
        rebuilt = Space.from_attrs(base_attrs())
    assert rebuilt.sizes == {"d": 2, "g": 2, "n": 2}
    assert rebuilt.coords["d"].values.tolist() == ["x", "y"]


def test_the_leaves_of_a_namedtuple_state_are_data_and_checked_as_such():
    from collections import namedtuple

    from labeled_spaces import _schema

    point = namedtuple("Point", "k dt")(GridAxis(0.0, 1.0, 3), 0.5)
    attrs = Space(point).attrs
    assert _schema.STATE_ATTR not in attrs
    assert json.loads(attrs[_schema.LEAVES_ATTR]) == {"dt": {"value": 0.5}}
    assert Space.from_attrs(attrs, state=point).state.dt == 0.5
    with pytest.raises(ValueError, match="labeled_spaces:leaves must be a JSON object"):
        Space.from_attrs({**attrs, _schema.LEAVES_ATTR: "[1, 2]"}, state=point)
    # an encoding this version cannot read names nothing to call: the caller's leaf is kept
    odd = {**attrs, _schema.LEAVES_ATTR: '{"dt": {"call": "os.system"}}'}
    assert Space.from_attrs(odd, state=point).state.dt == 0.5
    # a state with another fixed leaf than the file's is refused
    with pytest.raises(ValueError, match="at 'dt' the file holds 0.5, got 0.25"):
        Space.from_attrs(attrs, state=point._replace(dt=0.25))

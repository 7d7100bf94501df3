"""Keys per combination: KeyAxis (replicates) and PointKey (one key per combination).

A combination's key is computed inside the compiled block from its position
and never depends on how it is run: every executor, ``n_vmap``,
``chunk_size``, ``n_pmap``, dask, a resumed store and a sub-space give it the
same key, so the same results bit for bit; files keep and rebuild both kinds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
import zarr
from distributed import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labeled_spaces as ls
from labeled_spaces.axes import NotRebuildable
from labeled_spaces.execution.cluster import local_cluster

KEY = jax.random.key(5)


def state():
    # 5 x 3 = 15 combinations: the blocks below tile them raggedly
    return {"a": ls.GridAxis(0.0, 1.0, 5), "rep": ls.KeyAxis(3), "noise": ls.PointKey(),
            "dt": 0.1}


def space(key=KEY):
    return ls.Space(state(), mode="product", key=key)


def model(s):
    """Integer outputs that show each key's bits, and floats drawn from them.

    Only additions of uniform draws (exact bit manipulations): no multiply feeds an
    add, which XLA on CPU would contract into an FMA in some block shapes only.
    """
    return {"point": jax.random.key_data(s["noise"]), "replicate": jax.random.key_data(s["rep"]),
            "bits": jax.random.bits(s["noise"], (3,)),
            "x": s["a"] + jax.random.uniform(s["noise"]) + jax.random.uniform(s["rep"])}


def expected_point_keys(key, shape):
    """The contract, written out: the key folded with the position along each dim in order."""
    out = np.empty((*shape, 2), dtype=np.uint32)
    for index in np.ndindex(*shape):
        k = key
        for p in index:
            k = jax.random.fold_in(k, p)
        out[index] = jax.random.key_data(k)
    return out


@pytest.fixture(scope="module")
def reference():
    return ls.SequentialExecution(model, space(), progress=False, jit=False).run().to_xarray()


def assert_same(got: xr.Dataset, want: xr.Dataset) -> None:
    for name in want.data_vars:
        assert np.array_equal(got[name].values, want[name].values), name


# -- what the keys are ---------------------------------------------------------------


def test_point_keys_fold_the_space_key_with_each_dimension_position(reference):
    got = reference["point"].values
    assert np.array_equal(got, expected_point_keys(KEY, (5, 3)))
    assert len({tuple(k) for k in got.reshape(-1, 2)}) == 15  # a different key each


def test_key_axis_replicates_fold_the_axis_key_and_are_shared_by_the_other_dims(reference):
    axis_key = jax.random.split(KEY, 3)[2]  # the split a random axis gets: axis 1 of 2
    want = np.stack([jax.random.key_data(jax.random.fold_in(axis_key, r)) for r in range(3)])
    got = reference["replicate"].values
    for a in range(5):  # common random numbers: the same replicates for every coupling
        assert np.array_equal(got[a], want)
    assert reference["replicate"].dims[:2] == ("a", "rep")
    assert reference.coords["rep"].values.tolist() == [0, 1, 2]


def test_a_replicate_does_not_depend_on_the_number_of_replicates():
    few = ls.Space({"seed": ls.KeyAxis(2), "a": ls.GridAxis(0.0, 1.0, 2)}, mode="product")
    many = ls.Space({"seed": ls.KeyAxis(7), "a": ls.GridAxis(0.0, 1.0, 2)}, mode="product")
    assert few.dims == many.dims == ("a", "seed")
    for a in range(2):
        for r in range(2):
            assert few[a * 2 + r]["seed"] == many[a * 7 + r]["seed"]


def test_a_key_axis_without_point_keys_gives_every_executor_its_keys():
    s = ls.Space({"a": ls.GridAxis(0.0, 1.0, 2), "r": ls.KeyAxis(3)}, mode="product", key=KEY)
    want = np.stack([np.asarray(jax.random.key_data(point["r"])) for point in s])
    for executor in (ls.ParallelExecution, ls.SequentialExecution):
        got = executor(lambda st: jax.random.key_data(st["r"]), s, progress=False).run()
        assert np.array_equal(np.stack([np.asarray(x) for x in got]), want)
    assert len({tuple(k) for k in want}) == 3  # replicates differ, couplings share them


def test_one_dimension_is_fold_in_of_the_index_and_none_means_key_zero():
    zipped = ls.Space({"a": ls.GridAxis(0.0, 1.0, 6), "k": ls.PointKey()})
    for i in range(6):
        assert zipped[i]["k"] == jax.random.fold_in(jax.random.key(0), i)
    assert [p["k"] == jax.random.fold_in(jax.random.key(0), i) for i, p in
            enumerate(zipped)] == [True] * 6


def test_keys_follow_the_space_keys_kind_raw_or_typed():
    raw = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "k": ls.PointKey(), "r": ls.KeyAxis(2)},
                   mode="product", key=jax.random.PRNGKey(9))
    point = raw[4]
    assert point["k"].dtype == jnp.uint32 and point["k"].shape == (2,)
    typed = jax.random.wrap_key_data(jax.random.PRNGKey(9))
    want = jax.random.fold_in(jax.random.fold_in(typed, 2), 0)  # a: 2, r: 0
    assert np.array_equal(point["k"], jax.random.key_data(want))
    results = ls.ParallelExecution(lambda s: jax.random.bits(s["k"]), raw, progress=False).run()
    assert int(results[4]) == int(jax.random.bits(want))


def test_two_point_keys_of_one_state_give_the_same_key():
    with pytest.warns(UserWarning, match=r"PointKeys at 'k\[0\]' and 'k\[1\]' give the same"):
        space_ = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "k": [ls.PointKey(), ls.PointKey()]})
    assert space_[1]["k"][0] == space_[1]["k"][1]


def test_collect_gives_keys_batched_like_the_values():
    collected = space().collect(n_vmap=5)
    assert collected["noise"].shape == (5, 3) and collected["rep"].shape == (5, 3)
    flat = jax.random.key_data(collected["noise"]).reshape(-1, 2)
    assert np.array_equal(flat, expected_point_keys(KEY, (5, 3)).reshape(-1, 2))
    axes, statics = space().collect(n_vmap=5, combine=False)
    assert statics["noise"] is None and axes["noise"].shape == (5, 3)


def test_the_key_axis_labels_and_values():
    s = space()
    assert s.sizes == {"a": 5, "rep": 3}
    assert "noise" not in s.coords and "rep_value" not in s.coords
    assert s.to_xarray()["rep_values"].values[0].tolist() == [0, 1, 2]  # replicate numbers
    keys = ls.KeyAxis(3).keys(KEY)
    assert keys.shape == (3,) and keys[2] == jax.random.fold_in(KEY, 2)


# -- how it is run never changes a key -----------------------------------------------


@pytest.mark.filterwarnings("ignore:n_vmap=.* is more than chunk_size")  # drawn on purpose
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(n_vmap=st.one_of(st.none(), st.integers(1, 6)),
       chunk_size=st.one_of(st.none(), st.integers(1, 16)))
def test_keys_do_not_change_with_n_vmap_or_chunk_size(reference, n_vmap, chunk_size):
    got = ls.ParallelExecution(model, space(), progress=False, n_vmap=n_vmap,
                               chunk_size=chunk_size).run().to_xarray()
    assert_same(got, reference)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(chunk_size=st.integers(1, 15), start=st.integers(0, 14), length=st.integers(1, 15))
def test_keys_do_not_change_with_chunks_of_a_slice(reference, chunk_size, start, length):
    got = ls.ParallelExecution(model, space()[start:start + length], progress=False,
                               chunk_size=chunk_size).run().to_xarray()
    for name in ("point", "replicate", "bits", "x"):
        want = reference[name].stack(sample=("a", "rep")).transpose("sample", ...).values
        assert np.array_equal(got[name].values, want[start:start + length]), name


@pytest.mark.parametrize("options", [{}, {"jit": False}])
def test_sequential_execution_gives_the_same_keys(reference, options):
    got = ls.SequentialExecution(model, space(), progress=False, **options).run().to_xarray()
    assert_same(got, reference)


def test_a_program_sees_replicate_numbers_and_the_model_the_keys(reference):
    seen = []

    def lane(call, axis_values, state_arrays, extra_arrays):
        seen.append([jnp.asarray(v).dtype for v in axis_values])
        return call(axis_values, state_arrays, extra_arrays)

    got = ls.ParallelExecution(model, space(), program=ls.Program(lane), progress=False).run()
    assert seen[0] == [jnp.float32, jnp.int32]  # one value per axis: the grid and replicate r
    assert_same(got.to_xarray(), reference)


def test_spaces_that_differ_only_in_their_key_reuse_no_program(reference):
    other = ls.ParallelExecution(model, space(jax.random.key(6)), progress=False).run()
    assert np.array_equal(other.to_xarray()["point"].values,
                          expected_point_keys(jax.random.key(6), (5, 3)))
    again = ls.ParallelExecution(model, space(), progress=False).run()
    assert_same(again.to_xarray(), reference)


@pytest.fixture(scope="module")
def client():
    with local_cluster(1) as cluster, Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(1)
        yield c


def test_dask_execution_gives_the_same_keys(reference, client):
    got = ls.DaskExecution(model, space(), client=client, chunk_size=4,
                           progress=False).run().to_xarray()
    assert_same(got, reference)
    sliced = ls.DaskExecution(model, space()[3:12], client=client, chunk_size=2,
                              progress=False).run().to_xarray()
    want = reference["point"].stack(sample=("a", "rep")).transpose("sample", ...).values[3:12]
    assert np.array_equal(sliced["point"].values, want)


def test_a_resumed_store_recomputes_the_same_keys(reference, tmp_path):
    path = tmp_path / "keys.zarr"
    ls.ParallelExecution(model, space(), progress=False, store=path, chunk_size=4).run()
    group = zarr.open_group(str(path), mode="r+")
    done = group["labeled_spaces/done"]
    step = json.loads(group.attrs["labeled_spaces:store"])["step"]
    # two blocks lost in a crash: garbage in their place and no done mark
    done[(0,) * done.ndim] = False
    done[(1,) + (0,) * (done.ndim - 1)] = False
    group["point"][: 2 * step[0]] = 0
    group["x"][: 2 * step[0]] = -7.0
    for executor in (ls.SequentialExecution, ls.ParallelExecution):
        again = executor(model, space(), progress=False, store=path).run()
        assert again.complete
        assert_same(again.to_xarray().compute(), reference)


# -- sub-spaces keep each combination's key ------------------------------------------


def test_isel_and_sel_keep_each_combinations_keys(reference):
    picks = [
        ({"a": [1, 3]}, {"a": [1, 3]}),
        ({"a": 2}, {"a": 2}),
        ({"rep": [2, 0]}, {"rep": [2, 0]}),
        ({"rep": 1, "a": slice(1, 4)}, {"rep": 1, "a": slice(1, 4)}),
    ]
    for chosen, where in picks:
        sub = space().isel(chosen)
        got = ls.ParallelExecution(model, sub, progress=False).run().to_xarray()
        want = reference.isel(where)
        for name in ("point", "replicate", "bits", "x"):
            assert np.array_equal(got[name].values, want[name].values), (chosen, name)
        if "rep" in sub.dims:
            assert got.coords["rep"].values.tolist() == want.coords["rep"].values.tolist()
    by_label = space().sel(a=0.5, rep=[1, 2])
    got = ls.SequentialExecution(model, by_label, progress=False).run().to_xarray()
    assert np.array_equal(got["point"].values, reference["point"].sel(a=0.5, rep=[1, 2]).values)


def test_a_slice_of_a_slice_and_a_selection_of_a_slice_keep_the_keys(reference):
    flat = reference["point"].stack(sample=("a", "rep")).transpose("sample", ...).values
    inner = space()[2:14][3:9]
    got = ls.ParallelExecution(model, inner, progress=False).run().to_xarray()
    assert np.array_equal(got["point"].values, flat[5:11])
    picked = space()[2:14].isel(sample=[0, 5, 11])
    got = ls.ParallelExecution(model, picked, progress=False).run().to_xarray()
    assert np.array_equal(got["point"].values, flat[[2, 7, 13]])


def test_a_zip_space_slice_keeps_its_positions():
    zipped = ls.Space({"a": ls.GridAxis(0.0, 1.0, 8), "k": ls.PointKey(),
                       "r": ls.KeyAxis(8)}, key=KEY)
    sub = zipped[5:8]
    axis_key = jax.random.split(KEY, 3)[2]
    for j, i in enumerate(range(5, 8)):
        assert sub[j]["k"] == jax.random.fold_in(KEY, i)
        assert sub[j]["r"] == jax.random.fold_in(axis_key, i)


# -- saved and rebuilt -----------------------------------------------------------------


def test_a_file_rebuilds_the_keys(reference, tmp_path):
    results = ls.ParallelExecution(model, space(), progress=False).run()
    path = tmp_path / "keys.nc"
    results.to_netcdf(path)
    opened = ls.open_results(path)
    rebuilt = opened.space
    assert isinstance(rebuilt.axes[1], ls.KeyAxis) and rebuilt.sizes == {"a": 5, "rep": 3}
    assert isinstance(rebuilt.state["noise"], ls.PointKey)
    assert_same(opened.to_xarray(), reference)
    again = ls.ParallelExecution(model, rebuilt, progress=False).run().to_xarray()
    assert_same(again, reference)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_file_rebuilds_raw_keys_as_raw_keys(suffix, tmp_path):
    # a Space keyed by PRNGKey gives its model raw uint32[2] keys: a model may use them as
    # arrays (here an output), so the rebuilt Space must give raw keys, not typed ones
    def raw_model(s):
        assert s["noise"].dtype == jnp.uint32 and s["rep"].dtype == jnp.uint32
        return {"point": s["noise"], "replicate": s["rep"]}

    raw = space(jax.random.PRNGKey(5))
    for sub in (raw, raw.isel(a=[4, 1], rep=[2])):
        path = tmp_path / f"raw{sub.N}{suffix}"
        if suffix == ".zarr":
            results = ls.ParallelExecution(raw_model, sub, progress=False, store=path).run()
        else:
            results = ls.ParallelExecution(raw_model, sub, progress=False).run()
            results.to_netcdf(path)
        rebuilt = ls.open_results(path).space
        assert rebuilt.key.dtype == jnp.uint32 and rebuilt.key.shape == (2,)
        assert rebuilt[0]["noise"].dtype == jnp.uint32
        again = ls.ParallelExecution(raw_model, rebuilt, progress=False).run().to_xarray()
        assert_same(again, results.to_xarray().compute())
    with pytest.raises(ValueError, match="labeled_spaces:key_kind must be 'raw'"):
        ls.Space.from_attrs({**raw.attrs, "labeled_spaces:key_kind": "typed"})


@pytest.mark.parametrize("select", [
    lambda s: s.isel(a=[0, 4], rep=[2]),
    lambda s: s.isel(rep=1),
    lambda s: s[4:13],
    lambda s: s[4:13][1:5],
])
def test_a_saved_sub_space_rebuilds_its_original_keys(select, tmp_path):
    sub = select(space())
    results = ls.ParallelExecution(model, sub, progress=False).run()
    path = tmp_path / "sub.nc"
    results.to_netcdf(path)
    rebuilt = ls.open_results(path).space
    again = ls.ParallelExecution(model, rebuilt, progress=False).run().to_xarray()
    assert_same(again, results.to_xarray())
    # and with the original state given (a sub-space's PointKey is the saved one)
    from_state = ls.Space.from_attrs(sub.attrs, state=sub.state)
    assert from_state.state["noise"] == sub.state["noise"]


def test_the_attrs_hold_data_only():
    sub = space()[4:13]
    axes = json.loads(sub.attrs["labeled_spaces:axes"])
    tree = sub.attrs["labeled_spaces:state"]
    assert '"point_key"' in tree and "class" not in json.dumps(axes)
    axis = ls.axis_from_spec(json.loads(json.dumps(space().isel(rep=[0, 2]).axes[1].spec())))
    assert isinstance(axis, ls.KeyAxis) and axis.replicates.tolist() == [0, 2]
    assert axis.key is not None and axis.n == 3
    assert ls.axis_from_spec(ls.KeyAxis(4, name="seed").spec()).spec() == {
        "type": "KeyAxis", "name": "seed", "n": 4}


def test_a_point_key_is_a_hashable_value():
    assert ls.PointKey() == ls.PointKey() and hash(ls.PointKey()) == hash(ls.PointKey())
    positioned = ls.PointKey(positions=[3, ("sample", [0, 2])])
    assert positioned == ls.PointKey.from_spec(json.loads(json.dumps(positioned.spec())))
    assert positioned != ls.PointKey(positions=[3, ("sample", [0, 1])])
    assert repr(positioned) == "PointKey(positions=[3, ('sample', [0, 2])])"


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("make, error, match", [
    (lambda: ls.KeyAxis(0), ValueError, "n must be >= 1, got 0"),
    (lambda: ls.KeyAxis(-3), ValueError, "n must be >= 1, got -3"),
    (lambda: ls.KeyAxis(2.5), TypeError, "n must be an integer, got 2.5"),
    (lambda: ls.KeyAxis("3"), TypeError, "n must be an integer, got '3'"),
    (lambda: ls.KeyAxis(2**30), ValueError, "n must be below 2\\*\\*30"),
    (lambda: ls.KeyAxis(3, name=4), TypeError, "name must be a non-empty string or None, got 4"),
    (lambda: ls.KeyAxis(3, replicates=[0, 3]), ValueError, "replicates must be positions "
     "in \\[0, 3\\), got \\[0, 3\\]"),
    (lambda: ls.KeyAxis(3, replicates=[]), ValueError, "replicates must be a non-empty"),
    (lambda: ls.KeyAxis(3, key=7), TypeError, "key must be a jax.random.key"),
    (lambda: ls.PointKey(positions="ab"), TypeError, "positions must be a sequence"),
    (lambda: ls.PointKey(positions=[-1]), ValueError, "positions\\[0\\] must be a non-negative "
     "position, got -1"),
    (lambda: ls.PointKey(positions=[("", [1])]), TypeError, "positions\\[0\\] must be an int or"),
    (lambda: ls.PointKey(positions=[("a", [1.5])]), TypeError, "positions\\[0\\]\\[1\\] must be"),
    (lambda: ls.PointKey(positions=[]), ValueError, "positions must be a non-empty sequence"),
    # the position tables are int32 and fold_in takes uint32: a larger position would alias
    (lambda: ls.PointKey(positions=[("a", [2**32 + 1])]), ValueError,
     "positions\\[0\\]\\[1\\] must be positions in \\[0, 1073741824\\), got \\[4294967297\\]"),
    (lambda: ls.PointKey(positions=[2**40]), ValueError, "positions\\[0\\] must be a position "
     "below 2\\*\\*30"),
])
def test_bad_arguments_name_the_argument_and_the_value(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_point_key_whose_positions_do_not_fit_the_space_is_refused():
    with pytest.raises(ValueError, match="along dimension 'b', which the space does not have"):
        ls.Space({"a": ls.GridAxis(0.0, 1.0, 2), "k": ls.PointKey(positions=[("b", [0, 1])])})
    with pytest.raises(ValueError, match="holds 3 positions along dimension 'sample', which "
                                         "has 2 points"):
        ls.Space({"a": ls.GridAxis(0.0, 1.0, 2),
                  "k": ls.PointKey(positions=[("sample", [0, 1, 2])])})
    with pytest.raises(ValueError, match="holds no positions along the dimensions \\['b'\\]"):
        ls.Space({"a": ls.GridAxis(0.0, 1.0, 2), "b": ls.GridAxis(0.0, 1.0, 2),
                  "k": ls.PointKey(positions=[("a", [0, 1])])}, mode="product")


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_keys_of_an_rbg_key_are_refused_because_vmap_would_change_them(impl):
    # JAX batches rbg draws (and unsafe_rbg's fold_in) inside vmap from one key of the batch:
    # a combination's noise would depend on n_vmap and the executor, so it is refused
    key = jax.random.key(1, impl=impl)
    batched = jax.vmap(jax.random.bits)(jax.vmap(lambda i: jax.random.fold_in(key, i))(
        jnp.arange(3)))
    alone = [jax.random.bits(jax.random.fold_in(key, i)) for i in range(3)]
    assert not np.array_equal(batched, np.stack(alone))  # what the refusal protects against
    for keyed in ({"k": ls.PointKey()}, {"r": ls.KeyAxis(3)}):
        with pytest.raises(ValueError, match=f"key must be a threefry2x32 key .* got a key of "
                                             f"implementation '{impl}'"):
            ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), **keyed}, key=key)
    with pytest.raises(ValueError, match=f"implementation '{impl}'"):
        ls.KeyAxis(3, key=key)
    with pytest.raises(ValueError, match=f"implementation '{impl}'"):
        ls.KeyAxis(3).keys(key)
    # without key leaves such a key still draws the random axes' values (on the host)
    assert ls.Space({"u": ls.UniformAxis(0.0, 1.0, 3)}, key=key).sizes == {"sample": 3}


def test_a_state_of_keys_alone_is_refused():
    # the message says why a PointKey does not count and what to add
    with pytest.raises(ValueError, match=r"state must contain at least one axis .*a PointKey "
                                         r"\('noise'\) is no axis: .*KeyAxis\(n\)"):
        ls.Space({"noise": ls.PointKey(), "dt": 0.1})


@pytest.mark.parametrize("cls", [ls.PointKey, ls.KeyAxis, ls.GridAxis])
def test_a_key_leaf_or_axis_class_without_its_call_is_refused_by_path(cls):
    # {"noise": PointKey} (parentheses forgotten) was a fixed leaf, and the model failed at
    # combination 0 with JAX's "unexpected PRNG key type <class 'type'>"
    with pytest.raises(TypeError, match=f"got the class {cls.__name__} itself at "
                                        r"'\[0\]\.noise': write " + cls.__name__):
        ls.Space([{"a": ls.GridAxis(0.0, 1.0, 2), "noise": cls}])


# -- several devices (forced host devices, in a subprocess) --------------------------------

SHARDED = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    import labeled_spaces as ls
    sys.path.insert(0, sys.argv[2])
    from test_keys import model, space

    assert jax.device_count() == 4, jax.devices()
    for k, options in enumerate([dict(n_pmap=2), dict(n_pmap=4, n_vmap=2),
                                 dict(n_pmap=4, chunk_size=8)]):
        ds = ls.ParallelExecution(model, space(), progress=False, **options).run().to_xarray()
        for name in ds.data_vars:
            np.save(f"{sys.argv[1]}/{k}-{name}.npy", ds[name].values)
    """
)


def test_keys_do_not_change_with_n_pmap(reference, tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, "-c", SHARDED, str(tmp_path), here], env=env, check=True,
                   timeout=300)
    for k in range(3):
        for name in reference.data_vars:
            got = np.load(tmp_path / f"{k}-{name}.npy")
            assert np.array_equal(got, reference[name].values), (k, name)


def test_point_key_in_a_quasi_random_design_gets_one_key_per_point():
    def draw(state):
        return state["a"] + jax.random.normal(state["k"])

    design = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "k": ls.PointKey()}, mode="sobol",
                      key=jax.random.key(3))
    parallel = ls.ParallelExecution(draw, design, progress=False, n_vmap=3).run().to_xarray()
    sequential = ls.SequentialExecution(draw, design, progress=False).run().to_xarray()
    noise = parallel["result"].values - parallel["a"].values
    assert len(np.unique(noise)) == 8  # a different key at every point of the design
    np.testing.assert_array_equal(parallel["result"].values, sequential["result"].values)


def test_key_axis_in_a_quasi_random_design_is_refused_by_name():
    with pytest.raises((ValueError, TypeError), match="KeyAxis"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "r": ls.KeyAxis(8)}, mode="sobol",
                 key=jax.random.key(3))


@pytest.mark.parametrize("mode", ["product", "zip"])
def test_keys_of_a_space_selected_down_to_one_point_are_the_full_runs(mode):
    def draw(state):
        return state["a"] + jax.random.normal(state["k"]) + jax.random.uniform(state["r"])

    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "k": ls.PointKey(),
                      "r": ls.KeyAxis(3)}, mode=mode, key=jax.random.key(5))
    full = ls.ParallelExecution(draw, space, progress=False).run().to_xarray()
    picks = {d: 1 for d in space.dims}
    point = space.isel(**picks)
    assert point.dims == ()
    alone = ls.SequentialExecution(draw, point, progress=False).run().to_xarray()
    assert alone["result"].dims == ()
    assert float(alone["result"]) == float(full["result"].isel(**picks))


class _Point(NamedTuple):
    a: object
    k: object
    p: object
    dt: object


def test_a_namedtuple_state_with_key_leaves_reopens_from_a_saved_sub_space(tmp_path):
    # the attrs cannot save a NamedTuple's structure; its fixed leaves (here the sub-space's
    # PointKey, which holds its combinations' original positions) are saved by path
    state = _Point(ls.GridAxis(0.0, 1.0, 3), ls.KeyAxis(2), ls.PointKey(), 0.5)
    space = ls.Space(state, mode="product")

    def model(s):
        return {"y": jax.random.uniform(s.p) + s.a * s.dt + jax.random.uniform(s.k)}

    results = ls.ParallelExecution(model, space.isel(a=[1, 2]), progress=False).run()
    results.to_netcdf(tmp_path / "r.nc")
    opened = ls.open_results(tmp_path / "r.nc", state=state)
    again = ls.ParallelExecution(model, opened.space, progress=False).run()
    xr.testing.assert_identical(again.to_xarray()["y"], results.to_xarray()["y"])
    # a state with another fixed leaf is another run
    with pytest.raises(ValueError, match=r"at 'dt' the file holds 0.5, got 0.25"):
        ls.open_results(tmp_path / "r.nc", state=state._replace(dt=0.25))
    # without state=, the class is not rebuilt (a file names no code to call), but nothing
    # saved is lost: the axes by path in their order, then the fixed leaves and PointKey
    with pytest.warns(UserWarning, match=r"was a NamedTuple '_Point' \(fields a, k, p, dt\)"):
        alone = ls.open_results(tmp_path / "r.nc").space
    assert list(alone.state) == ["a", "k", "p", "dt"] and alone.state["dt"] == 0.5
    assert alone.dims == opened.space.dims and alone.N == opened.space.N

    def by_path(s):
        return model(_Point(**s))

    again = ls.ParallelExecution(by_path, alone, progress=False).run()
    xr.testing.assert_identical(again.to_xarray()["y"], results.to_xarray()["y"])
    # a fixed leaf the file could not save asks for the state, as for a saved structure
    unsaved = _Point(ls.GridAxis(0.0, 1.0, 3), ls.KeyAxis(2), ls.PointKey(), print)
    ls.ParallelExecution(lambda s: s.a + jax.random.uniform(s.k) + jax.random.uniform(s.p),
                         ls.Space(unsaved, mode="product"),
                         progress=False).run().to_netcdf(tmp_path / "u.nc")
    with pytest.raises(NotRebuildable, match=r"the fixed leaf at 'dt' .*state=\.\.\."):
        ls.open_results(tmp_path / "u.nc")
    assert ls.open_results(tmp_path / "u.nc", state=unsaved).space.state.dt is print


def test_gradients_and_fit_refuse_a_key_axis_by_its_kind():
    # replicate keys are conditions of a run, never a variable: the error says KeyAxis,
    # not only the int32 replicate numbers it hands the space
    space = ls.Space({"x": ls.GridAxis(0.0, 1.0, 3), "trial": ls.KeyAxis(2)}, mode="product")

    def noisy(state):
        return (state["x"] - jax.random.normal(state["trial"])) ** 2

    with pytest.raises(ValueError, match=r"'trial' is a KeyAxis: replicate PRNG keys, which "
                                         r"have no derivative"):
        ls.gradients(noisy, space, wrt="trial", progress=False)
    with pytest.raises(ValueError, match=r"'trial' is a KeyAxis: replicate PRNG keys"):
        ls.fit(noisy, space, wrt=["x", "trial"], steps=2, progress=False)
    # by default both leave it alone and vary x at each replicate's key
    grads = ls.gradients(noisy, space, progress=False).to_xarray()
    assert grads["wrt"].values.tolist() == ["x"] and grads.sizes["trial"] == 2
    fitted = ls.fit(noisy, space, steps=2, progress=False).to_xarray()
    assert "x_fit" in fitted and "trial_fit" not in fitted

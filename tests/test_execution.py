"""SequentialExecution and ParallelExecution: values, padding, caching, errors.

Spaces are small and models cheap: every test here costs at most a few compilations.
Results are compared with SequentialExecution (rtol 1e-6), with values computed by
hand from ``space[i]``, and with TVB-Optim 0.4.0 (the reference implementation).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tvboptim import execution as tvb_exec
from tvboptim.types import spaces as tvb_spaces

import labeled_spaces as ls
from labeled_spaces.grid import block_shape as _block_shape

# ---------------------------------------------------------------------------
# spaces and models shared by the tests (module level, so compiled functions are
# cached per model across tests in one worker)
# ---------------------------------------------------------------------------


def product_state(m):
    """5 x 3 = 15 combinations (not a multiple of any block used below)."""
    return {
        "a": m.GridAxis(0.0, 1.0, 5),
        "b": m.UniformAxis(-1.0, 2.0, 3),
        "c": 0.5,
        "w": np.arange(3.0, dtype=np.float32),
    }


def zip_state(m):
    return {"a": m.GridAxis(0.0, 1.0, 7), "b": m.UniformAxis(-1.0, 2.0, 7), "c": 0.5,
            "w": np.arange(3.0, dtype=np.float32)}


def group_state(m):
    """Groups g (a, b zipped, 4) x c (3) = 12 combinations."""
    return {
        "a": m.GridAxis(0.0, 1.0, 4, group="g"),
        "b": m.GridAxis(-1.0, 2.0, 4, group="g"),
        "c": 0.5,
        "w": m.GridAxis(0.0, 2.0, 3),
    }


KEY = jax.random.key(7)


@functools.cache
def space(kind: str) -> ls.Space:
    state = {"product": product_state, "zip": zip_state, "group": group_state}[kind](ls)
    return ls.Space(state, mode="zip" if kind == "zip" else "product", key=KEY)


@functools.cache
def tvb_space(kind: str):
    state = {"product": product_state, "zip": zip_state, "group": group_state}[kind](tvb_spaces)
    return tvb_spaces.Space(state, mode="zip" if kind == "zip" else "product", key=KEY)


def model(state, k=1.0):
    """Nested outputs, an output with its own dimension, and the parameters themselves."""
    x = jnp.sin(state["a"] * 3.0) * state["b"] + state["c"] * k
    ts = x * jnp.arange(4.0) + jnp.sum(state["w"])
    return {"metrics": {"mean": jnp.mean(ts), "x": x}, "ts": ts, "params": state}


def expected(params, k=1.0):
    """What ``model`` returns, computed in NumPy float64."""
    a, b = np.float64(params["a"]), np.float64(params["b"])
    x = np.sin(a * 3.0) * b + params["c"] * k
    ts = x * np.arange(4.0) + np.sum(np.asarray(params["w"], dtype=np.float64))
    return {"mean": ts.mean(), "x": x, "ts": ts}


def leaves_equal(x, y) -> bool:
    """Same tree structure and identical leaves (NaN equal to NaN).

    Where ``y``'s leaf is a NumPy or JAX value, the dtypes must match too (so the
    comparison is bit for bit); a Python number in ``y`` (a fixed leaf of the state)
    may come back as a 0-d array of the model's float dtype.
    """
    lx, tx = jax.tree.flatten(x)
    ly, ty = jax.tree.flatten(y)
    if tx != ty:
        return False
    for p, q in zip(lx, ly, strict=True):
        if not np.array_equal(np.asarray(p), np.asarray(q), equal_nan=True):
            return False
        typed = isinstance(q, (np.ndarray, np.generic, jax.Array))
        if typed and np.asarray(p).dtype != np.asarray(q).dtype:
            return False
    return True


def assert_close_trees(x, y, rtol=1e-6):
    lx, tx = jax.tree.flatten(x)
    ly, ty = jax.tree.flatten(y)
    assert tx == ty
    for p, q in zip(lx, ly, strict=True):
        np.testing.assert_allclose(np.asarray(p), np.asarray(q), rtol=rtol, atol=0)


@functools.cache
def sequential_reference(kind: str):
    return ls.SequentialExecution(model, space(kind), progress=False).run()


# ---------------------------------------------------------------------------
# SequentialExecution
# ---------------------------------------------------------------------------


def test_sequential_jit_values_and_extra_arguments():
    sp = space("product")

    def with_args(state, offset, scale=1.0):
        return {"y": state["a"] * scale + offset, "params": state}

    results = ls.SequentialExecution(with_args, sp, 10.0, scale=3.0, progress=False).run()
    assert len(results) == sp.N == 15
    for i in range(sp.N):
        p = sp[i]
        np.testing.assert_allclose(results[i]["y"], np.float32(p["a"]) * 3.0 + 10.0, rtol=1e-6)
        assert leaves_equal(results[i]["params"], p)
    # the labeled view agrees with the flat one
    y = results.to_xarray()["y"]
    assert y.dims == ("a", "b")
    np.testing.assert_allclose(y.sel(a=0.75).values, 0.75 * 3.0 + 10.0, rtol=1e-6)


def test_sequential_jit_matches_hand_computation_and_nojit():
    sp = space("product")
    jitted = sequential_reference("product")
    plain = ls.SequentialExecution(model, sp, jit=False, progress=False).run()
    assert len(jitted) == len(plain) == sp.N
    for i, (r, q) in enumerate(zip(jitted, plain, strict=True)):
        want = expected(sp[i])
        np.testing.assert_allclose(r["metrics"]["mean"], want["mean"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["ts"], want["ts"], rtol=1e-5, atol=1e-6)
        assert_close_trees(r, q)
        assert leaves_equal(r["params"], sp[i])


def test_sequential_traces_model_once():
    calls = []

    def counted(state, offset):
        calls.append(1)
        return state["a"] * 2.0 + state["b"] + offset

    sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.GridAxis(0.0, 1.0, 2)},
                  mode="product")
    executor = ls.SequentialExecution(counted, sp, 1.0, progress=False)
    results = executor.run()
    assert len(calls) == 1  # 6 combinations, one trace
    executor.run()
    assert len(calls) == 1  # and the compiled function is reused by a second run
    assert [float(r) for r in results] == pytest.approx(
        [float(p["a"]) * 2 + float(p["b"]) + 1.0 for p in sp], rel=1e-6)
    # jit=False calls the model once per combination
    ls.SequentialExecution(counted, sp, 1.0, jit=False, progress=False).run()
    assert len(calls) == 1 + 6


def test_sequential_progress(capsys):
    sp = space("zip")
    ls.SequentialExecution(lambda s: s["a"], sp, jit=False, progress=False).run()
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    ls.SequentialExecution(lambda s: s["a"], sp, jit=False, progress=True).run()
    out, err = capsys.readouterr()
    assert out == ""  # the bar goes to stderr, never to stdout
    assert "7/7" in err


def test_sequential_nojit_bit_identical_to_tvboptim():
    def numpy_model(state, k=1.0):
        # a plain Python model: jnp ops on the values as given
        x = jnp.sin(state["a"] * 3.0) * state["b"] + state["c"] * k
        return {"x": x, "ts": x * jnp.arange(4.0) + jnp.sum(state["w"])}

    ours = ls.SequentialExecution(numpy_model, space("product"), jit=False, progress=False,
                                  k=2.0).run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tvb_exec.SequentialExecution(numpy_model, tvb_space("product"), k=2.0).run()
    assert len(ours) == len(ref) == 15
    for i in range(15):
        assert leaves_equal(ours[i], jax.tree.map(np.asarray, ref[i])), i
    # same for slices and iteration
    assert all(leaves_equal(x, jax.tree.map(np.asarray, y))
               for x, y in zip(ours[3:11:2], ref.results[3:11:2], strict=True))


# ---------------------------------------------------------------------------
# ParallelExecution: values
# ---------------------------------------------------------------------------

CONFIGS = [
    dict(),  # defaults: the whole space in one block
    dict(n_vmap=1),
    dict(n_vmap=3, chunk_size=7),  # blocks of 2 x 3, two lax.map batches each
    dict(n_vmap=8),
    dict(chunk_size=4),  # 4 does not divide 15
    dict(n_vmap=4, chunk_size=7),  # compiled block larger than the step: extra rows dropped
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in
                                                                   c.items()) or "default")
def test_parallel_equals_sequential_and_no_padding(config):
    sp = space("product")
    results = ls.ParallelExecution(model, sp, progress=False, **config).run()
    ref = sequential_reference("product")
    assert len(results) == sp.N
    for i in range(sp.N):
        # padding lanes repeat real points; none of them may land on a wrong index
        assert leaves_equal(results[i]["params"], sp[i]), i
        assert_close_trees(results[i], ref[i])
    assert results.done is None


@pytest.mark.parametrize("kind,config", [("zip", dict(chunk_size=3)),
                                         ("group", dict(n_vmap=5, chunk_size=5))])
def test_parallel_zip_and_groups_equal_sequential(kind, config, capsys):
    sp = space(kind)
    results = ls.ParallelExecution(model, sp, progress=kind == "zip", **config).run()
    out, err = capsys.readouterr()
    assert out == ""  # a progress bar only ever goes to stderr
    assert ("7/7" in err) if kind == "zip" else err == ""
    ref = sequential_reference(kind)
    assert len(results) == sp.N == {"zip": 7, "group": 12}[kind]
    for i in range(sp.N):
        assert leaves_equal(results[i]["params"], sp[i]), i
        assert_close_trees(results[i], ref[i])
        want = expected(sp[i])
        np.testing.assert_allclose(results[i]["metrics"]["x"], want["x"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind,n_vmap", [("product", 4), ("zip", 3), ("group", 1)])
def test_parallel_equals_tvboptim(kind, n_vmap):
    ours = ls.ParallelExecution(model, space(kind), n_vmap=n_vmap, progress=False,
                                k=2.0).run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tvb_exec.ParallelExecution(model, tvb_space(kind), n_vmap=n_vmap, k=2.0).run()
    assert len(ours) == len(ref)
    for i in range(len(ref)):
        a, b = jax.tree.flatten(ours[i]), jax.tree.flatten(ref[i])
        assert a[1] == b[1]
        assert all(np.allclose(x, y, rtol=1e-6, atol=0) for x, y in zip(a[0], b[0], strict=True))
        assert leaves_equal(ours[i]["params"], jax.tree.map(np.asarray, ref[i]["params"]))


@pytest.mark.parametrize("kind", ["product", "zip", "group"])
def test_diff_state_holds_tvboptims_mapped_inputs(kind):
    n_pmap = 1  # more devices than there are is refused when the executor is made
    # TVB-Optim's executor keeps its mapped inputs as diff_state, which its users read
    ours = ls.ParallelExecution(model, space(kind), n_pmap=n_pmap, progress=False).diff_state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tvb_exec.ParallelExecution(model, tvb_space(kind), n_pmap=n_pmap).diff_state
    assert isinstance(ours, tuple) and len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_parallel_non_scalar_axes():
    # product mode over axes with a value shape (TVB-Optim cannot do this one)
    state = {
        "v": ls.GridAxis(0.0, 1.0, 4, shape=(3,)),
        "m": ls.DataAxis(np.arange(12.0, dtype=np.float32).reshape(3, 2, 2)),
        "u": ls.UniformAxis(0.0, 1.0, 2),
        "z": ls.NumPyroAxis(__import__("numpyro").distributions.Normal(0.0, 1.0), n=2,
                            sample_shape=(2,)),
    }
    sp = ls.Space(state, mode="product", key=jax.random.key(3))
    assert sp.dims == ("m", "u", "v", "z") and sp.shape == (3, 2, 4, 2)

    def matrix_model(s):
        return {"y": jnp.sum(s["m"]) * s["v"] + s["u"], "mz": s["m"] @ s["z"]}

    results = ls.ParallelExecution(matrix_model, sp, n_vmap=3, chunk_size=5,
                                   progress=False).run()
    seq = ls.SequentialExecution(matrix_model, sp, progress=False).run()
    assert results.to_xarray()["y"].shape == (*sp.shape, 3)
    assert results.to_xarray()["mz"].shape == (*sp.shape, 2)
    for i in range(sp.N):
        p = jax.tree.map(lambda x: np.asarray(x, dtype=np.float64), sp[i])
        np.testing.assert_allclose(results[i]["y"], p["m"].sum() * p["v"] + p["u"], rtol=1e-6)
        np.testing.assert_allclose(results[i]["mz"], p["m"] @ p["z"], rtol=1e-5, atol=1e-6)
        assert_close_trees(results[i], seq[i])


def test_parallel_keeps_nan_and_inf(capsys):
    sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 5), "b": ls.GridAxis(1.0, 2.0, 2)},
                  mode="product")

    def singular(s):
        return {"log": jnp.log(s["a"] - 0.25), "inv": s["b"] / (s["a"] - 0.5),
                "n": jnp.where(s["a"] > 0.9, 1.0, jnp.nan) * jnp.ones(2)}

    results = ls.ParallelExecution(singular, sp, chunk_size=3, progress=False).run()
    assert capsys.readouterr() == ("", "")  # four blocks, progress=False: nothing printed
    ds = results.to_xarray()
    with np.errstate(all="ignore"):
        a = np.asarray(sp.coords["a"].values, dtype=np.float32)[:, None]
        b = np.asarray(sp.coords["b"].values, dtype=np.float32)[None, :]
        log = np.broadcast_to(np.log(a - np.float32(0.25)), (5, 2))
        inv = b / (a - np.float32(0.5))
    assert np.isnan(ds["log"].values[0]).all() and np.isneginf(ds["log"].values[1]).all()
    assert np.isposinf(ds["inv"].values[2]).all()
    np.testing.assert_allclose(ds["log"].values, log, rtol=1e-6)
    np.testing.assert_allclose(ds["inv"].values, inv, rtol=1e-6)
    assert np.isnan(ds["n"].values[:4]).all() and (ds["n"].values[4] == 1.0).all()
    assert results.done is None  # NaN outputs are values, not missing results


def test_parallel_over_selected_and_sliced_spaces():
    sp = space("product")
    ref = sequential_reference("product")
    sub = sp.isel(a=[1, 3, 4], b=slice(0, 2))  # a labeled sub-space: 3 x 2
    results = ls.ParallelExecution(model, sub, chunk_size=4, progress=False).run()
    assert results.to_xarray()["ts"].dims == ("a", "b", "ts_dim_0")
    for k, (ia, ib) in enumerate(itertools.product([1, 3, 4], [0, 1])):
        assert leaves_equal(results[k]["params"], sp[3 * ia + ib])
        assert_close_trees(results[k], ref[3 * ia + ib])
    sliced = sp[2:14:3]  # TVB-Optim semantics: a zip space over those combinations
    results = ls.ParallelExecution(model, sliced, progress=False).run()
    assert len(results) == 4
    for k, i in enumerate(range(2, 14, 3)):
        assert leaves_equal(results[k]["params"], sp[i])
        assert_close_trees(results[k], ref[i])


def test_parallel_extra_arguments_and_fixed_arrays():
    sp = space("zip")
    conn = np.arange(6.0, dtype=np.float32).reshape(2, 3)

    def with_args(state, weights, label, scale=1.0, bias=None):
        assert label == "euler"  # non-array arguments arrive as Python values
        return state["a"] * scale + jnp.sum(weights) + bias["b0"]

    results = ls.ParallelExecution(with_args, sp, conn, "euler", scale=2.0,
                                   bias={"b0": jnp.float32(0.25)}, progress=False).run()
    want = [np.float32(p["a"]) * 2.0 + 15.0 + 0.25 for p in sp]
    np.testing.assert_allclose([float(r) for r in results], want, rtol=1e-6)


# ---------------------------------------------------------------------------
# ParallelExecution: compiled function cache
# ---------------------------------------------------------------------------


def test_parallel_compiled_function_is_cached():
    calls = []

    def counted(state, offset=0.0):
        calls.append(1)
        return {"y": state["a"] * state["b"] + state["c"] + offset}

    def make(low, c=0.5):
        return ls.Space({"a": ls.GridAxis(low, low + 1.0, 5), "b": ls.GridAxis(1.0, 2.0, 3),
                         "c": c}, mode="product")

    first = make(0.0)
    r1 = ls.ParallelExecution(counted, first, progress=False).run()
    traced = len(calls)
    assert 1 <= traced <= 2  # the first run may trace once for the output shape
    r2 = ls.ParallelExecution(counted, first, progress=False).run()
    assert len(calls) == traced  # a second run does not retrace
    # a second executor over another space of the same structure does not retrace either
    other = make(10.0)
    r3 = ls.ParallelExecution(counted, other, progress=False).run()
    assert len(calls) == traced
    assert np.array_equal(r1.arrays[0], r2.arrays[0])
    for i in range(other.N):
        p = other[i]
        np.testing.assert_allclose(r3[i]["y"], p["a"] * p["b"] + 0.5, rtol=1e-6)
    # a different closed-over constant is a different program: traced again, new values
    r4 = ls.ParallelExecution(counted, make(0.0, c=2.0), offset=1.0, progress=False).run()
    assert len(calls) > traced
    for i in range(first.N):
        p = first[i]
        np.testing.assert_allclose(r4[i]["y"], p["a"] * p["b"] + 3.0, rtol=1e-6)


def test_selecting_one_point_does_not_recompile():
    # isel(a=k) fixes a as a 0-d array leaf: an argument of the compiled model, not a
    # constant, so every k runs the same program
    calls = []

    def counted(state):
        calls.append(1)
        return state["a"] * state["b"]

    sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 6), "b": ls.GridAxis(1.0, 2.0, 3)},
                  mode="product")
    for executor in (ls.ParallelExecution, ls.SequentialExecution):
        calls.clear()
        for k in range(6):
            sub = sp.isel(a=k)
            results = executor(counted, sub, progress=False).run()
            np.testing.assert_allclose(results.to_xarray()["result"].values,
                                       [float(sp[3 * k + j]["a"] * sp[3 * k + j]["b"])
                                        for j in range(3)], rtol=1e-6)
            assert results.to_xarray()["a"].item() == sp.coords["a"].values[k]
        assert len(calls) <= 2  # traced for the first k only


@pytest.mark.parametrize("executor", [ls.SequentialExecution, ls.ParallelExecution])
def test_cache_tells_weak_from_strong_types_and_takes_keys(executor):
    # a weakly typed scalar argument keeps float16 values float16; a strong float32 one
    # promotes them: two programs, never one reused for the other
    sp16 = ls.Space({"k": ls.DataAxis(np.array([0.1, 0.3, 0.7], np.float16))}, mode="product")

    def scale(state, c):
        return state["k"] * c

    weak = executor(scale, sp16, jnp.asarray(1.001), progress=False).run()
    strong = executor(scale, sp16, jnp.float32(1.001), progress=False).run()
    assert weak.arrays[0].dtype == np.float16 and strong.arrays[0].dtype == np.float32
    want = np.float16([0.1, 0.3, 0.7]).astype(np.float32) * np.float32(1.001)
    np.testing.assert_array_equal(strong.arrays[0], want)
    # typed PRNG keys are arguments like any other array
    sp = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
    noisy = executor(lambda s, key: s["k"] + jax.random.normal(key), sp, jax.random.key(0),
                     progress=False).run()
    np.testing.assert_allclose(noisy.arrays[0] - np.array([0.0, 0.5, 1.0]),
                               float(jax.random.normal(jax.random.key(0))), rtol=1e-5)


@pytest.mark.parametrize("executor", ["sequential", "parallel"])
def test_cached_programs_do_not_keep_models_or_spaces_alive(executor):
    import gc
    import weakref

    run = {"sequential": ls.SequentialExecution, "parallel": ls.ParallelExecution}[executor]
    refs = []
    for _ in range(3):
        weights = np.ones((50, 50), dtype=np.float32)
        sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "W": weights})

        def scaled(state):
            return state["a"] * state["W"][0, 0]

        assert run(scaled, sp, progress=False).run()[2] == 1.0
        refs.append((weakref.ref(scaled), weakref.ref(sp)))
        del sp, scaled, weights
    gc.collect()
    assert all(model() is None and space() is None for model, space in refs)


def test_parallel_block_is_the_hand_written_jit_vmap():
    # with one device and the whole space in one block, the compiled block is exactly
    # jit(vmap(model)) over the flat combinations: same program, bit-identical results
    # (an extra vmap over a device axis of size 1 changes XLA's layouts and the last bits)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.0, 1.0, (24, 24)).astype(np.float32) / 24
    theta0 = rng.uniform(0.0, 6.0, 24).astype(np.float32)
    noise = rng.standard_normal((200, 24)).astype(np.float32)

    def kuramoto(p):
        def step(theta, xi):
            s, c = jnp.sin(theta), jnp.cos(theta)
            theta = theta + 0.01 * (1.0 + p["K"] * (c * (w @ s) - s * (w @ c))) + p["sigma"] * xi
            return theta, jnp.abs(jnp.mean(jnp.exp(1j * theta)))

        return jnp.mean(jax.lax.scan(step, theta0, noise)[1])

    space = ls.Space({"K": ls.GridAxis(0.0, 4.0, 16), "sigma": ls.GridAxis(0.0, 0.1, 8)},
                     mode="product")
    ours = ls.ParallelExecution(kuramoto, space, progress=False).run().arrays[0]
    grid = space.to_xarray()  # the values the model receives, as float32
    k, sigma = grid["K_values"].values.ravel(), grid["sigma_values"].values.ravel()
    ceiling = jax.jit(jax.vmap(lambda a, b: kuramoto({"K": a, "sigma": b})))(k, sigma)
    assert ours.shape == (16, 8)
    assert np.array_equal(ours.ravel(), np.asarray(ceiling))


def test_parallel_cache_passes_fixed_arrays_as_arguments():
    # same structure, different fixed array values: the cached function must use the new ones
    def conn_model(state):
        return state["a"] * jnp.sum(state["conn"])

    outs = []
    for scale in (1.0, 3.0):
        sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3),
                       "conn": scale * np.ones((2, 2), dtype=np.float32)})
        outs.append(np.asarray(ls.ParallelExecution(conn_model, sp, progress=False)
                               .run().arrays[0]))
    np.testing.assert_allclose(outs[0], [0.0, 2.0, 4.0])
    np.testing.assert_allclose(outs[1], [0.0, 6.0, 12.0])


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def raising_state():
    return {"x": ls.GridAxis(0.0, 1.0, 5), "y": ls.GridAxis(1.0, 2.0, 2)}


def test_sequential_model_error_with_partial_results():
    sp = ls.Space(raising_state(), mode="product")  # x = 0, .25, .5, .75, 1; y = 1, 2

    def fails_above_half(state):
        if float(state["x"]) > 0.5:
            raise ValueError("x too large")
        return {"z": jnp.asarray(state["x"] + state["y"]), "v": jnp.ones(2) * state["y"]}

    with pytest.raises(ls.ModelError, match="combination 6") as info:
        ls.SequentialExecution(fails_above_half, sp, jit=False, progress=False).run()
    err = info.value
    assert isinstance(err.__cause__, ValueError)
    assert err.index == 6
    assert leaves_equal(err.params, sp[6])
    partial = err.partial
    assert isinstance(partial, ls.Results)
    assert partial.done.shape == sp.shape
    np.testing.assert_array_equal(partial.done.ravel(), np.arange(10) < 6)
    for i in range(6):
        np.testing.assert_allclose(partial[i]["z"], float(sp[i]["x"]) + float(sp[i]["y"]))
        np.testing.assert_allclose(partial[i]["v"], [float(sp[i]["y"])] * 2)
    assert np.isnan(partial[6]["z"]) and np.isnan(partial[9]["v"]).all()
    ds = partial.to_xarray()
    np.testing.assert_array_equal(ds["computed"].values, partial.done)


def test_sequential_model_error_at_first_combination():
    sp = ls.Space(raising_state(), mode="product")

    def always(state):
        raise RuntimeError("simulator crashed")

    with pytest.raises(ls.ModelError) as info:
        ls.SequentialExecution(always, sp, jit=False, progress=False).run()
    assert info.value.index == 0 and leaves_equal(info.value.params, sp[0])
    assert "simulator crashed" in str(info.value)


def test_sequential_jit_errors_name_the_combination():
    sp = ls.Space(raising_state(), mode="product")

    def bad_key(state):
        return state["x"] + state["missing"]

    with pytest.raises(ls.ModelError, match="missing") as info:
        ls.SequentialExecution(bad_key, sp, progress=False).run()
    assert info.value.index == 0 and leaves_equal(info.value.params, sp[0])
    assert info.value.partial is None  # nothing finished

    def python_branch(state):  # not traceable: needs jit=False
        if float(state["x"]) > 0.5:
            raise ValueError("x too large")
        return state["x"]

    for executor in (ls.SequentialExecution, ls.ParallelExecution):
        with pytest.raises(ls.ModelError, match="could not be compiled.*jit=False") as info:
            executor(python_branch, sp, progress=False).run()
        # tracing sees no values: no combination is to blame
        assert info.value.index is None and info.value.params is None


def test_sequential_output_shape_change_is_a_model_error():
    sp = ls.Space({"n": ls.DataAxis(np.array([2, 2, 3, 2]))})

    def ragged(state):
        return {"y": np.ones(int(state["n"]))}

    with pytest.raises(ls.ModelError, match=r"\b2\b") as info:
        ls.SequentialExecution(ragged, sp, jit=False, progress=False).run()
    assert info.value.index == 2
    assert leaves_equal(info.value.params, sp[2])
    assert info.value.partial.done.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(info.value.partial[1]["y"], [1.0, 1.0])


def test_parallel_trace_time_error_is_a_model_error():
    sp = ls.Space(raising_state(), mode="product")

    def bad_key(state):
        return state["x"] + state["missing"]

    with pytest.raises(ls.ModelError) as info:
        ls.ParallelExecution(bad_key, sp, progress=False).run()
    err = info.value
    assert isinstance(err.__cause__, KeyError) or "KeyError" in str(err)
    assert err.index == 0
    assert err.partial is None or not err.partial.done.any()  # nothing ran
    assert leaves_equal(err.params, sp[0])
    assert "missing" in str(err)


def test_parallel_runtime_error_keeps_partial_results():
    # a model that calls back into Python (e.g. an external simulator) and fails for x > 0.5
    sp = ls.Space(raising_state(), mode="product")

    def check(x):
        if x > 0.5:
            raise ValueError("x too large")
        return np.float32(x) * 10

    def calls_back(state):
        y = jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), state["x"],
                              vmap_method="sequential")
        return {"y": y, "params": state}

    with pytest.raises(ls.ModelError, match="combination 6") as info:
        ls.ParallelExecution(calls_back, sp, chunk_size=2, progress=False).run()
    err = info.value
    assert err.index == 6 and leaves_equal(err.params, sp[6])
    partial = err.partial
    done = partial.done.ravel()
    assert done[:6].all() and not done[6:].any()
    for i in range(6):
        np.testing.assert_allclose(partial[i]["y"], float(sp[i]["x"]) * 10, rtol=1e-6)
        assert leaves_equal(partial[i]["params"], sp[i])
    assert np.isnan(partial[7]["y"])


@pytest.mark.parametrize("borrow", [False, True], ids=["one-device", "rows-borrowed"])
def test_parallel_failure_in_a_later_block_is_named(borrow, monkeypatch):
    # a block split over 4 devices is compiled with rows borrowed from the next block
    # (2 x 3 points run as 4 x 3); a failure in those rows is named by its own index.
    # Simulated on one device: a model raising inside a callback on several devices
    # stalls XLA's collectives on CPU.
    if borrow:
        plain = _block_shape
        monkeypatch.setattr(ls.grid, "block_shape", lambda s, n, m=1: plain(s, n, 4))
        assert plain((20, 3), 6, 4) == ((2, 3), (4, 3))
    sp = ls.Space({"a": ls.GridAxis(0.0, 19.0, 20), "b": ls.GridAxis(0.0, 2.0, 3)},
                  mode="product")

    def check(a):
        if a == 2.0:
            raise ValueError("a is two")
        return np.float32(a)

    def calls_back(state):
        return jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), state["a"],
                                 vmap_method="sequential")

    for kwargs in ({"chunk_size": 6, "n_vmap": 4}, {"chunk_size": 4}):
        with pytest.raises(ls.ModelError, match="combination 6") as info:
            ls.ParallelExecution(calls_back, sp, progress=False, **kwargs).run()
        assert info.value.index == 6 and float(info.value.params["a"]) == 2.0


def test_n_vmap_does_not_inflate_blocks(caplog):
    # blocks need only split across devices: n_vmap batches a block, the last batch short
    sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 1000), "b": ls.GridAxis(0.0, 1.0, 7)},
                  mode="product")
    with caplog.at_level("INFO", logger="labeled_spaces"):
        results = ls.ParallelExecution(lambda s: s["a"] + s["b"], sp, chunk_size=64, n_vmap=64,
                                       progress=False).run()
    assert "blocks of (9, 7) (63 lanes per call)" in caplog.text
    flat = results.to_xarray()["result"].values.ravel()
    np.testing.assert_allclose(flat, [float(p["a"] + p["b"]) for p in sp], rtol=1e-6)
    with caplog.at_level("INFO", logger="labeled_spaces"):
        small = ls.ParallelExecution(lambda s: s["a"] * s["b"], sp.isel(a=slice(0, 100)),
                                     n_vmap=64, progress=False).run()
    assert "blocks of (100, 7) (700 lanes per call)" in caplog.text
    np.testing.assert_allclose(small.to_xarray()["result"].values.ravel(),
                               [float(p["a"] * p["b"]) for p in sp[:700]], rtol=1e-6)


def test_argument_errors():
    sp = space("zip")
    for executor in (ls.ParallelExecution, ls.SequentialExecution):
        with pytest.raises(TypeError, match="progress must be True or False, got 'no'"):
            executor(model, sp, progress="no")
    with pytest.raises(TypeError, match="jit must be True or False, got 0"):
        ls.SequentialExecution(model, sp, jit=0)
    with pytest.raises(ValueError, match="n_pmap"):
        ls.ParallelExecution(model, sp, n_pmap=jax.device_count() + 1)
    with pytest.raises(ValueError, match="n_vmap"):
        ls.ParallelExecution(model, sp, n_vmap=0)
    with pytest.raises(TypeError, match="n_vmap"):
        ls.ParallelExecution(model, sp, n_vmap=1.5)
    with pytest.raises(TypeError, match="n_vmap"):
        ls.ParallelExecution(model, sp, n_vmap=True)
    with pytest.raises(ValueError, match="chunk_size"):
        ls.ParallelExecution(model, sp, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        ls.ParallelExecution(model, sp, chunk_size="8")
    with pytest.raises(ValueError, match="store"):
        ls.ParallelExecution(model, sp, store="x")
    with pytest.raises(TypeError, match="model"):
        ls.ParallelExecution("not a model", sp)
    with pytest.raises(TypeError, match="model"):
        ls.SequentialExecution(42, sp)
    with pytest.raises(TypeError, match="Space"):
        ls.ParallelExecution(model, {"a": 1.0})
    with pytest.raises(TypeError, match="Space"):
        ls.SequentialExecution(model, tvb_space("zip"))


def test_output_dims_are_checked_before_running():
    calls = []

    def counted(state):
        calls.append(1)
        return {"ts": state["a"] * jnp.ones(3)}

    sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 4)}, mode="product")
    for bad, match in [({"nope": ("t",)}, "nope"), ({"ts": ("t", "u")}, "1 dimension"),
                       ({"ts": ("a",)}, "reuses")]:
        with pytest.raises(ValueError, match=match):
            ls.ParallelExecution(counted, sp, output_dims=bad, progress=False).run()
    results = ls.ParallelExecution(counted, sp, output_dims={"ts": ("time",)},
                                   progress=False).run()
    assert results.to_xarray()["ts"].dims == ("a", "time")


# ---------------------------------------------------------------------------
# the block planner
# ---------------------------------------------------------------------------


def check_block_shape(shape, lanes, multiple):
    step, compiled = _block_shape(shape, lanes, multiple)
    assert len(step) == len(compiled) == len(shape)
    assert all(1 <= s <= n for s, n in zip(step, shape, strict=True))
    assert math.prod(step) <= max(1, lanes)
    assert compiled[1:] == step[1:]
    assert compiled[0] >= step[0]
    assert math.prod(compiled) % multiple == 0
    # the first entry is rounded up no further than needed
    inner = math.prod(step[1:])
    unit = multiple // math.gcd(inner, multiple)
    assert compiled[0] - step[0] < unit
    # the blocks (origins every step, clipped at the edge) cover every point exactly once
    count = np.zeros(shape, dtype=int)
    for origin in itertools.product(*[range(0, n, s) for n, s in zip(shape, step, strict=True)]):
        region = tuple(slice(o, min(o + s, n)) for o, s, n in zip(origin, step, shape,
                                                                 strict=True))
        count[region] += 1
    assert (count == 1).all()
    return step, compiled


@pytest.mark.parametrize("shape,lanes,multiple,want_step", [
    ((15,), 15, 1, (15,)),
    ((15,), 4, 1, (4,)),
    ((15,), 7, 4, (5,)),  # balanced: 3 blocks of 5, not 7 + 7 + 1
    ((5, 3), 7, 4, (2, 3)),
    ((5, 3), 2, 3, (1, 2)),
    ((4, 4, 4), 16, 8, (1, 4, 4)),
    ((1000, 7), 100, 3, (14, 7)),
    ((2, 3, 5, 7), 1, 2, (1, 1, 1, 1)),
    ((3,), 10**6, 8, (3,)),
])
def test_block_shape_examples(shape, lanes, multiple, want_step):
    step, compiled = check_block_shape(shape, lanes, multiple)
    assert step == want_step


def test_block_shape_compiled_rounding():
    assert _block_shape((5, 3), 7, 4) == ((2, 3), (4, 3))
    assert _block_shape((15,), 7, 4) == ((5,), (8,))
    assert _block_shape((4, 4, 4), 16, 8) == ((1, 4, 4), (1, 4, 4))


@settings(max_examples=200, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple),
       lanes=st.integers(1, 400), multiple=st.integers(1, 12))
def test_block_shape_property(shape, lanes, multiple):
    check_block_shape(shape, lanes, multiple)

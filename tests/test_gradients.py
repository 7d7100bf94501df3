"""gradients(): forward-mode derivative maps with a ``wrt`` dimension, on every executor."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import labeled_spaces as ls

TIME = np.linspace(0.0, 2.0, 7)


def wave_space():
    return ls.Space({"a": ls.GridAxis(0.5, 2.0, 4), "b": ls.GridAxis(1.0, 3.0, 3),
                     "t": jnp.asarray(TIME, jnp.float32)}, mode="product")


def wave(state):
    return {"y": state["a"] * jnp.sin(state["b"] * state["t"]),
            "peak": state["a"] ** 2 * state["b"]}


WAVE_LABELS = {"output_dims": {"y": ("time",)}, "output_coords": {"time": TIME}}


def test_closed_form_derivatives_with_a_time_dimension():
    ds = ls.gradients(wave, wave_space(), progress=False, **WAVE_LABELS).to_xarray()
    assert ds["y"].dims == ("a", "b", "wrt", "time")
    assert ds["peak"].dims == ("a", "b", "wrt")
    assert ds["wrt"].values.tolist() == ["a", "b"]
    np.testing.assert_allclose(ds["time"].values, TIME)
    a = ds["a"].values[:, None, None]
    b = ds["b"].values[None, :, None]
    t = TIME[None, None, :]
    np.testing.assert_allclose(ds["y"].sel(wrt="a").values, np.sin(b * t) + 0 * a, atol=1e-6)
    np.testing.assert_allclose(ds["y"].sel(wrt="b").values, a * t * np.cos(b * t),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds["peak"].sel(wrt="a").values, (2 * a * b)[..., 0], rtol=1e-6)
    np.testing.assert_allclose(ds["peak"].sel(wrt="b").values, (a ** 2)[..., 0]
                               * np.ones((1, 3)), rtol=1e-6)
    assert set(ds.data_vars) == {"y", "peak"}  # only the derivatives


def test_wrt_picks_axes_in_the_order_given():
    ds = ls.gradients(wave, wave_space(), wrt=["b", "a"], progress=False,
                      **WAVE_LABELS).to_xarray()
    assert ds["wrt"].values.tolist() == ["b", "a"]
    one = ls.gradients(wave, wave_space(), wrt="b", progress=False, **WAVE_LABELS).to_xarray()
    assert one["y"].sizes["wrt"] == 1
    np.testing.assert_array_equal(one["y"].sel(wrt="b").values, ds["y"].sel(wrt="b").values)


def mixed_space(mode="product"):
    """A shape= axis, a zipped group, an integer DataAxis (not differentiable) and fixed data."""
    return ls.Space({
        "gain": ls.GridAxis(0.5, 1.5, 3 if mode == "product" else 2, shape=(3,)),
        "p": ls.GridAxis(0.1, 0.4, 2, group="pair"),
        "q": ls.UniformAxis(1.0, 2.0, 2, group="pair"),
        "n": ls.DataAxis([1, 2]),
        "w": np.array([0.3, -0.2, 0.7], np.float32),
    }, mode=mode, key=jax.random.key(3))


def mixed(state):
    x = jnp.tanh(state["gain"] * state["w"] * state["p"]) * state["q"] ** 2
    return {"x": x * state["n"], "s": jnp.sum(jnp.exp(x)) / state["q"]}


@jax.jit
def hand_jacobian(state):
    """jacfwd with respect to the scalar labels: gain is its label broadcast."""
    def f(gain, p, q):
        return mixed({**state, "gain": jnp.full((3,), gain), "p": p, "q": q})
    return jax.jacfwd(f, argnums=(0, 1, 2))(state["gain"][0], state["p"], state["q"])


@pytest.mark.parametrize("mode", ["product", "zip"])
def test_equals_a_hand_written_jacfwd_at_every_point(mode):
    space = mixed_space(mode)
    results = ls.gradients(mixed, space, progress=False)
    ds = results.to_xarray()
    # default: the float axes in the order of the dims (the group "pair" comes first)
    expected_wrt = ["p", "q", "gain"] if mode == "product" else ["gain", "p", "q"]
    assert ds["wrt"].values.tolist() == expected_wrt
    order = [["gain", "p", "q"].index(w) for w in expected_wrt]
    for i in range(len(space)):
        jac = hand_jacobian(space[i])
        for name in ("x", "s"):
            want = np.stack([np.asarray(jac[name][k]) for k in order])
            np.testing.assert_allclose(results[i][name], want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("options", [
    {"executor": ls.SequentialExecution},
    {"executor": ls.ParallelExecution, "n_vmap": 2},
    {"executor": ls.ParallelExecution, "chunk_size": 5},
    {"executor": ls.ParallelExecution, "n_vmap": 3, "chunk_size": 4},
])
def test_no_change_with_executor_n_vmap_or_chunking(options):
    reference = ls.gradients(mixed, mixed_space(), progress=False).to_xarray()
    other = ls.gradients(mixed, mixed_space(), progress=False, **options).to_xarray()
    for name in ("x", "s"):
        np.testing.assert_allclose(other[name].values, reference[name].values,
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("executor", [ls.SequentialExecution, ls.ParallelExecution])
def test_additive_noise_from_a_key_axis_the_model_reads_is_not_warned_about(executor):
    # the derivatives do not depend on additive noise, but the model reads its key: the
    # unread-KeyAxis warning (put it where the model reads its key) would be wrong advice
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "key": ls.KeyAxis(4)}, mode="product")

    def noisy(state):
        return {"y": 2.0 * state["a"] + jax.random.normal(state["key"])}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = ls.gradients(noisy, space, wrt=["a"], executor=executor,
                          progress=False).to_xarray()
    np.testing.assert_allclose(ds["y"].values, 2.0)
    with pytest.warns(UserWarning, match="no output of the model depends on the KeyAxis"):
        executor(lambda state: {"y": 2.0 * state["a"]}, space, progress=False).run()


def scaled(state, scale=1.0):
    return {"y": scale * state["a"] ** 3 * jnp.sin(state["b"] * state["t"])}


def test_model_arguments_and_labels_reach_through(tmp_path):
    ds = ls.gradients(scaled, wave_space(), wrt="a", scale=2.0, progress=False,
                      output_dims={"y": "time"},
                      output_attrs={"y": {"units": "mV"}}).to_xarray()
    assert ds["y"].dims == ("a", "b", "wrt", "time") and ds["y"].attrs["units"] == "mV"
    a = ds["a"].values[:, None, None]
    b = ds["b"].values[None, :, None]
    np.testing.assert_allclose(ds["y"].sel(wrt="a").values,
                               6.0 * a ** 2 * np.sin(b * TIME), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="scalee"):
        ls.gradients(scaled, wave_space(), scalee=2.0, progress=False)


def test_store_and_resume_recompute_nothing(tmp_path, caplog):
    path = tmp_path / "grad.zarr"
    first = ls.gradients(wave, wave_space(), store=path, chunk_size=4, progress=False,
                         **WAVE_LABELS).to_xarray()
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same lane program: no "another model" warning
        again = ls.gradients(wave, wave_space(), store=path, chunk_size=4, progress=False,
                             **WAVE_LABELS)
    assert re.search(r"resuming: (\d+) of \1 blocks already stored", caplog.text)
    np.testing.assert_array_equal(again.to_xarray()["y"].values, first["y"].values)
    reopened = ls.open_results(path).to_xarray()
    assert reopened["y"].dims == ("a", "b", "wrt", "time")
    assert reopened["wrt"].values.tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="wrt"):  # other derivatives: refused, kept
        ls.gradients(wave, wave_space(), wrt="a", store=path, chunk_size=4, progress=False,
                     **WAVE_LABELS)


def test_a_reopened_store_is_identical_with_its_wrt_labels(tmp_path):
    # zarr 3 reads string coordinates as StringDType: the wrt labels (and any string
    # output_coords) must come back as they were, else the recorded run identity differs
    path = tmp_path / "grad.zarr"
    results = ls.gradients(wave, wave_space(), store=path, wrt=["b", "a"], progress=False,
                           output_dims={"y": "time"}, output_coords={"time": TIME})
    reopened = ls.open_results(path).to_xarray()
    assert reopened["wrt"].dtype == np.dtype("<U1")
    xr.testing.assert_identical(reopened.compute(), results.to_xarray().compute())
    labeled = ls.ParallelExecution(
        lambda s: jnp.stack([s["a"], s["b"]]), wave_space(), store=tmp_path / "plain.zarr",
        output_dims={"result": "which"}, output_coords={"which": ["first", "second"]},
        progress=False).run()
    xr.testing.assert_identical(ls.open_results(tmp_path / "plain.zarr").to_xarray().compute(),
                                labeled.to_xarray().compute())


def test_dask_gives_the_same_derivatives():
    from distributed import Client

    from labeled_spaces.execution.cluster import local_cluster

    reference = ls.gradients(wave, wave_space(), progress=False, **WAVE_LABELS).to_xarray()
    with local_cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        ds = ls.gradients(wave, wave_space(), executor=ls.DaskExecution, client=client,
                          chunk_size=4, progress=False, **WAVE_LABELS).to_xarray()
    np.testing.assert_allclose(ds["y"].values, reference["y"].values, rtol=1e-6, atol=1e-7)


SHARDED = textwrap.dedent(
    """
    import numpy as np
    import labeled_spaces as ls
    from test_gradients import mixed, mixed_space

    one = ls.gradients(mixed, mixed_space(), progress=False).to_xarray()
    two = ls.gradients(mixed, mixed_space(), n_pmap=2, progress=False).to_xarray()
    for name in ("x", "s"):
        np.testing.assert_allclose(two[name].values, one[name].values, rtol=1e-6, atol=1e-7)
    print("ok")
    """
)


def test_sharded_over_two_devices_gives_the_same_derivatives():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__),
                                         env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize(("wrt", "error", "match"), [
    ("n", ValueError, "'n' has int"),
    ("nope", ValueError, "'nope' is not one"),
    (["p", "p"], ValueError, "distinct"),
    ([], ValueError, "at least one"),
    (3, TypeError, "wrt must be None, an axis name or a sequence"),
])
def test_wrt_errors(wrt, error, match):
    with pytest.raises(error, match=match):
        ls.gradients(mixed, mixed_space(), wrt=wrt, progress=False)


def test_axes_that_cannot_be_differentiated():
    space = ls.Space({"m": ls.DataAxis(np.arange(6.0).reshape(3, 2)), "a": ls.GridAxis(0, 1, 2)},
                     mode="product")
    with pytest.raises(ValueError, match="'m' has array values"):
        ls.gradients(lambda s: s["m"].sum() * s["a"], space, wrt="m", progress=False)
    ds = ls.gradients(lambda s: s["m"].sum() * s["a"], space, progress=False).to_xarray()
    assert ds["wrt"].values.tolist() == ["a"]  # the default skips it
    np.testing.assert_allclose(ds["result"].sel(wrt="a", a=0.0).values, [1.0, 5.0, 9.0])


def test_outputs_and_labels_that_cannot_hold_derivatives():
    def with_count(state):
        return {"y": state["a"] * 2.0, "count": jnp.int32(3)}

    with pytest.raises(ValueError, match="'count' is int32, which has no derivative"):
        ls.gradients(with_count, wave_space(), progress=False)
    with pytest.raises(ValueError, match="uses the name 'wrt'"):
        ls.gradients(wave, wave_space(), output_dims={"y": ("wrt",)}, progress=False)
    with pytest.raises(ValueError, match="output_coords names 'wrt'"):
        ls.gradients(wave, wave_space(), output_coords={"wrt": [0, 1]}, progress=False)
    named_wrt = ls.Space({"wrt": ls.GridAxis(0.0, 1.0, 2)}, mode="product")
    with pytest.raises(ValueError, match="already has a dimension or coordinate named 'wrt'"):
        ls.gradients(lambda s: s["wrt"] ** 2, named_wrt, progress=False)
    with pytest.raises(TypeError, match="space must be a labeled_spaces.Space"):
        ls.gradients(wave, {"a": 1.0})


def test_gradients_is_a_program_that_any_executor_runs_and_that_is_reused():
    from labeled_spaces.analysis.gradients import derivatives
    from labeled_spaces.execution.compiled import PROGRAMS

    want = ls.gradients(wave, wave_space(), wrt=["b", "a"], progress=False,
                        **WAVE_LABELS).to_xarray()
    compiled = len(PROGRAMS)
    again = ls.gradients(wave, wave_space(), wrt=["b", "a"], progress=False,
                         **WAVE_LABELS).to_xarray()
    assert len(PROGRAMS) == compiled  # the same Program: nothing traced or compiled again
    np.testing.assert_array_equal(again["y"].values, want["y"].values)
    # wrt=["b", "a"]: the axis values at indices 1 and 0
    direct = ls.SequentialExecution(wave, wave_space(), program=derivatives([1, 0], ["b", "a"]),
                                    progress=False, **WAVE_LABELS).run().to_xarray()
    assert direct["y"].dims == ("a", "b", "wrt", "time")
    assert direct["wrt"].values.tolist() == ["b", "a"]
    for name in ("y", "peak"):
        np.testing.assert_allclose(direct[name].values, want[name].values, rtol=1e-6,
                                   atol=1e-7)
    with pytest.raises(TypeError, match="program must be left out"):
        ls.gradients(wave, wave_space(), program=derivatives([0], ["a"]))


def test_an_output_without_derivative_is_a_value_error_also_without_jit():
    def with_count(state):
        return {"y": state["a"] * 2.0, "count": jnp.int32(3)}

    with pytest.raises(ValueError, match="'count' is int32, which has no derivative"):
        ls.gradients(with_count, wave_space(), executor=ls.SequentialExecution, jit=False,
                     progress=False)


@pytest.mark.parametrize("analysis", ["gradients", "fit"])
def test_an_executor_that_is_not_callable_is_named(analysis):
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3)})
    with pytest.raises(TypeError, match="executor must be callable, got 'parallel'"):
        getattr(ls, analysis)(lambda s: s["a"] ** 2, space, executor="parallel")


def test_axes_fixed_by_a_scalar_selection_are_named_as_such():
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.GridAxis(1.0, 2.0, 2)},
                     mode="product")
    with pytest.raises(ValueError, match=r"found no axis.*\['a', 'b'\] were fixed by isel/sel"):
        ls.gradients(lambda s: s["a"] * s["b"], space.isel(a=1, b=0), progress=False)
    with pytest.raises(ValueError, match=r"'a' is not one; \['a'\] were fixed.*isel\(a=\[i\]\)"):
        ls.gradients(lambda s: s["a"] * s["b"], space.isel(a=1), wrt="a", progress=False)
    kept = ls.gradients(lambda s: s["a"] ** 2 * s["b"], space.isel(a=[1], b=[0]),
                        progress=False).to_xarray()["result"]
    np.testing.assert_allclose(kept.sel(wrt="a").values, [[1.0]])  # 2 a b at a=0.5, b=1
    np.testing.assert_allclose(kept.sel(wrt="b").values, [[0.25]])


def test_wrt_may_be_an_array_of_names():
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.GridAxis(1.0, 2.0, 2)},
                     mode="product")
    ds = ls.gradients(lambda s: s["a"] * s["b"], space, wrt=np.array(["b", "a"]),
                      progress=False).to_xarray()
    assert ds["wrt"].values.tolist() == ["b", "a"]
    with pytest.raises(TypeError, match=r"wrt must be None, an axis name .*array\(\[1, 2\]\)"):
        ls.gradients(lambda s: s["a"] * s["b"], space, wrt=np.array([1, 2]))

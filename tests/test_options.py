"""Executor options: kept apart from the model's keywords, checked at construction."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import labeled_spaces as ls


def space():
    return ls.Space({"k": ls.GridAxis(0.0, 1.0, 4)}, mode="product")


def model(state, gain=1.0):
    return state["k"] * gain


EXECUTORS = [ls.ParallelExecution, ls.SequentialExecution]


@pytest.mark.parametrize("executor, typo, suggestion", [
    (ls.ParallelExecution, "n_vmapp", "n_vmap"),
    (ls.ParallelExecution, "chunksize", "chunk_size"),
    (ls.ParallelExecution, "output_dim", "output_dims"),
    (ls.SequentialExecution, "progres", "progress"),
    (ls.SequentialExecution, "gian", "gain"),  # the model's own keyword
    (ls.SequentialExecution, "output_dim", "output_dims"),
])
def test_a_mistyped_keyword_is_a_type_error_with_a_suggestion(executor, typo, suggestion):
    match = rf"got the keyword {typo}=4, .*did you mean {suggestion}\?"
    with pytest.raises(TypeError, match=match):
        executor(model, space(), **{typo: 4})


def test_sequential_takes_output_dims_and_the_space_by_keyword():
    results = ls.SequentialExecution(lambda s: s["k"] * jnp.ones(2), space=space(),
                                     output_dims={"result": ("pair",)}, progress=False).run()
    assert results.to_xarray()["result"].dims == ("k", "pair")
    with pytest.raises(TypeError, match="give the space once"):
        ls.SequentialExecution(model, space(), space=space())


def test_tvboptims_collect_is_accepted_and_model_keywords_reach_the_model():
    results = ls.SequentialExecution(model, space(), collect=False, gain=10.0,
                                     progress=False).run()
    np.testing.assert_allclose(results.arrays[0], [0.0, 10 / 3, 20 / 3, 10.0], rtol=1e-6)
    par = ls.ParallelExecution(model, space(), gain=2.0, progress=False).run()
    np.testing.assert_allclose(par.arrays[0], [0.0, 2 / 3, 4 / 3, 2.0], rtol=1e-6)


def test_models_that_take_any_keyword_or_hide_their_signature_are_not_checked():
    def open_model(state, **options):
        return state["k"] * options["scale"]

    results = ls.ParallelExecution(open_model, space(), scale=3.0, progress=False).run()
    np.testing.assert_allclose(results.arrays[0], [0.0, 1.0, 2.0, 3.0], rtol=1e-6)
    wrapped = functools.partial(model)  # a partial keeps the signature: still checked
    with pytest.raises(TypeError, match="n_vmapp"):
        ls.ParallelExecution(wrapped, space(), n_vmapp=2)
    jitted = jax.jit(model)
    ls.ParallelExecution(jitted, space(), gain=1.0)  # its signature is the model's


@pytest.mark.parametrize("name", ["n_vmap", "chunk_size", "max_memory"])
def test_sizes_accept_integer_scalars_as_axes_do(name):
    value = {"n_vmap": 2, "chunk_size": 2, "max_memory": 2**26}[name]
    for given in (np.int64(value), np.array(value), jnp.asarray(value)):
        executor = ls.ParallelExecution(model, space(), progress=False, **{name: given})
        assert getattr(executor, name) == value and type(getattr(executor, name)) is int
    with pytest.raises(TypeError, match=rf"{name} must be a positive integer"):
        ls.ParallelExecution(model, space(), **{name: np.array(2.0)})


def test_a_memory_budget_below_one_combination_warns():
    sp = ls.Space({"k": ls.GridAxis(0.0, 1.0, 8)}, mode="product")
    with pytest.warns(UserWarning, match=r"max_memory=100 bytes leaves 50 B per block"):
        results = ls.ParallelExecution(lambda s: s["k"] * jnp.ones(1000), sp, max_memory=100,
                                       progress=False).run()
    assert results.to_xarray()["result"].shape == (8, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ls.ParallelExecution(lambda s: s["k"], sp, max_memory=2**20, progress=False).run()


def test_a_memory_budget_written_as_a_whole_float_is_that_many_bytes():
    executor = ls.ParallelExecution(model, space(), max_memory=2e9, progress=False)
    assert executor.max_memory == 2_000_000_000 and type(executor.max_memory) is int
    with pytest.raises(TypeError, match=r"max_memory must be a positive integer or None, "
                                        r"got 2\.5"):
        ls.ParallelExecution(model, space(), max_memory=2.5)
    with pytest.raises(ValueError, match=r"max_memory must be a positive integer"):
        ls.ParallelExecution(model, space(), max_memory=0.0)


def test_an_executor_repr_shows_model_space_changed_options_and_arguments():
    """Not ``<...ParallelExecution object at 0x...>``: what the run will do, in a few lines."""
    weights = np.ones((68, 68))
    executor = ls.ParallelExecution(model, space(), n_vmap=2, store="sweep.zarr", gain=2.0)
    assert repr(executor).splitlines() == [
        "<labeled_spaces.ParallelExecution> model over 4 combinations (k: 4)",
        "Options:    n_vmap=2, store='sweep.zarr'",
        "Arguments:  gain=2.0",
    ]
    at_defaults = ls.SequentialExecution(lambda s, w: s["k"], space(), weights)
    assert repr(at_defaults).splitlines() == [
        "<labeled_spaces.SequentialExecution> <lambda> over 4 combinations (k: 4)",
        "Arguments:  <float64 array of shape (68, 68)>",
    ]
    times = np.linspace(0.0, 1.0, 1000)
    long = ls.ParallelExecution(model, space(), output_coords={"time": times}, progress=False)
    assert all(len(line) < 120 for line in repr(long).splitlines())
    assert "progress=False" in repr(long)


@pytest.mark.parametrize("executor", [*EXECUTORS, ls.DaskExecution])
def test_a_state_given_for_the_space_is_told_how_to_make_a_space(executor):
    """TVB-Optim users hold a state dict of axes; the error says what to wrap it in."""
    state = {"k": ls.GridAxis(0.0, 1.0, 4)}
    expected = (r"^(state)?space must be a labeled_spaces\.Space, got \{'k': GridAxis\(low=0\.0, "
                r"high=1\.0, n=4\)\} \(dict\); build a Space from "
                r"the state first: Space\(state\) \(zip mode\) or Space\(state, "
                r"mode=\"product\"\)$")
    with pytest.raises(TypeError, match=expected):
        executor(model, state)


@pytest.mark.parametrize("executor", [*EXECUTORS, ls.DaskExecution])
def test_an_axis_or_point_key_among_the_models_arguments_says_where_it_belongs(executor):
    """Extra arguments go to every combination as they are: an axis there is a mistake."""
    def noisy(state, key, scale=1.0):
        return state["k"] * scale + jax.random.normal(key)

    with pytest.raises(TypeError, match=r"^the model's extra argument args\[0\] is a PointKey, "
                                        r".*put axes and PointKey leaves in the Space's state"):
        executor(noisy, space(), ls.PointKey())
    with pytest.raises(TypeError, match=r"extra argument scale is a GridAxis"):
        executor(noisy, space(), jax.random.key(0), scale=ls.GridAxis(0.0, 1.0, 2))
    with pytest.raises(TypeError, match=r"extra argument args\[0\]\['trial'\] is a KeyAxis"):
        executor(noisy, space(), {"trial": ls.KeyAxis(2)})
    # the same sweep with the key in the state runs
    keyed = ls.Space({"k": ls.GridAxis(0.0, 1.0, 4), "key": ls.PointKey()}, mode="product")
    ds = ls.SequentialExecution(lambda s: noisy(s, s["key"]), keyed, progress=False).run()
    assert len(np.unique(ds.to_xarray()["result"].values)) == 4


def test_model_arguments_without_axes_are_checked_without_key_paths(monkeypatch):
    """Key paths cost 30x a flatten (1.3 s for 300 000 floats): made only to name a refusal."""
    def no_paths(*args, **kwargs):
        raise AssertionError("key paths made for arguments that hold no axis")

    swept = space()
    monkeypatch.setattr(jax.tree_util, "tree_flatten_with_path", no_paths)
    weights = {"w": [float(i) for i in range(1000)], "m": {"a": np.zeros(2)}}
    ls.ParallelExecution(lambda s, w, scale: s["k"] * scale, swept, weights, scale=2.0)

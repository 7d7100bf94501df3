"""Failures: what a run reports and keeps when the model fails, or the user presses Ctrl-C."""

from __future__ import annotations

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import labeled_spaces as ls

EXECUTORS = [ls.ParallelExecution, ls.SequentialExecution]


def space(n=10):
    return ls.Space({"x": ls.GridAxis(0.0, 1.0, n)}, mode="product")


def test_plain_python_model_gets_jax_arrays_and_a_bad_output_is_a_model_error():
    seen = []

    def model(state):
        seen.append(type(state["x"]))
        x = state["x"].at[()].set(state["x"] * 2)  # .at[] works on what TVB-Optim hands out
        return {"y": x} if float(state["x"]) < 0.5 else {"y": "not an array"}

    with pytest.raises(ls.ModelError, match=r"combination 5 .*must be arrays or numbers") as info:
        ls.SequentialExecution(model, space(), jit=False, progress=False).run()
    assert all(issubclass(t, jax.Array) for t in seen)
    err = info.value
    assert err.index == 5 and float(err.params["x"]) == pytest.approx(5 / 9)
    assert err.partial.done.tolist() == [True] * 5 + [False] * 5
    np.testing.assert_allclose(err.partial.arrays[0][:5], 2 * np.linspace(0, 1, 10)[:5],
                               rtol=1e-6)


@pytest.mark.parametrize("executor, options", [
    (ls.ParallelExecution, {}),
    (ls.SequentialExecution, {"jit": True}),
    (ls.SequentialExecution, {"jit": False}),
], ids=["parallel", "sequential", "sequential-jit=False"])
def test_string_and_key_outputs_are_refused_alike(executor, options):
    with pytest.raises(ls.ModelError, match=r"combination 0 .*outputs must be arrays or numbers, "
                                            r"got 'high'") as info:
        executor(lambda s: "high", space(), progress=False, **options).run()
    assert info.value.index == 0
    with pytest.raises(ls.ModelError, match=r"got a PRNG key; return jax.random.key_data"):
        executor(lambda s: jax.random.key(0), space(), progress=False, **options).run()


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_tracing_error_is_reported_as_itself(executor):
    # the model fails while traced; run without jit at combination 0 it fails differently:
    # the report is the tracing error, not the other one
    def model(state):
        if isinstance(state["x"], jax.core.Tracer):
            raise ValueError("shapes do not line up while tracing")
        raise RuntimeError("a different failure without jit")

    with pytest.raises(ls.ModelError, match=r"could not be compiled.*ValueError: shapes do not "
                                            r"line up while tracing") as info:
        executor(model, space(), progress=False).run()
    assert info.value.index is None and info.value.params is None


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_failure_names_the_combination_by_its_labels_not_the_whole_state(executor):
    # a connectome-sized fixed leaf buried the failing labels under ~30 lines of array repr
    def failing(x):
        if x > 0.6:
            raise ValueError("diverges")
        return x

    def model(state):
        out = jax.pure_callback(failing, jax.ShapeDtypeStruct((), jnp.float32), state["k"],
                                vmap_method="sequential")
        return out + (state["weights"].sum() + jax.random.uniform(state["trial"])) * 0.0

    state = {"k": ls.GridAxis(0.0, 1.0, 5), "trial": ls.KeyAxis(2, name="replicate"),
             "subject": ls.DataAxis(np.array([1.0, 2.0]), labels=["s1", "s2"]),
             "weights": np.full((68, 68), 0.5, dtype=np.float32)}
    sp = ls.Space(state, mode="product")
    with pytest.raises(ls.ModelError) as info:
        executor(model, sp, progress=False).run()
    err = info.value
    assert err.index == 12  # k=0.75, the first subject, the first replicate
    message = str(err).split(": ")[0]
    assert message == ("the model failed at combination 12 with parameters k=0.75, subject='s1', "
                       "subject_value=1.0, replicate=0 (err.params holds its whole state)")
    np.testing.assert_array_equal(err.params["weights"], state["weights"])  # still all there


def test_a_failure_is_reported_even_where_its_labels_cannot_be_built(monkeypatch):
    # the labels are built while the ModelError is: an error there must not replace it
    def diverging(state):
        if float(state["k"]) > 0.6:
            raise FloatingPointError("diverges")
        return state["k"]

    sp = ls.Space({"k": ls.GridAxis(0.0, 1.0, 5), "j": ls.GridAxis(0.0, 1.0, 2)},
                  mode="product")

    def broken(self, *args, **kwargs):
        raise RuntimeError("no sub-space today")

    monkeypatch.setattr(ls.Space, "isel", broken)
    with pytest.raises(ls.ModelError, match=r"^the model failed at combination 3 with parameters "
                                            r"isel\(j=0, k=3\) \(err\.params holds") as info:
        ls.SequentialExecution(diverging, sp, jit=False, progress=False).run()
    assert info.value.index == 3 and info.value.partial.done.sum() == 3


@pytest.mark.parametrize("executor", EXECUTORS)
def test_an_xarray_output_is_named_as_an_output_problem_not_as_control_flow(executor):
    # it runs in plain Python, so the eager check passed and JAX's tracing error was reported
    # with advice about Python control flow
    import xarray as xr

    def labeled(state):
        return {"trace": xr.DataArray(state["x"] * jnp.ones(3), dims="time")}

    with pytest.raises(ls.ModelError, match=r"model outputs must be arrays or numbers, got a "
                       r"DataArray \(xarray\..*DataArray\) at output \['trace'\], which a "
                       r"compiled model cannot return: return its values as arrays \(for an "
                       r"xarray object, \.data\) and name their dimensions with output_dims=$"
                       ) as info:
        executor(labeled, space(), progress=False).run()
    assert isinstance(info.value, TypeError)  # a wrong value, as every output problem


def _interrupt_after(calls, count):
    """A Python function for a callback that presses Ctrl-C on its ``count``-th call."""
    def check(x):
        calls.append(float(x))
        if len(calls) == count:
            os.kill(os.getpid(), signal.SIGINT)
        return np.float32(x) * 10
    return check


def test_ctrl_c_in_a_plain_python_model_keeps_what_finished():
    calls = []
    check = _interrupt_after(calls, 4)

    def model(state):
        return jnp.asarray(check(state["x"]))

    with pytest.raises(ls.Interrupted) as info:
        ls.SequentialExecution(model, space(), jit=False, progress=False).run()
    assert isinstance(info.value, KeyboardInterrupt)
    partial = info.value.partial
    done = partial.done.ravel()
    assert 3 <= done.sum() <= 4 and done[: done.sum()].all() and not done[done.sum():].any()
    np.testing.assert_allclose(partial.arrays[0][: done.sum()],
                               10 * np.linspace(0, 1, 10)[: done.sum()], rtol=1e-6)
    assert len(calls) == 4  # nothing ran after the interrupt, nothing ran twice


@pytest.mark.parametrize("executor", EXECUTORS)
def test_ctrl_c_in_a_callback_is_an_interrupt_not_a_model_error(executor):
    calls = []
    check = _interrupt_after(calls, 5)

    def model(state):
        return jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), state["x"],
                                 vmap_method="sequential")

    options = {"chunk_size": 2} if executor is ls.ParallelExecution else {}
    with pytest.raises(ls.Interrupted) as info:
        executor(model, space(), progress=False, **options).run()
    partial = info.value.partial
    done = partial.done.ravel() if partial is not None else np.zeros(10, bool)
    assert done[: done.sum()].all() and done.sum() <= 4
    if done.any():
        np.testing.assert_allclose(partial.arrays[0][: done.sum()],
                                   10 * np.linspace(0, 1, 10)[: done.sum()], rtol=1e-6)
    # no combination was run again to find a failure that was none
    assert len(calls) <= 6 and len(set(calls)) == len(calls)


def test_whole_space_views_refuse_up_front_with_the_size():
    huge = ls.Space({"a": ls.GridAxis(0, 1, 100_000), "b": ls.GridAxis(0, 1, 100_000),
                     "c": ls.GridAxis(0, 1, 1000)}, mode="product")
    for view in (huge.to_xarray, huge.to_dataframe, huge.collect):
        with pytest.raises(MemoryError, match=r"of 10,000,000,000,000 combinations would need "
                                              r"\d+(\.\d+)? [TP]?B.*select a sub-space first"):
            view()
    with pytest.raises(MemoryError, match=r"would need .*select"):
        huge[:: 2]
    assert len(huge[:5]) == 5


def test_a_sweep_larger_than_memory_without_a_store_suggests_one():
    sp = ls.Space({"a": ls.GridAxis(0, 1, 10**6), "b": ls.GridAxis(0, 1, 10**3)},
                  mode="product")
    for executor in EXECUTORS:
        with pytest.raises(MemoryError, match=r"would need 400 TB of memory.*store="):
            executor(lambda s: s["a"] * jnp.ones(100_000), sp, progress=False).run()
        # the preview says so before anything runs, as run() would
        with pytest.raises(MemoryError, match=r"would need 400 TB of memory.*store="):
            executor(lambda s: s["a"] * jnp.ones(100_000), sp, progress=False).explain()


def _forgot_return(state):
    state["x"] * 2  # noqa: B018 - the bug under test: no return


@pytest.mark.parametrize("executor, options", [
    (ls.ParallelExecution, {}),
    (ls.SequentialExecution, {"jit": True}),
    (ls.SequentialExecution, {"jit": False}),
], ids=["parallel", "sequential", "sequential-jit=False"])
@pytest.mark.parametrize("model, said", [
    (_forgot_return, r"returned None: does it end with a return statement"),
    (lambda s: {}, r"returned \{\} \(dict\), which holds none"),
    (lambda s: (), r"returned \(\) \(tuple\), which holds none"),
    (lambda s: {"y": None, "z": []}, r"returned \{'y': None, 'z': \[\]\} \(dict\)"),
    (lambda s: "high", r"got 'high' \(str\)"),
], ids=["none", "empty-dict", "empty-tuple", "no-leaves", "string"])
def test_a_model_returning_no_arrays_is_a_type_error_before_anything_runs(
        executor, options, model, said, tmp_path):
    calls = []

    def counted(state):
        calls.append(1)
        return model(state)

    store = tmp_path / "run.zarr"
    with pytest.raises(TypeError, match=said) as info:
        executor(counted, space(), progress=False, store=store, **options).run()
    assert isinstance(info.value, ls.ModelError) and info.value.index == 0
    assert len(calls) <= 2  # traced, and combination 0 run once to name it: no sweep ran
    assert not store.exists()  # nothing was written


@pytest.mark.parametrize("executor", EXECUTORS)
def test_an_untraceable_model_names_the_parameter_not_an_internal_variable(executor):
    state = {"coupling": ls.GridAxis(0.0, 1.0, 3),
             "noise": {"sigma": ls.GridAxis(0.0, 1.0, 3, name="sigma")},
             "weights": jnp.ones(3)}
    zipped = ls.Space(state)

    def on_coupling(s, gain, *, offset):
        return s["coupling"] if s["coupling"] > 0.5 else 0.0

    def on_sigma(s, gain, *, offset):
        return s["coupling"] if s["noise"]["sigma"] > 0.5 else 0.0

    def on_weights(s, gain, *, offset):
        return s["coupling"] if s["weights"][0] > 0.5 else 0.0

    def on_gain(s, gain, *, offset):
        return s["coupling"] if gain["g"] > 0.5 else 0.0

    def on_offset(s, gain, *, offset):
        return s["coupling"] if offset > 0.5 else 0.0

    for model, named in ((on_coupling, r"'coupling' \(the parameter\)"),
                         (on_sigma, r"'sigma' \(the parameter at 'noise\.sigma' in the state\)"),
                         (on_weights, r"'weights' \(a fixed leaf of the state\)"),
                         (on_gain, r"args\[0\] \(positional argument 1 of the model after "
                                   r"the state, at 'g'\)"),
                         (on_offset, r"offset \(a keyword argument of the model\)")):
        with pytest.raises(ls.ModelError, match=named) as info:
            executor(model, zipped, {"g": jnp.float32(1.0)}, offset=jnp.float32(0.0),
                     progress=False).run()
        message = str(info.value)
        assert "TracerBoolConversionError" in message
        assert "_values[" not in message and "state_arrays" not in message
        assert "extra_arrays" not in message and "compiled.py" not in message
        assert f"tracing the model {model.__qualname__}" in message


def _ctrl_c_on_trace(count):
    """A model that presses Ctrl-C on its ``count``-th trace-time call (a Python side effect)."""
    calls = []

    def model(state):
        calls.append(1)
        if len(calls) == count:
            raise KeyboardInterrupt
        return state["x"] * 2

    return model, calls


@pytest.mark.parametrize("executor, options, count", [
    (ls.ParallelExecution, {}, 1),  # tracing the output's structure
    (ls.ParallelExecution, {}, 2),  # tracing the block program, before it compiles
    (ls.SequentialExecution, {}, 1),
    (ls.SequentialExecution, {"jit": False}, 1),  # the first combination, run to see outputs
    (ls.DaskExecution, {}, 1),  # in the client, before any cluster starts
], ids=["parallel-trace", "parallel-compile", "sequential", "sequential-jit=False", "dask"])
def test_ctrl_c_while_tracing_or_compiling_is_interrupted_with_partial(
        executor, options, count, tmp_path):
    model, calls = _ctrl_c_on_trace(count)
    with pytest.raises(ls.Interrupted) as info:
        executor(model, space(), progress=False, **options).run()
    assert isinstance(info.value, KeyboardInterrupt) and info.value.partial is None
    assert "interrupted by the user" in str(info.value)
    assert len(calls) == count  # nothing ran after Ctrl-C
    # with a store: nothing is lost, and the next run completes
    model, _ = _ctrl_c_on_trace(count)
    store = tmp_path / "run.zarr"
    with pytest.raises(ls.Interrupted):
        executor(model, space(), progress=False, store=store, **options).run()
    again = executor(lambda s: s["x"] * 2, space(), progress=False, store=store,
                     **options).run()
    np.testing.assert_allclose(again.to_xarray()["result"].values, 2 * np.linspace(0, 1, 10),
                               rtol=1e-6)

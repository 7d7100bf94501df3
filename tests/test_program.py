"""The Program seam: a lane other than the model, with its labels, on every executor."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from distributed import Client, LocalCluster

import labeled_spaces as ls
from labeled_spaces.execution.program import MODEL


def space():
    return ls.Space({"a": ls.GridAxis(1.0, 2.0, 5), "b": ls.GridAxis(-1.0, 1.0, 3)},
                    mode="product")


def model(state, scale=1.0):
    return {"y": state["a"] * state["b"] * scale * jnp.arange(1.0, 5.0), "s": state["a"]}


def powers_lane(call, axis_values, state_arrays, extra_arrays):
    """The model's outputs and their squares, stacked along a new first dimension."""
    out = call(axis_values, state_arrays, extra_arrays)
    return jax.tree.map(lambda x: jnp.stack([x, x**2]), out)


def powers_labels(names, shapes):
    return ls.Labels(dims={n: ("power",) for n in names}, coords={"power": [1, 2]},
                     attrs={n: {"program": "powers"} for n in names})


POWERS = ls.Program(powers_lane, powers_labels)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c


def run(executor, store, client, **options):
    extra = {"client": client} if executor is ls.DaskExecution else {}
    return executor(model, space(), scale=2.0, program=POWERS, progress=False, store=store,
                    **extra, **options).run()


@pytest.mark.parametrize("executor", [ls.SequentialExecution, ls.ParallelExecution,
                                      ls.DaskExecution])
@pytest.mark.parametrize("with_store", [False, True], ids=["memory", "store"])
def test_a_program_runs_with_every_executor_and_labels_its_outputs(executor, with_store,
                                                                   client, tmp_path):
    store = tmp_path / "powers.zarr" if with_store else None
    ds = run(executor, store, client, output_dims={"y": ("time",)}).to_xarray().load()
    plain = ls.ParallelExecution(model, space(), scale=2.0, progress=False).run().to_xarray()
    assert ds["y"].dims == ("a", "b", "power", "time")
    assert ds["s"].dims == ("a", "b", "power")
    assert ds["power"].values.tolist() == [1, 2]
    assert ds["y"].attrs["program"] == "powers"
    np.testing.assert_allclose(ds["y"].sel(power=1), plain["y"], rtol=1e-6)
    np.testing.assert_allclose(ds["y"].sel(power=2), plain["y"] ** 2, rtol=1e-6)
    np.testing.assert_allclose(ds["s"].sel(power=2), plain["s"] ** 2, rtol=1e-6)
    if with_store:  # the store holds the same labels, and a rerun resumes it
        reopened = ls.open_results(store).to_xarray()
        assert reopened["y"].dims == ("a", "b", "power", "time")
        assert reopened["power"].values.tolist() == [1, 2]
        again = run(executor, store, client, output_dims={"y": ("time",)})
        assert again.complete


def test_sequential_runs_a_program_without_jit():
    ds = ls.SequentialExecution(model, space(), jit=False, program=POWERS, progress=False,
                                scale=2.0).run().to_xarray()
    want = ls.ParallelExecution(model, space(), program=POWERS, progress=False,
                                scale=2.0).run().to_xarray()
    assert ds["y"].dims == ("a", "b", "power", "y_dim_0")
    np.testing.assert_allclose(ds["y"], want["y"], rtol=1e-6)


def test_a_lane_sees_the_axis_values_and_can_differentiate_the_model():
    # d model / d a, by forward mode through the lane's own call of the model
    def slope(call, axis_values, state_arrays, extra_arrays):
        def at(a):
            return call([a, *axis_values[1:]], state_arrays, extra_arrays)["s"]

        return {"ds_da": jax.jacfwd(at)(axis_values[0]) * axis_values[1]}

    ds = ls.ParallelExecution(model, space(), program=ls.Program(slope),
                              progress=False).run().to_xarray()
    np.testing.assert_allclose(ds["ds_da"], np.broadcast_to(ds["b"].values, (5, 3)))


def test_programs_are_checked_and_the_default_is_the_model():
    with pytest.raises(TypeError, match="program must be a labeled_spaces Program"):
        ls.ParallelExecution(model, space(), program=lambda *a: None)
    assert ls.ParallelExecution(model, space()).program is MODEL
    bad = ls.Program(powers_lane, lambda names, shapes: ls.Labels(dims={"nope": ("p",)}))
    with pytest.raises(ValueError, match="labels name the output 'nope'"):
        ls.ParallelExecution(model, space(), program=bad, progress=False).run()
    clash = ls.Program(powers_lane, lambda names, shapes: ls.Labels(dims={"y": ("a",)}))
    with pytest.raises(ValueError, match="reuses the space's dimension"):
        ls.ParallelExecution(model, space(), program=clash, progress=False).run()


def test_a_program_is_part_of_the_compiled_programs_key():
    # the same model with and without a program: each gets its own compiled block
    plain = ls.ParallelExecution(model, space(), progress=False).run().to_xarray()
    squared = ls.ParallelExecution(model, space(), program=POWERS,
                                   progress=False).run().to_xarray()
    again = ls.ParallelExecution(model, space(), progress=False).run().to_xarray()
    assert "power" not in plain.dims and "power" in squared.dims
    np.testing.assert_array_equal(plain["y"], again["y"])

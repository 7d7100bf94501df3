"""fit(): multi-start optax fits in lax.scan, labeled, with best(), stores and errors."""

from __future__ import annotations

import logging
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

import labeled_spaces as ls


def start_space():
    """4 x 3 starts; x has shape (2,) (fitted whole), target is a DataAxis (a condition)."""
    return ls.Space({"x": ls.GridAxis(-1.5, 1.5, 4, shape=(2,)),
                     "y": ls.UniformAxis(0.5, 2.0, 3),
                     "target": ls.DataAxis([0.5, 1.5]),
                     "scale": np.array([1.0, 3.0], np.float32)}, mode="product",
                    key=jax.random.key(5))


def rosen(state):
    x, y = state["x"], state["y"]
    return (jnp.sum(state["scale"] * (x - state["target"]) ** 2)
            + (y - x[0] * x[1]) ** 2 + 0.1 * y ** 2)


def hand_loop(loss, starts, optimizer, steps):
    """jit(vmap(scan(optax update))) over the starts, written out by hand."""
    def one(params, fixed):
        def objective(p):
            return loss({**fixed, **p})

        def step(carry, _):
            p, opt_state = carry
            value, grads = jax.value_and_grad(objective)(p)
            updates, opt_state = optimizer.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), value

        (p, _), values = jax.lax.scan(step, (params, optimizer.init(params)), None,
                                      length=steps)
        return p, objective(p), values

    return jax.jit(jax.vmap(one))(*starts)


def starts_of(space, fitted):
    """Every start's fitted leaves and the rest, stacked in flat order."""
    points = list(space)
    params = {k: jnp.stack([p[k] for p in points]) for k in fitted}
    fixed = {k: jnp.stack([jnp.asarray(p[k]) for p in points]) for k in points[0]
             if k not in fitted}
    return params, fixed


def test_same_values_as_a_hand_written_loop():
    space = start_space()
    optimizer = optax.adam(0.05)
    results = fit(rosen, space, optimizer=optimizer, steps=120, record_every=1)
    p, value, trace = hand_loop(rosen, starts_of(space, ["x", "y"]), optimizer, 120)
    ds = results.to_xarray()
    shape = space.shape
    assert ds["x_fit"].dims == ("target", "x", "y", "x_fit_dim_0")
    np.testing.assert_allclose(ds["x_fit"].values, np.reshape(p["x"], (*shape, 2)),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ds["y_fit"].values, np.reshape(p["y"], shape), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(ds["loss"].values, np.reshape(value, shape), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(ds["loss_trace"].values, np.reshape(trace, (*shape, 120)),
                               rtol=1e-5, atol=1e-7)
    # the start values stay the coordinates; the DataAxis is a condition, not fitted
    assert "target_fit" not in ds and ds["x"].values.tolist() == [-1.5, -0.5, 0.5, 1.5]


def fit(loss, space, *args, **kwargs):
    return ls.fit(loss, space, *args, progress=False, **kwargs)


def tilted_well(state):
    x = state["x"]
    return (x ** 2 - 1.0) ** 2 + state["tilt"] * x


def test_a_grid_of_starts_finds_both_minima_and_best_is_the_global_one():
    space = ls.Space({"x": ls.GridAxis(-2.0, 2.0, 9), "tilt": 0.3}, mode="product")
    results = fit(tilted_well, space, optimizer=optax.adam(0.05), steps=600)
    roots = np.sort(np.roots([4.0, 0.0, -4.0, 0.3]).real)  # stationary points of the well
    left, right = roots[0], roots[2]
    fitted = results.to_xarray()["x_fit"]
    np.testing.assert_allclose(fitted.sel(x=[-2.0, -1.5, -1.0]).values, left, atol=1e-3)
    np.testing.assert_allclose(fitted.sel(x=[1.0, 1.5, 2.0]).values, right, atol=1e-3)
    best = results.best()
    assert best["tilt"] == 0.3 and isinstance(best["x"], jax.Array)
    np.testing.assert_allclose(float(best["x"]), left, atol=1e-3)  # the tilt lowers the left
    assert float(results.to_xarray()["loss"].min()) == pytest.approx(
        float(tilted_well({"x": left, "tilt": 0.3})), abs=1e-5)


def test_best_keeps_the_other_axes_of_its_start():
    space = start_space()
    results = fit(rosen, space, optimizer=optax.adam(0.05), steps=150, wrt="y")
    loss = results.to_xarray()["loss"].values.reshape(-1)
    i = int(np.argmin(loss))
    best = results.best()
    np.testing.assert_array_equal(best["x"], space[i]["x"])  # not fitted: the start's
    np.testing.assert_array_equal(best["target"], space[i]["target"])
    np.testing.assert_array_equal(best["scale"], space[i]["scale"])
    assert float(best["y"]) == float(results[i]["y_fit"])


def test_record_every_traces_the_loss_before_steps_0_k_2k():
    space = start_space()
    optimizer = optax.sgd(0.01)
    results = fit(rosen, space, optimizer=optimizer, steps=10, record_every=3)
    ds = results.to_xarray()
    assert ds["loss_trace"].dims == ("target", "x", "y", "step")
    assert ds["step"].values.tolist() == [0, 3, 6, 9]
    _, _, trace = hand_loop(rosen, starts_of(space, ["x", "y"]), optimizer, 10)
    np.testing.assert_allclose(ds["loss_trace"].values,
                               np.reshape(trace, (*space.shape, 10))[..., ::3], rtol=1e-6)
    np.testing.assert_allclose(ds["loss_trace"].isel(step=0).values,
                               [[[rosen(p) for p in space.isel(target=[t], x=[i])]
                                 for i in range(4)] for t in range(2)], rtol=1e-6)
    assert "loss_trace" not in fit(rosen, space, optimizer=optimizer, steps=10).to_xarray()


def test_has_aux_returns_the_aux_at_the_fitted_parameters():
    def with_aux(state):
        residual = state["x"] - state["target"]
        return jnp.sum(residual ** 2), {"residual": residual, "norm": jnp.abs(state["y"])}

    space = start_space()
    results = fit(with_aux, space, optimizer=optax.adam(0.1), steps=50, has_aux=True)
    ds = results.to_xarray()
    assert {"aux.residual", "aux.norm", "loss", "x_fit", "y_fit"} <= set(ds.data_vars)
    target = ds["target"].values[:, None, None, None]
    np.testing.assert_allclose(ds["aux.residual"].values, ds["x_fit"].values - target,
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ds["aux.norm"].values, np.abs(ds["y_fit"].values), rtol=1e-6)
    np.testing.assert_allclose(ds["loss"].values,
                               (ds["aux.residual"].values ** 2).sum(-1), rtol=1e-5, atol=1e-7)


def test_wrt_selects_the_fitted_axes():
    space = start_space()
    optimizer = optax.adam(0.05)
    ds = fit(rosen, space, optimizer=optimizer, steps=40, wrt="x").to_xarray()
    assert "x_fit" in ds and "y_fit" not in ds
    p, _, _ = hand_loop(rosen, starts_of(space, ["x"]), optimizer, 40)
    np.testing.assert_allclose(ds["x_fit"].values, np.reshape(p["x"], (*space.shape, 2)),
                               rtol=1e-6, atol=1e-6)
    both = fit(rosen, space, optimizer=optimizer, steps=40, wrt=["y", "x"]).to_xarray()
    assert {"x_fit", "y_fit"} <= set(both.data_vars)


def test_a_sub_space_fits_the_points_it_kept_of_its_axes_and_keeps_data_as_conditions():
    # a sub-space holds the points it kept as DataAxis: those of a grid, of draws or of a
    # design are still starts to fit, only a DataAxis the user gave stays a condition
    space = start_space()
    optimizer = optax.adam(0.05)
    full = fit(rosen, space, optimizer=optimizer, steps=30).to_xarray()
    assert sorted(full.data_vars) == ["loss", "x_fit", "y_fit"]
    only_x = fit(rosen, space, optimizer=optimizer, steps=30, wrt="x").to_xarray()
    for sub, picked in [(space.isel(x=[1, 3]), {"x": [1, 3]}),
                        (space.sel(y=space.coords["y"].values[1:]), {"y": [1, 2]}),
                        (space.isel(x=[0, 2]).isel(target=[1]), {"x": [0, 2], "target": [1]}),
                        (space.isel(y=2), {"y": 2})]:  # y fixed: a leaf, no longer an axis
        ds = fit(rosen, sub, optimizer=optimizer, steps=30).to_xarray()
        assert sorted(ds.data_vars) == ["loss", "x_fit"] + (["y_fit"] if "y" in sub.dims else [])
        reference = full if "y" in sub.dims else only_x
        np.testing.assert_allclose(ds["x_fit"].values, reference["x_fit"].isel(picked).values,
                                   rtol=1e-6, atol=1e-6)
        assert fit(rosen, sub, optimizer=optimizer, steps=5, wrt="x").fitted == ("x",)
        with pytest.raises(ValueError, match="'target' is a DataAxis"):
            fit(rosen, sub, optimizer=optimizer, steps=5, wrt="target")
    flat = fit(rosen, space[3:9], optimizer=optimizer, steps=30).to_xarray()
    np.testing.assert_allclose(flat["y_fit"].values, full["y_fit"].values.reshape(-1)[3:9],
                               rtol=1e-6, atol=1e-6)
    design = ls.Space({"a": ls.UniformAxis(-1.0, 1.0, 8), "b": ls.LogGridAxis(0.5, 2.0, 8)},
                      mode="sobol")

    def bowl(s):
        return (s["a"] - 0.25) ** 2 + (jnp.log(s["b"]) - 0.1) ** 2

    starts = fit(bowl, design, optimizer=optimizer, steps=20).to_xarray()
    kept = fit(bowl, design.isel(sample=[6, 1]), optimizer=optimizer, steps=20).to_xarray()
    np.testing.assert_allclose(kept["b_fit"].values, starts["b_fit"].isel(sample=[6, 1]).values,
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_sub_space_reopened_from_a_file_still_fits_the_points_it_kept(tmp_path, suffix):
    # selected_from is saved (labeled_spaces:selected_from): the rebuilt sub-space is the
    # one that was saved, so fit treats its kept grid points as starts, not as data
    space = start_space()
    sub = space.isel(x=[1, 3])
    assert sub.selected_from == {"x": "GridAxis", "y": "UniformAxis"}  # target: the data
    path = tmp_path / f"r{suffix}"
    if suffix == ".nc":
        ls.SequentialExecution(rosen, sub, progress=False).run().to_netcdf(path)
    else:
        ls.SequentialExecution(rosen, sub, store=path, progress=False).run()
    back = ls.open_results(path).space
    assert back.selected_from == sub.selected_from
    optimizer = optax.adam(0.05)
    np.testing.assert_array_equal(
        fit(rosen, back, optimizer=optimizer, steps=10).to_xarray()["x_fit"].values,
        fit(rosen, sub, optimizer=optimizer, steps=10).to_xarray()["x_fit"].values)
    attrs = dict(sub.attrs, **{"labeled_spaces:selected_from": '{"x": "os.system(1)"}'})
    with pytest.raises(ValueError, match=r"attrs entry labeled_spaces:selected_from must map "
                                         r"axis names to the class names"):
        ls.Space.from_attrs(attrs)


def scaled_loss(state, data, weight=1.0):
    return weight * jnp.sum((state["x"] - data) ** 2) + (state["y"] - 1.0) ** 2


def test_arguments_reach_the_loss_and_every_executor_agrees():
    space = start_space()
    data = np.array([0.25, -0.75], np.float32)
    optimizer = optax.adam(0.05)
    reference = fit(scaled_loss, space, data, weight=2.0, optimizer=optimizer, steps=30,
                    record_every=10).to_xarray()
    for options in ({"executor": ls.SequentialExecution}, {"n_vmap": 5},
                    {"chunk_size": 7}):
        other = fit(scaled_loss, space, data, weight=2.0, optimizer=optimizer, steps=30,
                    record_every=10, **options).to_xarray()
        for name in ("x_fit", "y_fit", "loss", "loss_trace"):
            np.testing.assert_allclose(other[name].values, reference[name].values,
                                       rtol=1e-6, atol=1e-7)
    with pytest.raises(TypeError, match="weigth"):
        fit(scaled_loss, space, data, weigth=2.0, steps=3)


def test_store_resume_recomputes_nothing_and_other_settings_are_refused(tmp_path, caplog):
    path = tmp_path / "fit.zarr"
    optimizer = optax.adam(0.05)
    first = fit(rosen, start_space(), optimizer=optimizer, steps=25, record_every=5,
                store=path, chunk_size=6)
    first_values = first.to_xarray()["x_fit"].values
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = fit(rosen, start_space(), optimizer=optimizer, steps=25, record_every=5,
                    store=path, chunk_size=6)
    assert re.search(r"resuming: (\d+) of \1 blocks already stored", caplog.text)
    assert isinstance(again, ls.FitResults)
    np.testing.assert_array_equal(again.to_xarray()["x_fit"].values, first_values)
    np.testing.assert_array_equal(again.best()["x"], first.best()["x"])
    with pytest.raises(ValueError, match="steps"):  # other settings: refused, store kept
        fit(rosen, start_space(), optimizer=optimizer, steps=30, record_every=5, store=path,
            chunk_size=6)
    np.testing.assert_array_equal(ls.open_results(path).to_xarray()["x_fit"].values,
                                  first_values)


def test_a_fit_saved_to_netcdf_opens_identical(tmp_path):
    # fit records steps and record_every as ints in the attrs of loss; netCDF gives
    # them back as np.int64, which must describe the same run
    results = fit(rosen, start_space(), optimizer=optax.adam(0.05), steps=10, record_every=5)
    results.to_netcdf(tmp_path / "fit.nc")
    xr.testing.assert_identical(ls.open_results(tmp_path / "fit.nc").to_xarray(),
                                results.to_xarray())


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"steps": 0}, ValueError, "steps must be a positive integer, got 0"),
    ({"steps": -3}, ValueError, "steps must be a positive integer"),
    ({"record_every": 0}, ValueError, "record_every must be a positive integer"),
    ({"optimizer": "adam"}, TypeError, "optimizer must be an optax GradientTransformation"),
    ({"optimizer": optax.adam}, TypeError, "optimizer must be an optax"),
    ({"wrt": "target"}, ValueError, "'target' is a DataAxis"),
    ({"wrt": "scale"}, ValueError, "'scale' is not one"),
    ({"has_aux": 1}, TypeError, "has_aux must be True or False"),
])
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(rosen, start_space(), **kwargs)


def test_a_loss_that_is_not_a_scalar_is_refused():
    with pytest.raises(ValueError, match="loss must return a floating scalar"):
        fit(lambda s: s["x"] ** 2, start_space(), steps=3)
    with pytest.raises(ValueError, match="pair"):
        fit(rosen, start_space(), steps=3, has_aux=True)
    space = ls.Space({"n": ls.DataAxis([1, 2]), "x": ls.GridAxis(0.0, 1.0, 2)}, mode="product")
    with pytest.raises(ValueError, match="'n' is a DataAxis"):
        fit(lambda s: s["x"] ** 2 * s["n"], space, wrt=["x", "n"], steps=3)
    with pytest.raises(ValueError, match="found no axis"):
        fit(lambda s: s["x"] ** 2, ls.Space({"x": ls.DataAxis([1.0, 2.0])}), steps=3)


def test_dask_gives_the_same_fits():
    from distributed import Client

    from labeled_spaces.execution.cluster import local_cluster

    optimizer = optax.adam(0.05)
    reference = fit(rosen, start_space(), optimizer=optimizer, steps=20).to_xarray()
    with local_cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        ds = fit(rosen, start_space(), optimizer=optimizer, steps=20,
                 executor=ls.DaskExecution, client=client, chunk_size=6).to_xarray()
    for name in ("x_fit", "y_fit", "loss"):
        np.testing.assert_allclose(ds[name].values, reference[name].values, rtol=1e-6,
                                   atol=1e-7)


def test_fit_is_a_program_that_any_executor_runs():
    from labeled_spaces.analysis.fit import fitting

    space = start_space()
    optimizer = optax.adam(0.05)
    want = fit(rosen, space, optimizer=optimizer, steps=30, record_every=10,
               wrt=["y", "x"]).to_xarray()
    # wrt=["y", "x"]: the axis values at the indices of y and x among the space's axes
    indices = [space.names.index("y"), space.names.index("x")]
    # params: the fitted parameters' shapes, on which the optimizer's digest is traced
    params = [jax.ShapeDtypeStruct((), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.float32)]
    program = fitting(indices, ["y", "x"], optimizer, 30, record_every=10, params=params)
    direct = ls.SequentialExecution(rosen, space, program=program,
                                    progress=False).run().to_xarray()
    assert direct["loss_trace"].dims == (*space.dims, "step")
    # the settings are inputs of the run identity (not attrs of loss), as fit records them
    from labeled_spaces.results.recorded import recorded

    settings = recorded(direct.attrs).settings
    assert settings == recorded(want.attrs).settings
    assert (settings["steps"], settings["record_every"], settings["wrt"]) == (30, 10, ["y", "x"])
    for name in ("x_fit", "y_fit", "loss", "loss_trace"):
        np.testing.assert_allclose(direct[name].values, want[name].values, rtol=1e-6,
                                   atol=1e-7)


def test_a_loss_that_is_not_a_scalar_is_a_value_error_also_without_jit():
    with pytest.raises(ValueError, match=r"loss must return a floating scalar, got float32\[2\]"):
        fit(lambda s: s["x"] ** 2, start_space(), steps=3, executor=ls.SequentialExecution,
            jit=False)
    with pytest.raises(TypeError, match="program must be left out"):
        fit(rosen, start_space(), steps=3, program=None)


def test_optimizers_that_take_extra_arguments_get_the_value_and_the_loss():
    # optax.lbfgs needs value=, grad= and value_fn=: it failed as a ModelError at combination 0
    space = ls.Space({"x": ls.GridAxis(-2.0, 2.0, 3), "c": 0.5}, mode="product")

    def loss(s):
        return (s["x"] - s["c"]) ** 2 + 0.1 * s["x"] ** 4

    ds = ls.fit(loss, space, optimizer=optax.lbfgs(), steps=20, progress=False).to_xarray()
    xs = np.linspace(-2, 2, 400001)
    best = xs[np.argmin((xs - 0.5) ** 2 + 0.1 * xs**4)]
    np.testing.assert_allclose(ds["x_fit"].values, best, atol=1e-3)
    # optax.MultiSteps is used through its gradient_transformation()
    multi = ls.fit(loss, space, optimizer=optax.MultiSteps(optax.sgd(0.1), 2), steps=40,
                   progress=False).to_xarray()
    plain = ls.fit(loss, space, optimizer=optax.sgd(0.1), steps=20, progress=False).to_xarray()
    np.testing.assert_allclose(multi["x_fit"].values, plain["x_fit"].values, rtol=1e-5)


@pytest.mark.parametrize("name, kwargs", [
    ("loss", {}), ("x_fit", {}), ("aux", {"has_aux": True}), ("step", {"record_every": 2}),
    ("loss_trace", {"record_every": 2}),
])
def test_an_axis_named_like_a_variable_of_fit_is_refused(name, kwargs):
    # an axis named 'loss' turned the loss into a variable 'result.loss'
    space = ls.Space({"x": ls.GridAxis(-1.0, 1.0, 3), name: ls.DataAxis([0.0, 1.0])},
                     mode="product")

    def loss(s):
        value = (s["x"] - s[name]) ** 2
        return (value, s["x"]) if kwargs.get("has_aux") else value

    with pytest.raises(ValueError, match=rf"space must be .*fit's variables.*got '{name}'"):
        ls.fit(loss, space, steps=4, progress=False, **kwargs)


def test_best_of_an_unfinished_fit_says_it_is_unfinished(tmp_path):
    import shutil

    space = ls.Space({"x": ls.GridAxis(-2.0, 2.0, 4), "c": 1.0}, mode="product")
    store = tmp_path / "fit.zarr"
    ls.fit(lambda s: (s["x"] ** 2 - s["c"]) ** 2, space, steps=20, store=str(store),
           progress=False)
    shutil.rmtree(store / "loss" / "c")  # every block's loss chunk lost: nothing counts done
    reopened = ls.open_results(store)
    assert not reopened.complete
    with pytest.raises(ValueError, match=r"the fit is unfinished \(0 of 4 starts computed\)"):
        reopened.best()

"""refine: adaptive sampling of a 2-D or 3-D box, one executor run per round."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import LinearNDInterpolator

import labeled_spaces as ls
from labeled_spaces import DataAxis, GridAxis, LogGridAxis, Space, UniformAxis, refine
from labeled_spaces.analysis.mesh import edge_losses, next_points

RADIUS, WIDTH = 0.5, 0.03


def circle_step(x, y):
    return np.tanh((np.sqrt(x**2 + y**2) - RADIUS) / WIDTH)


def circle_model(state):
    return jnp.tanh((jnp.sqrt(state["x"] ** 2 + state["y"] ** 2) - RADIUS) / state["width"])


def square(side, **fixed):
    return Space({"x": GridAxis(-1.0, 1.0, side), "y": GridAxis(-1.0, 1.0, side), **fixed},
                 mode="product")


def points_of(results, names=("x", "y")):
    ds = results.to_xarray()
    return np.stack([ds[name].values for name in names], axis=1)


def test_new_points_gather_along_the_boundary():
    results = refine(circle_model, square(9, width=WIDTH), n=400, batch=64)
    rounds = results.to_xarray()["round"].values
    x, y = points_of(results)[rounds > 0].T
    near = np.abs(np.hypot(x, y) - RADIUS) < 0.1
    # the band covers 16% of the square; most new points land in it
    assert near.mean() > 0.6
    assert np.all(np.abs(points_of(results)) <= 1.0)


def test_beats_a_uniform_grid_of_as_many_points():
    side = 20
    results = refine(circle_model, square(5, width=WIDTH), n=side * side, batch=50)
    ticks = np.linspace(-1.0, 1.0, 201)
    fine_x, fine_y = np.meshgrid(ticks, ticks, indexing="ij")
    truth = circle_step(fine_x, fine_y)
    grid = results.to_grid(x=201, y=201)["result"].values
    ours = np.sqrt(np.mean((grid - truth) ** 2))
    uniform = ls.ParallelExecution(circle_model, square(side, width=WIDTH),
                                   progress=False).run().to_xarray()
    ux, uy = np.meshgrid(uniform["x"].values, uniform["y"].values, indexing="ij")
    flat = LinearNDInterpolator(np.stack([ux.ravel(), uy.ravel()], 1),
                                uniform["result"].values.ravel())(fine_x, fine_y)
    theirs = np.sqrt(np.mean((flat - truth) ** 2))
    assert ours < 0.7 * theirs


def test_exactly_n_points_in_rounds_of_batch():
    results = refine(circle_model, square(5, width=WIDTH), n=100, batch=30)
    assert len(results) == 100
    assert results.to_xarray().sizes == {"point": 100}
    rounds = results.to_xarray()["round"].values
    assert np.bincount(rounds).tolist() == [25, 30, 30, 15]
    assert np.array_equal(rounds, results.rounds)
    points = points_of(results)
    assert len(np.unique(points, axis=0)) == 100
    # the first round is the space's grid, in its flat order
    grid = square(5, width=WIDTH).to_dataframe()[["x", "y"]].to_numpy()
    assert np.array_equal(points[:25], grid)
    # each value is the model's at its point
    expected = circle_step(*points.T.astype(np.float32))
    np.testing.assert_allclose(results.to_xarray()["result"].values, expected, atol=1e-5)


def test_n_equal_to_the_grid_runs_the_grid_alone():
    results = refine(circle_model, square(4, width=WIDTH), n=16)
    assert len(results) == 16 and set(results.rounds.tolist()) == {0}


def test_three_dimensions():
    space = Space({"x": GridAxis(-1.0, 1.0, 4), "y": GridAxis(-1.0, 1.0, 4),
                   "z": GridAxis(-1.0, 1.0, 4)}, mode="product")

    def sphere(s):
        return jnp.tanh((jnp.sqrt(s["x"] ** 2 + s["y"] ** 2 + s["z"] ** 2) - 0.6) / 0.05)

    results = refine(sphere, space, n=300, batch=80)
    points = points_of(results, ("x", "y", "z"))
    assert len(points) == 300 and len(np.unique(points, axis=0)) == 300
    new = points[results.rounds > 0]
    assert np.mean(np.abs(np.linalg.norm(new, axis=1) - 0.6) < 0.25) > 0.5
    grid = results.to_grid(x=5, y=6, z=7)
    assert grid["result"].dims == ("x", "y", "z") and grid["result"].shape == (5, 6, 7)
    np.testing.assert_allclose(grid["z"].values, np.linspace(-1.0, 1.0, 7))


def test_to_grid_reproduces_a_linear_output():
    space = Space({"a": GridAxis(0.0, 2.0, 3), "b": GridAxis(-1.0, 1.0, 3)}, mode="product")
    results = refine(lambda s: 2 * s["a"] - 3 * s["b"], space, n=30, batch=7)
    grid = results.to_grid(a=11)
    assert grid.sizes == {"a": 11, "b": 100}
    a, b = np.meshgrid(grid["a"].values, grid["b"].values, indexing="ij")
    np.testing.assert_allclose(grid["result"].values, 2 * a - 3 * b, atol=1e-5)


def test_to_grid_keeps_the_labels_of_axes_and_outputs():
    # units and long names label the plots of the grid as they do those of a sweep
    space = Space({"a": GridAxis(0.0, 2.0, 3, attrs={"units": "mV", "long_name": "drive"}),
                   "b": LogGridAxis(0.1, 10.0, 3, attrs={"units": "Hz"})}, mode="product")
    results = refine(lambda s: 2 * s["a"] - s["b"], space, n=12, batch=3,
                     output_attrs={"result": {"units": "1"}})
    grid = results.to_grid(a=4, b=5)
    assert grid["a"].attrs == {"units": "mV", "long_name": "drive"}
    assert grid["b"].attrs == {"units": "Hz"}
    assert grid["result"].attrs == {"units": "1"}


def test_log_axis_is_refined_on_a_log_scale():
    space = Space({"rate": LogGridAxis(1e-4, 1.0, 5), "y": GridAxis(0.0, 1.0, 5)},
                  mode="product")

    def onset(s):  # a step at rate = 10**-2.18, off the grid's decades
        return jnp.tanh((jnp.log10(s["rate"]) + 2.18) / 0.1) + 0 * s["y"]

    results = refine(onset, space, n=120, batch=40)
    rate = results.to_xarray()["rate"].values[results.rounds > 0]
    assert np.all((rate >= 1e-4) & (rate <= 1.0))
    # new points halve edges in log10(rate): their exponents are dyadic fractions
    exponent = np.log10(rate)
    np.testing.assert_allclose(exponent * 64, np.round(exponent * 64), atol=1e-6)
    # and gather within a decade of the step (half of the log range)
    assert np.mean(np.abs(exponent + 2.18) < 1) > 0.65
    grid = results.to_grid(rate=5, y=3)
    np.testing.assert_allclose(grid["rate"].values, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_uniform_axis_fixed_leaves_and_shaped_axes():
    space = Space({"x": UniformAxis(-1.0, 1.0, 6), "y": GridAxis(-1.0, 1.0, 5, shape=(2,)),
                   "width": WIDTH}, mode="product", key=jax.random.key(3))
    seen = {}

    def model(s):
        seen["y"] = s["y"].shape
        seen["width"] = s["width"]
        return circle_model({**s, "y": s["y"][0]})

    results = refine(model, space, n=70, batch=20)
    assert seen["y"] == (2,) and seen["width"] == WIDTH
    ds = results.to_xarray()
    assert ds["y"].dims == ("point",)
    x = ds["x"].values
    assert np.all((x >= -1.0) & (x <= 1.0)) and len(results) == 70
    np.testing.assert_allclose(ds["result"].values,
                               circle_step(x, ds["y"].values).astype(np.float32), atol=1e-5)


def test_several_outputs_and_non_scalar_outputs():
    def model(s):
        r = jnp.sqrt(s["x"] ** 2 + s["y"] ** 2)
        return {"edge": {"step": jnp.tanh((r - RADIUS) / WIDTH)},
                "trace": jnp.stack([r, jnp.tanh((r - RADIUS) / WIDTH)])}

    with pytest.raises(ValueError, match=r"output must be one of the model's outputs"):
        refine(model, square(5), n=40, batch=10)
    with pytest.raises(ValueError, match=r"'nope'"):
        refine(model, square(5), n=40, output="nope")
    results = refine(model, square(5), n=40, batch=10, output="edge.step",
                     output_dims={"trace": ("part",)},
                     output_coords={"part": ["radius", "step"]})
    ds = results.to_xarray()
    assert ds["trace"].dims == ("point", "part")
    grid = results.to_grid(x=4, y=4)
    assert grid["trace"].dims == ("x", "y", "part")
    assert grid["part"].values.tolist() == ["radius", "step"]
    # a non-scalar output drives the refinement by its norm
    by_norm = refine(model, square(5), n=40, batch=10, output="trace")
    assert len(by_norm) == 40


def test_bad_input():
    def model(s):
        return s["x"]

    with pytest.raises(ValueError, match=r"2 or 3 axes .*, got \"1 axis \['x'\]\""):
        refine(model, Space({"x": GridAxis(0.0, 1.0, 5)}, mode="product"), n=10)
    with pytest.raises(ValueError, match="2 or 3 axes"):
        refine(model, Space({k: GridAxis(0.0, 1.0, 2) for k in "wxyz"}, mode="product"), n=40)
    with pytest.raises(ValueError, match=r"axis 'y' of space must be an interval axis.*DataAxis"):
        refine(model, Space({"x": GridAxis(0.0, 1.0, 3), "y": DataAxis([1.0, 2.0])},
                            mode="product"), n=10)
    with pytest.raises(ValueError, match="at least 2 points"):
        refine(model, Space({"x": GridAxis(0.0, 1.0, 3), "y": GridAxis(0.0, 1.0, 1)},
                            mode="product"), n=10)
    with pytest.raises(ValueError, match="product space"):
        refine(model, Space({"x": GridAxis(0.0, 1.0, 3), "y": GridAxis(0.0, 1.0, 3)}), n=10)
    with pytest.raises(ValueError, match=r"n must be at least the 25 points .*, got 10"):
        refine(model, square(5), n=10)
    with pytest.raises(ValueError, match="batch"):
        refine(model, square(5), n=30, batch=0)
    with pytest.raises(TypeError, match="space must be a labeled_spaces.Space"):
        refine(model, {"x": GridAxis(0.0, 1.0, 3)}, n=10)
    results = refine(model, square(3), n=9)
    with pytest.raises(ValueError, match=r"sizes must be keywords naming the refined axes"):
        results.to_grid(z=4)
    with pytest.raises(ValueError, match="x must be"):
        results.to_grid(x=1)


def test_a_sub_space_is_refused_naming_the_axis_it_kept_points_of():
    def model(s):
        return s["x"] + s["y"]

    with pytest.raises(ValueError, match=r"axis 'x' of space must be an interval axis.*"
                       r"points it kept of the GridAxis 'x' as a DataAxis"):
        refine(model, square(5).isel(x=[0, 1, 2]), n=30)
    with pytest.raises(ValueError, match=r"axis 'a' .*name='a'\)$"):  # the user's DataAxis
        refine(model, Space({"a": DataAxis([1.0, 2.0]), "x": GridAxis(0.0, 1.0, 3)},
                            mode="product").isel(x=[0, 1]), n=10)


def test_store_resumes_finished_rounds(tmp_path):
    computed = []

    def model(s):
        jax.debug.callback(lambda x: computed.append(float(x)), s["x"])
        return circle_model(s)

    store = tmp_path / "refined.zarr"
    first = refine(model, square(5, width=WIDTH), n=80, batch=20, store=store)
    assert sorted(p.name for p in store.iterdir() if p.name.startswith("round_")) == [
        "round_000.zarr", "round_001.zarr", "round_002.zarr", "round_003.zarr"]
    assert len(computed) >= 80
    computed.clear()
    again = refine(model, square(5, width=WIDTH), n=80, batch=20, store=store)
    assert computed == []  # every round was read back, none computed
    xr.testing.assert_identical(again.to_xarray().drop_attrs(),
                                first.to_xarray().drop_attrs())
    # a lost round is computed again, alone, to the same values
    import shutil

    shutil.rmtree(store / "round_003.zarr")
    third = refine(model, square(5, width=WIDTH), n=80, batch=20, store=store)
    assert 15 <= len(computed) < 80  # the last round holds 80 - 25 - 2 * 20 points
    assert set(np.round(computed, 6)) <= set(np.round(points_of(first)[65:, 0], 6))
    np.testing.assert_array_equal(third.to_xarray()["result"].values,
                                  first.to_xarray()["result"].values)


def test_store_must_be_a_folder_of_rounds(tmp_path):
    plain = tmp_path / "file.txt"
    plain.write_text("x")
    with pytest.raises(ValueError, match="store must be None or the path of refine's store"):
        refine(circle_model, square(3, width=WIDTH), n=9, store=plain)


def test_edge_losses_prefer_edges_across_a_ridge():
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 9)] * 2, indexing="ij"), -1)
    points = grid.reshape(-1, 2)
    step = np.tanh((points[:, 0] - 0.53) / 0.05)
    edges, losses = edge_losses(points, step)
    x = points[edges, 0]                                  # (edges, 2) x of both ends
    worst = x[:12]
    # the worst edges cross the ridge's flanks (not along it), near x = 0.53
    assert np.all(worst[:, 0] != worst[:, 1])
    assert np.all((worst >= 0.25) & (worst <= 0.75))
    far = np.all(np.abs(x - 0.53) > 0.3, axis=1)
    assert losses[far].max() < losses[:12].min()
    assert np.all(np.diff(losses) <= 0)
    new = next_points(points, step, 300)
    assert len(np.unique(np.round(new, 12), axis=0)) == 300  # more than the edges: passes
    assert not (set(map(tuple, np.round(new, 12))) & set(map(tuple, np.round(points, 12))))


def test_a_failing_round_keeps_the_finished_ones():
    def check(x):  # the grid's x are multiples of 0.5; the second refined round fails
        if np.any(np.abs(x * 8 - np.round(x * 8)) > 1e-6):
            raise ValueError("off the eighths")
        return np.asarray(x, np.float32)

    def model(s):
        x = jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), s["x"],
                              vmap_method="sequential")
        return circle_model({**s, "x": x})

    with pytest.raises(ls.ModelError) as caught:
        refine(model, square(5, width=WIDTH), n=200, batch=20, chunk_size=5)
    partial = caught.value.partial
    assert isinstance(partial, ls.RefineResults)
    computed = partial.to_xarray()["computed"].values
    assert computed[:45].all() and not computed.all()
    assert partial.rounds.max() >= 2 and len(partial) == len(partial.rounds)


def test_any_executor_runs_the_rounds():
    parallel = refine(circle_model, square(3, width=WIDTH), n=20, batch=4)
    sequential = refine(circle_model, square(3, width=WIDTH), n=20, batch=4,
                        executor=ls.SequentialExecution)
    assert isinstance(sequential, ls.RefineResults)
    np.testing.assert_array_equal(points_of(sequential), points_of(parallel))
    np.testing.assert_allclose(sequential.to_xarray()["result"].values,
                               parallel.to_xarray()["result"].values, atol=1e-6)


def test_to_grid_interpolates_only_the_variables_asked_for():
    def model(s):
        r = jnp.sqrt(s["x"] ** 2 + s["y"] ** 2)
        return {"edge": {"step": jnp.tanh((r - RADIUS) / WIDTH)},
                "trace": jnp.stack([r, 2 * r])}

    results = refine(model, square(5), n=40, batch=10, output="edge.step",
                     output_dims={"trace": ("part",)},
                     output_coords={"part": ["radius", "twice"]})
    full = results.to_grid(x=4, y=5)
    assert sorted(full.data_vars) == ["edge.step", "trace"]
    one = results.to_grid("edge.step", x=4, y=5)
    assert list(one.data_vars) == ["edge.step"] and "part" not in one.dims
    np.testing.assert_array_equal(one["edge.step"].values, full["edge.step"].values)
    both = results.to_grid(variables=["trace", "edge.step"], x=4, y=5)
    assert list(both.data_vars) == ["trace", "edge.step"]
    assert both["part"].values.tolist() == ["radius", "twice"]
    np.testing.assert_array_equal(both["trace"].values, full["trace"].values)
    with pytest.raises(ValueError, match=r"variables must be names of the outputs "
                                         r"\['edge.step', 'trace'\].*'nope' not among them"):
        results.to_grid(variables=["trace", "nope"])
    with pytest.raises(TypeError, match="variables must be None, an output name"):
        results.to_grid(variables=3)
    # an array of names is a sequence of names, as for wrt=
    named = results.to_grid(np.array(["trace", "edge.step"]), x=4, y=5)
    assert list(named.data_vars) == ["trace", "edge.step"]
    with pytest.raises(TypeError, match="variables must be None, an output name"):
        results.to_grid(variables=np.array([1, 2]))


def test_an_output_that_is_no_name_is_refused_before_anything_runs():
    calls = []

    def model(s):
        calls.append(1)
        return s["x"]

    for output in (0, ["result"], b"result"):
        with pytest.raises(TypeError, match=r"output must be None or the key path .*, got "):
            refine(model, square(3), n=12, batch=3, output=output,
                   executor=ls.SequentialExecution, jit=False)
    assert calls == []


def test_names_refine_puts_on_the_points_are_not_taken_silently():
    # an axis named 'round' lost its values to the round coordinate; 'point' clashed obscurely
    for name in ("round", "point"):
        space = Space({name: GridAxis(-1.0, 1.0, 3), "y": GridAxis(-1.0, 1.0, 3)},
                      mode="product")
        with pytest.raises(ValueError, match=rf"space must be .* named other than .*'{name}'"):
            refine(lambda s: s["y"], space, n=12, batch=3)
        with pytest.raises(ValueError, match=rf"output_dims\['result'\] must be .*'{name}'"):
            refine(lambda s: s["x"] * jnp.ones(2), square(3), n=12, batch=3,
                   output_dims={"result": (name,)})
    # an output named 'round' keeps its values; the coordinate is left out, with a warning
    results = refine(lambda s: {"round": s["x"] * s["y"]}, square(3), n=12, batch=3)
    with pytest.warns(UserWarning, match="named 'round'"):
        ds = results.to_xarray()
    np.testing.assert_array_equal(ds["round"].values, ds["x"].values * ds["y"].values)
    assert list(results.rounds) == [0] * 9 + [1] * 3


def test_to_grid_refuses_an_empty_choice_of_variables():
    results = refine(circle_model, square(3, width=WIDTH), n=12, batch=3)
    with pytest.raises(ValueError, match=r"variables must be None or at least one .*got \[\]"):
        results.to_grid([], x=4, y=4)


def test_a_failing_round_names_the_point_in_all_the_results():
    calls = []

    def model(s):  # plain Python: fails at the 15th evaluation (point 14, round 2)
        calls.append(1)
        if len(calls) > 14:
            raise RuntimeError("boom")
        return float(s["x"]) * float(s["y"])

    with pytest.raises(ls.ModelError) as caught:
        refine(model, square(3), n=30, batch=4, executor=ls.SequentialExecution, jit=False)
    err = caught.value
    assert err.index == 14 and "point 14 of the results (round 2" in "".join(err.__notes__)
    assert not err.partial.to_xarray()["computed"].values[14]
    assert err.partial.to_xarray()["computed"].values[:14].all()


def test_dask_without_a_client_starts_one_cluster_for_every_round(monkeypatch):
    # DaskExecution(client=None) starts and closes a cluster per run: per round, before
    from distributed import LocalCluster

    import labeled_spaces.execution.cluster as cluster

    started = []

    def small_cluster(**kwargs):
        started.append(1)
        return LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                            dashboard_address=None)

    monkeypatch.setattr(cluster, "local_cluster", small_cluster)
    results = refine(circle_model, square(3, width=WIDTH), n=21, batch=4,
                     executor=ls.DaskExecution)
    assert started == [1] and sorted(set(results.rounds.tolist())) == [0, 1, 2, 3]
    base = refine(circle_model, square(3, width=WIDTH), n=21, batch=4)
    xr.testing.assert_allclose(results.to_xarray(), base.to_xarray())


def test_a_point_key_gives_every_point_of_every_round_its_own_key():
    # each round is run as its own space; its points keep their position among all the
    # rounds' points, so no two points share noise and the results' space reproduces them
    def noisy(s):
        return {"y": s["x"] * s["y"] + 0.1 * jax.random.normal(s["n"]),
                "bits": jax.random.key_data(s["n"])}

    key = jax.random.key(4)
    space = Space({"x": GridAxis(0.0, 1.0, 3), "y": GridAxis(0.0, 1.0, 3), "n": ls.PointKey()},
                  mode="product", key=key)
    results = refine(noisy, space, n=20, batch=5, output="y")
    bits = results.to_xarray()["bits"].values
    want = np.stack([jax.random.key_data(jax.random.fold_in(key, i)) for i in range(20)])
    np.testing.assert_array_equal(bits, want)
    again = ls.ParallelExecution(noisy, results.space, progress=False).run().to_xarray()
    np.testing.assert_array_equal(again["y"].values, results.to_xarray()["y"].values)


def test_ctrl_c_between_rounds_keeps_the_finished_rounds_in_partial(monkeypatch):
    import sys

    refining = sys.modules["labeled_spaces.analysis.refine"]  # the module, not the function
    calls = {"n": 0}

    def stopping(*args, **kwargs):  # Ctrl-C while round 2's points are chosen
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return next_points(*args, **kwargs)

    monkeypatch.setattr(refining, "next_points", stopping)
    with pytest.raises(ls.Interrupted, match="after round 1; the 26 points") as caught:
        refine(circle_model, square(4, width=WIDTH), n=60, batch=10)
    partial = caught.value.partial
    assert isinstance(partial, ls.RefineResults) and len(partial) == 16 + 10
    monkeypatch.undo()
    whole = refine(circle_model, square(4, width=WIDTH), n=60, batch=10)
    got, want = partial.to_xarray(), whole.to_xarray().isel(point=slice(0, 26))
    for name in ("result", "x", "y", "round"):
        np.testing.assert_array_equal(got[name].values, want[name].values)


def test_ctrl_c_in_a_round_counts_the_points_of_every_round():
    calls = {"n": 0}

    def stops(state):  # plain Python, one point at a time: Ctrl-C at round 1's 4th point
        calls["n"] += 1
        if calls["n"] == 16 + 4:
            raise KeyboardInterrupt
        return circle_step(float(state["x"]), float(state["y"]))

    with pytest.raises(ls.Interrupted) as caught:
        refine(stops, square(4), n=60, batch=10, executor=ls.SequentialExecution, jit=False)
    partial = caught.value.partial
    assert len(partial) == 26 and int(np.count_nonzero(partial.done)) == 16 + 3
    assert any("19 points computed in all" in note for note in caught.value.__notes__)

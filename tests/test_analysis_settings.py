"""Every argument of an analysis that changes its results is part of the run identity.

For each analysis (fit, gradients, refine, sensitivity) and each of its own
arguments: a run with ``store=P`` and a second run with only that argument
changed either is refused with a ``ValueError`` naming the argument, leaving
the store byte for byte as it was, or gives what a fresh run with the new
argument gives. Never the old results (the bug: a fit resumed with another
optimizer warned "traced differently" and returned the old optimizer's fits).
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

import labeled_spaces as ls
from labeled_spaces.analysis.fit import optimizer_digest
from labeled_spaces.results.recorded import recorded, recorded_lines


def snapshot(path: Path) -> dict[str, str]:
    """Every file under ``path`` and a digest of its bytes."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(path).rglob("*")) if p.is_file()}


def refused(run, path: Path, name: str) -> str:
    """``run()`` is refused naming the argument ``name``; the store is left as it was."""
    before = snapshot(path)
    with pytest.raises(ValueError) as caught:
        run()
    message = str(caught.value)
    assert re.search(rf"(^|[^\w.]){re.escape(name)}(\[\d+\])*\s*(:|=)", message), message
    assert "overwrite=True" in message
    assert snapshot(path) == before
    return message


def same_data(a: xr.Dataset, b: xr.Dataset) -> None:
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# -- fit -----------------------------------------------------------------------------------
def rosen(s):
    return (1 - s["x"]) ** 2 + 10 * (s["y"] - s["x"] ** 2) ** 2


def rosen_aux(s):
    return rosen(s), {"x2": s["x"] ** 2}


SPACE = ls.Space({"x": ls.GridAxis(-1.0, 1.0, 3), "y": ls.GridAxis(-0.5, 0.5, 2),
                  "c": ls.DataAxis([1.0, 2.0])}, mode="product")
FIT = {"optimizer": optax.adam(1e-2), "steps": 6, "record_every": None, "has_aux": False,
       "wrt": None}


def run_fit(store=None, **changed):
    settings = {**FIT, **changed}
    loss = rosen_aux if settings["has_aux"] else rosen
    return ls.fit(loss, SPACE, progress=False, store=store, **settings)


@pytest.mark.parametrize(("name", "first", "second"), [
    ("optimizer", {}, {"optimizer": optax.sgd(1e-1)}),
    ("optimizer", {}, {"optimizer": optax.adam(1e-3)}),  # only the learning rate (a closure)
    ("optimizer", {}, {"optimizer": optax.adam(optax.exponential_decay(1e-2, 3, 0.5))}),
    ("optimizer", {"optimizer": optax.lbfgs()}, {"optimizer": optax.lbfgs(memory_size=3)}),
    ("steps", {}, {"steps": 7}),
    ("record_every", {}, {"record_every": 2}),
    ("record_every", {"record_every": 2}, {}),
    ("record_every", {"record_every": 2}, {"record_every": 3}),
    ("has_aux", {}, {"has_aux": True}),
    ("wrt", {}, {"wrt": "x"}),
    ("wrt", {"wrt": ["x", "y"]}, {"wrt": ["y", "x"]}),
])
def test_a_fit_store_refuses_another_setting_by_name(tmp_path, name, first, second):
    path = tmp_path / "fit.zarr"
    run_fit(path, **first)
    message = refused(lambda: run_fit(path, **second), path, name)
    if name == "optimizer":
        assert message.count(";") == 0, message  # the optimizer alone differs


def test_the_bug_another_optimizer_no_longer_resumes_the_old_fits(tmp_path):
    path = tmp_path / "fit.zarr"
    run_fit(path, optimizer=optax.adam(1e-2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused outright, no "traced differently" warning
        with pytest.raises(ValueError, match=r"other analysis settings: optimizer: \w+ -> \w+"):
            run_fit(path, optimizer=optax.sgd(1e-1))
    # the same optimizer, made anew, is the same input: resumed, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = run_fit(path, optimizer=optax.adam(1e-2))
    same_data(again.to_xarray(), run_fit(optimizer=optax.adam(1e-2)).to_xarray())


def test_a_refused_fit_store_is_replaced_with_overwrite(tmp_path):
    path = tmp_path / "fit.zarr"
    run_fit(path)
    new = run_fit(path, optimizer=optax.sgd(1e-1), overwrite=True).to_xarray()
    same_data(new, run_fit(optimizer=optax.sgd(1e-1)).to_xarray())
    same_data(ls.open_results(path).to_xarray(), new)


def test_optimizer_digest_sees_what_the_updates_depend_on():
    params = [jax.ShapeDtypeStruct((), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.float32)]
    digests = [optimizer_digest(o, params) for o in (
        optax.adam(1e-2), optax.adam(1e-2), optax.adam(1e-3), optax.adam(jnp.asarray(1e-2)),
        optax.adam(jnp.asarray(2e-2)), optax.inject_hyperparams(optax.adam)(learning_rate=1e-2),
        optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), optax.sgd(1e-2))]
    assert digests[0] == digests[1]  # the same optimizer made twice
    assert len(set(digests[1:])) == len(digests) - 1
    assert optimizer_digest(optax.adam(1e-2), params[:1]) != digests[0]  # other parameters
    with pytest.raises(ValueError, match="optimizer must be an optax GradientTransformation "
                                         "that JAX traces on the fitted parameters"):
        optimizer_digest(optax.GradientTransformation(lambda p: 1 / 0, lambda u, s, p: 0),
                         params)


def test_fit_records_record_every_none_as_no_trace(tmp_path):
    # None round-trips as None (it was written as 0), distinct from every int
    for record_every, want in ((None, None), (2, 2)):
        path = tmp_path / f"fit{record_every}.zarr"
        results = run_fit(path, record_every=record_every)
        for ds in (results.to_xarray(), ls.open_results(path).to_xarray()):
            settings = recorded(ds.attrs).settings
            assert settings["record_every"] == want and "record_every" not in ds["loss"].attrs
        results.to_netcdf(tmp_path / f"fit{record_every}.nc")
        opened = ls.open_results(tmp_path / f"fit{record_every}.nc").to_xarray()
        assert recorded(opened.attrs).settings["record_every"] == want


def test_open_results_gives_a_fit_back_with_best(tmp_path):
    path = tmp_path / "fit.zarr"
    results = run_fit(path, steps=40, has_aux=True, wrt="y", record_every=10)
    results.to_netcdf(tmp_path / "fit.nc")
    for opened in (ls.open_results(path), ls.open_results(tmp_path / "fit.nc")):
        assert isinstance(opened, ls.FitResults) and opened.fitted == ("y",)
        xr.testing.assert_identical(opened.to_xarray(), results.to_xarray())
        best, want = opened.best(), results.best()
        assert best.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(best[key], want[key])
    assert any(line.startswith('analysis: fit (wrt=["y"], optimizer=')
               for line in recorded_lines(results.to_xarray().attrs))


def test_the_analysis_attr_is_data_a_fixed_table_reads(tmp_path):
    results = run_fit()
    results.to_netcdf(tmp_path / "fit.nc")
    with xr.open_dataset(tmp_path / "fit.nc") as ds:
        ds.load()
    kinds = ("os.system", "labeled_spaces.results.fitted.FitResults", "gradients", "")
    for k, kind in enumerate(kinds):
        edited = ds.copy()
        edited.attrs["labeled_spaces:analysis"] = kind
        edited.to_netcdf(tmp_path / f"edited{k}.nc")
        opened = ls.open_results(tmp_path / f"edited{k}.nc")
        assert type(opened) is ls.Results  # no class it names, no import: plain Results
    # a file that says "fit" but records no fitted axes is refused, naming the entry
    plain = ls.ParallelExecution(lambda s: {"loss": rosen(s)}, SPACE, progress=False).run()
    ds = plain.to_xarray()
    ds.attrs["labeled_spaces:analysis"] = "fit"
    ds.to_netcdf(tmp_path / "not_a_fit.nc")
    with pytest.raises(ValueError, match="labeled_spaces:analysis says a fit made these"):
        ls.open_results(tmp_path / "not_a_fit.nc")


# -- gradients -----------------------------------------------------------------------------
def two_outputs(s):
    return {"a": s["x"] ** 2 * s["y"], "b": s["x"] * s["c"]}


@pytest.mark.parametrize(("first", "second"), [
    ({}, {"wrt": "x"}),
    ({"wrt": ["x", "y"]}, {"wrt": ["y", "x"]}),
    ({"wrt": "x"}, {"wrt": "y"}),
])
def test_a_gradients_store_refuses_another_wrt_by_name(tmp_path, first, second):
    path = tmp_path / "grad.zarr"
    ls.gradients(two_outputs, SPACE, progress=False, store=path, **first)
    message = refused(lambda: ls.gradients(two_outputs, SPACE, progress=False, store=path,
                                           **second), path, "wrt")
    assert message.startswith(f"store={str(path)!r} was made with other analysis settings: wrt")


# -- sensitivity ---------------------------------------------------------------------------
STATE = {"x": ls.UniformAxis(0.0, 1.0, 2), "y": ls.UniformAxis(0.0, 1.0, 2)}


def linear(s):
    return {"a": s["x"] + 0.1 * s["y"] ** 2, "b": s["y"] * s["x"]}


def run_sensitivity(store=None, **changed):
    settings = {"n": 16, "output": "a", "key": None, "n_resamples": 20, "confidence": 0.9,
                **changed}
    return ls.sensitivity(linear, STATE, progress=False, store=store, **settings)


@pytest.mark.parametrize(("name", "changed"), [
    ("n", {"n": 32}), ("key", {"key": jax.random.key(3)})])
def test_a_sensitivity_store_refuses_other_points_naming_n_and_key(tmp_path, name, changed):
    path = tmp_path / "sobol.zarr"
    run_sensitivity(path)
    message = refused(lambda: run_sensitivity(path, **changed), path, name)
    assert "n, key and the axes' bounds must be those it was made with" in message


@pytest.mark.parametrize("changed", [
    {"output": "b"}, {"n_resamples": 30}, {"confidence": 0.5}])
def test_a_sensitivity_store_serves_every_output_and_bootstrap(tmp_path, changed):
    # these only read the stored sweep: computed afresh from it, equal to a run without store
    path = tmp_path / "sobol.zarr"
    run_sensitivity(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = run_sensitivity(path, **changed)
    xr.testing.assert_identical(again, run_sensitivity(**changed))


# -- refine --------------------------------------------------------------------------------
BOX = ls.Space({"x": ls.GridAxis(-1.0, 1.0, 4), "y": ls.GridAxis(-1.0, 1.0, 4)},
               mode="product")


def ring(s):
    return {"a": jnp.tanh((s["x"] ** 2 + s["y"] ** 2 - 0.5) / 0.1), "b": s["x"] * s["y"] ** 3}


def run_refine(store=None, space=BOX, **changed):
    return ls.refine(ring, space, store=store, **{"n": 40, "batch": 8, "output": "a",
                                                  **changed})


@pytest.mark.parametrize(("name", "changed"), [
    ("batch", {"batch": 5}), ("output", {"output": "b"}), ("n", {"n": 30})])
def test_a_refine_store_refuses_another_setting_by_name(tmp_path, name, changed):
    path = tmp_path / "rounds.zarr"
    run_refine(path)
    refused(lambda: run_refine(path, **changed), path, name)


def test_a_refine_store_refuses_another_box(tmp_path):
    # the first round's grid (0, 1, 2, 3) is a prefix of the other one's: without the box in
    # the identity round 0 would grow in place before round 1 was refused
    wider = ls.Space({"x": ls.GridAxis(0.0, 3.0, 4), "y": ls.GridAxis(-1.0, 1.0, 4)},
                     mode="product")
    run_refine(tmp_path / "narrow.zarr", space=wider)
    widest = ls.Space({"x": ls.GridAxis(0.0, 4.0, 5), "y": ls.GridAxis(-1.0, 1.0, 4)},
                      mode="product")
    message = refused(lambda: run_refine(tmp_path / "narrow.zarr", space=widest),
                      tmp_path / "narrow.zarr", "high")
    assert "high: [3.0, 1.0] -> [4.0, 1.0]" in message


@pytest.mark.parametrize(("first", "second"), [
    ({"n": 40}, {"n": 60}),  # more rounds: only those are computed
    ({"n": 36}, {"n": 38}),  # the last round grows
    ({"output": None, "n": 24}, {"output": "result", "n": 24}),  # the same output, named
    ({"output": "result", "n": 24}, {"output": None, "n": 24}),
])
def test_a_refine_store_resumes_what_a_fresh_run_gives(tmp_path, first, second):
    path = tmp_path / "rounds.zarr"
    if "output" in first:  # one output: None and its name are the same choice
        def one(s):
            return ring(s)["a"]
        made = ls.refine(one, BOX, store=path, batch=8, **first)
        again = ls.refine(one, BOX, store=path, batch=8, **second)
        fresh = ls.refine(one, BOX, batch=8, **second)
        assert made.to_xarray().sizes["point"] == 24
    else:
        run_refine(path, **first)
        again, fresh = run_refine(path, **second), run_refine(**second)
    same_data(again.to_xarray(), fresh.to_xarray())
    np.testing.assert_array_equal(again.rounds, fresh.rounds)


def test_program_settings_must_be_named_hashable_pairs():
    lane = ls.Program(lambda call, v, s, e: call(v, s, e)).lane
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2)})
    for settings, match in (([("a", 1)], "a tuple of"), ((("a", [1]),), "hashable values"),
                            (((1, 2),), "a tuple of")):
        with pytest.raises(TypeError, match=rf"program.settings must be {match}"):
            ls.ParallelExecution(lambda s: s["k"], space, progress=False,
                                 program=ls.Program(lane, settings=settings))


def test_partial_results_keep_how_they_were_made():
    # partial results (what a failed run finished) record the settings and arguments too
    def scaled(s, w=1.0):
        return s["x"] * w

    space = ls.Space({"x": ls.GridAxis(-1.0, 1.0, 4)}, mode="product")
    results = ls.gradients(scaled, space, w=2.0, progress=False)
    partial = ls.Results.from_outputs(results.space, results.outputs, results.arrays,
                                      np.array([True, True, False, False]))
    attrs, whole = partial.to_xarray().attrs, results.to_xarray().attrs
    assert recorded(attrs).settings == {"analysis": "gradients", "wrt": ["x"]}
    assert attrs["labeled_spaces:arguments"] == whole["labeled_spaces:arguments"]
    assert attrs["labeled_spaces:identity"] == whole["labeled_spaces:identity"]  # program too


def test_a_plain_runs_store_reused_by_an_analysis_names_each_setting(tmp_path):
    path = tmp_path / "plain.zarr"
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 4)}, mode="product")
    ls.ParallelExecution(lambda s: s["k"] ** 2, space, store=str(path), progress=False).run()
    message = refused(lambda: ls.gradients(lambda s: s["k"] ** 2, space, store=str(path),
                                           progress=False), path, "analysis")
    assert "analysis: (none) -> gradients" in message and "value:" not in message

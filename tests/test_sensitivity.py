"""sensitivity(): Sobol indices of every output element from one labeled sweep."""

import logging
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import xarray as xr

import labeled_spaces as ls
from labeled_spaces import (
    DaskExecution,
    DataAxis,
    LogGridAxis,
    NumPyroAxis,
    SequentialExecution,
    UniformAxis,
    sensitivity,
)


def ishigami(s, a=7.0, b=0.1):
    x1, x2, x3 = s["x1"], s["x2"], s["x3"]
    return jnp.sin(x1) + a * jnp.sin(x2) ** 2 + b * x3**4 * jnp.sin(x1)


ISHIGAMI = {f"x{i}": UniformAxis(-jnp.pi, jnp.pi, 2) for i in (1, 2, 3)}

T = np.linspace(0.0, 1.0, 6)
A_T, B_T = np.cos(3 * T) * T, 2 * T * np.sin(T + 0.3)


def linear(s):
    """y(t) = a(t) x + b(t) y: S1_x(t) = a^2 / (a^2 + b^2); no variance at t = 0."""
    return jnp.asarray(A_T) * s["x"] + jnp.asarray(B_T) * s["y"] + s["offset"]


LINEAR = {"x": UniformAxis(0.0, 1.0, 3), "y": UniformAxis(0.0, 1.0, 3), "offset": 5.0}
LABELS = {"output_dims": {"result": ("time",)},
          "output_coords": {"time": (T, {"units": "s"})}}


def test_ishigami_indices_match_the_analytic_values():
    indices = sensitivity(ishigami, ISHIGAMI, n=4096, progress=False)
    assert list(indices["factor"].values) == ["x1", "x2", "x3"]
    np.testing.assert_allclose(indices["S1"], [0.3139, 0.4424, 0.0], atol=0.02)
    np.testing.assert_allclose(indices["ST"], [0.5576, 0.4424, 0.2437], atol=0.02)
    assert set(indices.data_vars) == {"S1", "ST", "S1_conf", "ST_conf"}
    assert (indices["S1_conf"] > 0).all() and (indices["ST_conf"] < 0.1).all()
    assert indices.attrs["evaluations"] == 4096 * 5


def test_linear_model_has_the_analytic_first_order_index_at_every_time_point():
    indices = sensitivity(linear, LINEAR, n=2048, progress=False, **LABELS)
    assert indices["S1"].dims == ("factor", "time")
    np.testing.assert_array_equal(indices["time"].values, T)
    assert indices["time"].attrs == {"units": "s"}
    with np.errstate(invalid="ignore"):
        share = A_T**2 / (A_T**2 + B_T**2)
    expected = np.stack([share, 1 - share])
    expected[:, 0] = 0.0  # no variance at t = 0: no sensitivity (scipy's convention)
    np.testing.assert_allclose(indices["S1"], expected, atol=0.02)
    np.testing.assert_allclose(indices["ST"], expected, atol=0.02)
    assert float(indices["S1"].sel(factor="x", time=T[3])) == pytest.approx(share[3], abs=0.02)


def test_every_element_agrees_with_scipy_estimators_on_the_same_evaluations():
    # the same estimators as scipy.stats.sobol_indices, given the sweep's own f(A), f(B), f(AB)
    from scipy.stats import sobol_indices

    from labeled_spaces.analysis.sensitivity import saltelli_points
    from labeled_spaces.space.design import Factor

    n = 256
    indices = sensitivity(linear, LINEAR, n=n, progress=False, key=jax.random.key(3), **LABELS)
    u = saltelli_points([Factor("x", (0,), 1), Factor("y", (1,), 1)], n, jax.random.key(3))
    f = np.asarray(jax.vmap(linear)({"x": u[:, 0].astype(np.float32),
                                     "y": u[:, 1].astype(np.float32),
                                     "offset": jnp.full(len(u), 5.0)}), dtype=np.float64)
    pages = f.reshape(4, n, -1).transpose(0, 2, 1)  # (page, time, row)
    ref = sobol_indices(func={"f_A": pages[0], "f_B": pages[1], "f_AB": pages[2:]}, n=n)
    np.testing.assert_allclose(indices["S1"].values.T, ref.first_order, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(indices["ST"].values.T, ref.total_order, rtol=1e-4, atol=1e-5)


def test_indices_do_not_change_with_n_vmap_chunking_or_executor():
    base = sensitivity(ishigami, ISHIGAMI, n=128, progress=False)
    for options in ({"n_vmap": 7}, {"chunk_size": 100, "n_vmap": 16}):
        xr.testing.assert_allclose(sensitivity(ishigami, ISHIGAMI, n=128, progress=False,
                                               **options), base, rtol=1e-6, atol=1e-9)
    sequential = sensitivity(ishigami, ISHIGAMI, n=128, progress=False,
                             executor=SequentialExecution)
    xr.testing.assert_allclose(sequential, base, rtol=1e-6, atol=1e-9)


def test_the_same_key_gives_the_same_indices_and_confidence_sets_the_width():
    one = sensitivity(ishigami, ISHIGAMI, n=256, key=jax.random.key(5), progress=False)
    two = sensitivity(ishigami, ISHIGAMI, n=256, key=jax.random.key(5), progress=False)
    xr.testing.assert_identical(one, two)
    other = sensitivity(ishigami, ISHIGAMI, n=256, key=jax.random.key(6), progress=False)
    assert not np.array_equal(one["S1"].values, other["S1"].values)
    wide = sensitivity(ishigami, ISHIGAMI, n=256, key=jax.random.key(5), confidence=0.99,
                       progress=False)
    ratio = wide["S1_conf"].values / one["S1_conf"].values
    np.testing.assert_allclose(ratio, 2.5758 / 1.9600, rtol=1e-3)


def test_a_store_resumes_and_recomputes_nothing(tmp_path, caplog):
    path = tmp_path / "sobol.zarr"
    first = sensitivity(linear, LINEAR, n=64, progress=False, store=path, chunk_size=64,
                        **LABELS)
    caplog.clear()  # only the second call's records (another test may have left INFO on)
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        again = sensitivity(linear, LINEAR, n=64, progress=False, store=path, **LABELS)
    assert "resuming:" in caplog.text and "blocks of" not in caplog.text
    xr.testing.assert_identical(first, again)
    stored = ls.open_results(path)
    assert stored.space.sizes == {"sample": 64 * 4}


@pytest.mark.parametrize("other", [{"n": 128}, {"key": jax.random.key(1)}])
def test_a_store_of_other_points_is_refused_naming_n_and_key_and_left_alone(tmp_path, other):
    path = tmp_path / "sobol.zarr"
    sensitivity(linear, LINEAR, n=64, progress=False, store=path, **LABELS)
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"holds a sensitivity sweep of other points than this "
                       r"call's \(n=\d+\): n, key and the axes' bounds must be those it was "
                       r"made with; give a new path, or overwrite=True. In detail: .*another "
                       r"space"):
        sensitivity(linear, LINEAR, **{"n": 64, **other}, progress=False, store=path, **LABELS)
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before


def test_a_group_is_one_factor_driving_all_its_members():
    state = {"a": UniformAxis(0.0, 1.0, 2, group="g"), "b": UniformAxis(10.0, 11.0, 2, group="g"),
             "c": UniformAxis(0.0, 1.0, 2)}
    indices = sensitivity(lambda s: s["a"] + s["b"] + s["c"], state, n=1024, progress=False)
    assert list(indices["factor"].values) == ["g", "c"]
    # a and b move together: var(a + b) = 4/12, var(c) = 1/12
    np.testing.assert_allclose(indices["S1"], [0.8, 0.2], atol=0.02)


def test_factors_take_the_distribution_of_their_axis():
    state = {"n1": NumPyroAxis(dist.Normal(0.0, 1.0), 2),
             "n2": NumPyroAxis(dist.Normal(3.0, 2.0), 2),
             "k": DataAxis([0.0, 0.0, 0.0, 0.0]), "r": LogGridAxis(1.0, np.e**2, 2)}

    def model(s, scale, shift=0.0):
        return scale * (s["n1"] + s["n2"] + jnp.log(s["r"]) + s["k"]) + shift

    indices = sensitivity(model, state, 3.0, n=2048, shift=1.0, progress=False)
    # variances 1, 4, 0 (a constant category) and 4/12 (log r is uniform on [0, 2])
    total = 1 + 4 + 1 / 3
    np.testing.assert_allclose(indices["S1"].sel(factor=["n1", "n2", "k", "r"]),
                               [1 / total, 4 / total, 0.0, (1 / 3) / total], atol=0.03)


def test_output_picks_one_of_several_outputs():
    def model(s):
        return {"m": {"y": s["x"] * 2.0 + 0.1 * s["y"]}, "z": s["y"]}

    state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}
    with pytest.raises(ValueError, match=r"several outputs \['m.y', 'z'\].*output="):
        sensitivity(model, state, n=64, progress=False)
    with pytest.raises(ValueError, match=r"output must be .* \['m.y', 'z'\], got 'w'"):
        sensitivity(model, state, n=64, output="w", progress=False)
    indices = sensitivity(model, state, n=512, output="z", progress=False)
    np.testing.assert_allclose(indices["S1"], [0.0, 1.0], atol=0.02)
    assert indices.attrs["output"] == "z"


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 1000}, "n must be a power of two"),
    ({"n": 1}, "n must be a power of two"),
    ({"n": 64.0}, "n must be a power of two"),
    ({"n_resamples": 0}, "n_resamples must be an integer of at least 2"),
    ({"confidence": 1.5}, "confidence must be a number between 0 and 1"),
    ({"n_vmapp": 4}, "n_vmap"),
    ({"n": True}, "n must be a power of two"),
    ({"n": 2**31}, r"n must be a power of two of at most 2\*\*30 \(scipy's Sobol engine has "
                   r"30 bits\), got 2147483648$"),
    ({"n": np.array([8])}, "n must be a power of two"),
    ({"n_resamples": np.bool_(True)}, "n_resamples must be an integer"),
    ({"confidence": float("nan")}, "confidence must be a number between 0 and 1"),
    ({"confidence": np.array(True)}, "confidence must be a number between 0 and 1"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        sensitivity(ishigami, ISHIGAMI, progress=False, **kwargs)


def test_numpy_and_jax_scalars_count_as_the_numbers_they_hold():
    # as for refine, fit and the executors' options: 0-d arrays are their number
    state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}
    want = sensitivity(model := (lambda s: s["x"] + 0.1 * s["y"]), state, n=16,
                       n_resamples=10, confidence=0.9, progress=False)
    got = sensitivity(model, state, n=np.array(16), n_resamples=jnp.array(10),
                      confidence=np.array(0.9), progress=False)
    xr.testing.assert_identical(got, want)
    assert type(got.attrs["n"]) is int and type(got.attrs["confidence"]) is float


def test_a_state_without_axes_is_refused():
    with pytest.raises(ValueError, match="state must contain at least one axis"):
        sensitivity(lambda s: s["x"], {"x": 1.0})


def test_an_axis_that_is_no_factor_is_refused_naming_it_not_the_design_mode():
    # the Sobol design's own message told the user to "use mode='zip'", which sensitivity
    # has no argument for; a KeyAxis has no distribution, a PointKey is what works there
    state = {"x": UniformAxis(0.0, 1.0, 2), "k": ls.KeyAxis(3)}
    with pytest.raises(ValueError, match=r"state must be axes with a distribution .* at 'k': "
                                         r"a KeyAxis .* PointKey\(\)") as caught:
        sensitivity(lambda s: s["x"], state, n=8, progress=False)
    assert "mode=" not in str(caught.value)
    keyed = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2), "k": ls.PointKey()}
    noisy = sensitivity(lambda s: s["x"] + 0.01 * jax.random.normal(s["k"]), keyed, n=256,
                        progress=False)
    assert noisy["S1"].sel(factor="x") > 0.9


def test_dask_execution_runs_the_same_sweep():
    from distributed import Client, LocalCluster

    base = sensitivity(ishigami, ISHIGAMI, n=64, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dask = sensitivity(ishigami, ISHIGAMI, n=64, progress=False, executor=DaskExecution,
                           client=client)
    xr.testing.assert_allclose(dask, base, rtol=1e-6, atol=1e-9)


def test_outputs_are_chosen_and_checked_before_anything_runs():
    calls = []

    def model(s):
        jax.debug.callback(lambda: calls.append(1))
        return {"a": s["x"], "b": s["y"]}

    state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}
    with pytest.raises(ValueError, match=r"several outputs \['a', 'b'\]"):
        sensitivity(model, state, n=64, progress=False)
    with pytest.raises(ValueError, match=r"output must be .* \['a', 'b'\], got 'c'"):
        sensitivity(model, state, n=64, output="c", progress=False)
    with pytest.raises(TypeError, match="output must be None or the key path"):
        sensitivity(model, state, n=64, output=0, progress=False)
    with pytest.raises(ValueError, match="'result' is complex64: Sobol indices need real"):
        sensitivity(lambda s: s["x"] + 1j * s["y"], state, n=64, progress=False)
    assert calls == []  # refused while tracing: not one evaluation
    with pytest.raises(TypeError, match="executor must be callable, got 'x'"):
        sensitivity(model, state, n=64, output="a", executor="x")


def test_non_finite_outputs_give_nan_indices_never_a_made_up_zero():
    state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}

    def model(s):  # element 0 is NaN where x > 0.9; element 1 is fine; element 2 constant
        return jnp.stack([jnp.where(s["x"] > 0.9, jnp.nan, s["x"]), s["y"], 0.0 * s["x"]])

    with pytest.warns(RuntimeWarning, match=r"'result' is not finite .* at \d+ of 256"):
        indices = sensitivity(model, state, n=64, progress=False)
    for name in ("S1", "ST", "S1_conf", "ST_conf"):
        assert np.isnan(indices[name].values[:, 0]).all()
        assert np.isfinite(indices[name].values[:, 1:]).all()
    np.testing.assert_allclose(indices["S1"].values[:, 1], [0.0, 1.0], atol=0.1)
    np.testing.assert_array_equal(indices["S1"].values[:, 2], [0.0, 0.0])


def test_infinite_outputs_give_one_warning_of_ours_and_nan_indices():
    state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}

    def model(s):  # element 0 is +inf where x <= 0.5 (inf - inf inside the estimators)
        return jnp.stack([1.0 / (s["x"] > 0.5), s["y"]])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        indices = sensitivity(model, state, n=64, progress=False)
    assert [str(w.message)[:30] for w in caught] == ["the output 'result' is not fin"]
    assert np.isnan(indices["S1"].values[:, 0]).all()
    np.testing.assert_allclose(indices["S1"].values[:, 1], [0.0, 1.0], atol=0.1)


@pytest.mark.parametrize("empty", [None, {}, []])
def test_a_model_without_outputs_is_named_as_such(empty):
    state = {"x": UniformAxis(0.0, 1.0, 2)}
    with pytest.raises(ValueError, match="the model returns no outputs"):
        sensitivity(lambda s: empty, state, n=4, progress=False)


def test_names_the_indices_use_are_kept_apart_from_the_model_s():
    state = {"sample": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}
    # an axis named like the sweep's dimension: the sweep takes another name
    indices = sensitivity(lambda s: s["sample"] + 0.1 * s["y"], state, n=256, progress=False)
    assert list(indices["factor"].values) == ["sample", "y"]
    assert indices["S1"].values[0] > 0.9
    # an output dimension named like one of the Dataset's names would mislabel it: refused
    for dim in ("factor", "S1"):
        with pytest.raises(ValueError, match=rf"output_dims\['result'\] must be .*'{dim}'"):
            sensitivity(lambda s: s["y"] * jnp.ones(2), state, n=64, progress=False,
                        output_dims={"result": (dim,)})
    with pytest.raises(ValueError, match="KeyAxis holds replicate keys.*PointKey"):
        sensitivity(lambda s: s["y"], {"k": ls.KeyAxis(2), "y": UniformAxis(0.0, 1.0, 2)},
                    n=64, progress=False)


def test_a_space_gives_its_state():
    state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}
    direct = sensitivity(lambda s: s["x"] + 0.1 * s["y"], state, n=64, progress=False)
    from_space = sensitivity(lambda s: s["x"] + 0.1 * s["y"], ls.Space(state, mode="product"),
                             n=64, progress=False)
    xr.testing.assert_identical(direct, from_space)


def test_a_distribution_without_icdf_is_named_without_the_designs_hint():
    state = {"p": NumPyroAxis(dist.Poisson(3.0), 3), "x": UniformAxis(0.0, 1.0, 2)}
    with pytest.raises(ValueError, match=r"sensitivity draws every factor .*Poisson.* has none"
                                         r"; give that factor as") as caught:
        sensitivity(lambda s: s["p"] * 1.0 + s["x"], state, n=8, progress=False)
    assert "use mode=" not in str(caught.value)  # sensitivity has no mode to switch to

"""The tvb-data connectome loader and the delayed Kuramoto model of the demo."""

from __future__ import annotations

import bz2
import importlib.resources
import io
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tvb_data  # noqa: F401 - the connectomes: a declared dependency, not an optional one

from labeled_spaces import GridAxis, ParallelExecution, Space
from labeled_spaces.examples.connectome import (
    Connectome,
    available_connectomes,
    load_connectome,
)
from labeled_spaces.examples.delayed_kuramoto import (
    delayed_kuramoto,
    functional_connectivity,
    make_demo_state,
    record_times,
)
from labeled_spaces.examples.demo import demo_sweep
from labeled_spaces.examples.kuramoto import kuramoto, make_connectome, make_frequencies

TEN_HZ = 2 * np.pi / 100.0  # rad/ms: one cycle per 100 ms


@pytest.fixture(scope="module")
def dk68() -> Connectome:
    return load_connectome("connectivity_68")


def _raw_member(stem: str) -> np.ndarray:
    """A matrix of connectivity_68.zip, read here independently of the loader."""
    path = importlib.resources.files("tvb_data") / "connectivity" / "connectivity_68.zip"
    with path.open("rb") as handle, zipfile.ZipFile(handle) as archive:
        text = bz2.decompress(archive.read(f"{stem}.txt.bz2")).decode()
    return np.loadtxt(io.StringIO(text))


def _small_state(n: int = 12, delay: int = 3, coupling: float = 0.1,
                 noise: float = 0.05) -> dict:
    return {
        "coupling": coupling,
        "noise": noise,
        "weights": make_connectome(n, seed=2),
        "omega": make_frequencies(n, seed=2, mean=TEN_HZ, std=0.1 * TEN_HZ),
        "delays": np.full((n, n), delay, dtype=np.int32),
    }


# ---------------------------------------------------------------------------
# loader
# ---------------------------------------------------------------------------


def test_connectivity_68_regions_and_labels(dk68: Connectome) -> None:
    assert dk68.name == "connectivity_68" and dk68.n_regions == 68
    assert dk68.labels.shape == (68,) and dk68.labels.dtype.kind == "U"
    assert dk68.labels[0] == "r_lateralorbitofrontal" and dk68.labels[-1] == "l_insula"
    assert len(set(dk68.labels)) == 68
    # right hemisphere first, then the same 34 regions on the left
    assert dk68.hemispheres.tolist() == ["right"] * 34 + ["left"] * 34
    assert [x[2:] for x in dk68.labels[:34]] == [x[2:] for x in dk68.labels[34:]]
    assert dk68.centres.shape == (68, 3) and np.isfinite(dk68.centres).all()


def test_connectivity_68_weights_symmetric_and_normalised(dk68: Connectome) -> None:
    w = dk68.weights
    assert w.shape == (68, 68) and w.dtype == np.float32
    np.testing.assert_array_equal(w, w.T)
    assert (w >= 0).all() and (np.diag(w) == 0).all()
    assert w.sum(axis=1).mean() == pytest.approx(1.0, rel=1e-5)
    assert 0.25 < (w > 0).mean() < 0.26  # 1176 of the 4624 entries are tracts


def test_connectivity_68_matches_the_raw_files(dk68: Connectome) -> None:
    raw = _raw_member("weights")
    assert np.diag(raw).min() > 0  # the file has self-connections; the loader drops them
    np.fill_diagonal(raw, 0.0)
    assert dk68.weight_scale == pytest.approx(1.0 / raw.sum(axis=1).mean(), rel=1e-9)
    np.testing.assert_allclose(dk68.weights, raw * dk68.weight_scale, rtol=1e-6, atol=1e-9)
    lengths = _raw_member("tract_lengths")
    np.fill_diagonal(lengths, 0.0)
    np.testing.assert_allclose(dk68.tract_lengths, lengths, rtol=1e-6)


def test_connectivity_68_tract_lengths(dk68: Connectome) -> None:
    lengths, tracts = dk68.tract_lengths, dk68.weights > 0
    assert lengths.dtype == np.float32
    np.testing.assert_array_equal(lengths, lengths.T)
    np.testing.assert_array_equal(lengths > 0, tracts)  # a length exactly where a tract is
    assert lengths[tracts].min() == pytest.approx(8.0425, abs=1e-3)  # mm
    assert lengths[tracts].max() == pytest.approx(252.903, abs=1e-3)


def test_connectome_arrays_are_read_only(dk68: Connectome) -> None:
    with pytest.raises(ValueError, match="read-only"):
        dk68.weights[0, 1] = 1.0
    with pytest.raises(AttributeError):
        dk68.weights = np.zeros((68, 68))  # type: ignore[misc]


def test_every_shipped_connectome_loads() -> None:
    names = available_connectomes()
    assert "connectivity_68" in names and "connectivity_76" in names
    for name in names:
        c = load_connectome(name)
        n = c.n_regions
        assert c.weights.shape == c.tract_lengths.shape == (n, n) and c.centres.shape == (n, 3)
        assert (np.diag(c.weights) == 0).all()
        assert c.weights.sum(axis=1).mean() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("name", ["dk68", "connectivity_68.zip", "../connectivity_68", 68])
def test_unknown_name_is_a_value_error_listing_the_names(name) -> None:
    expected = r"name must be one of \[.*'connectivity_68'.*\], got "
    with pytest.raises(ValueError, match=expected) as info:
        load_connectome(name)
    assert repr(name) in str(info.value)


def test_missing_tvb_data_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tvb_data", None)  # `import tvb_data` now fails
    with pytest.raises(ImportError, match=r'pip install "labeled_spaces\[examples\]"'):
        load_connectome()
    with pytest.raises(ImportError, match="tvb-data"):
        available_connectomes()


def test_connectome_checks_shapes() -> None:
    with pytest.raises(ValueError, match=r"tract_lengths must have shape \(2, 2\)"):
        Connectome("x", np.zeros((2, 2)), np.zeros((3, 3)), np.array(["a", "b"]),
                   np.zeros((2, 3)))


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


def test_outputs_shapes_ranges_and_fc() -> None:
    out = delayed_kuramoto(_small_state(), n_steps=400, dt=1.0, n_record=40)
    assert set(out) == {"order", "R_t", "fc"}
    assert out["order"].shape == () and out["R_t"].shape == (40,) and out["fc"].shape == (12, 12)
    for value in out.values():
        assert value.dtype == jnp.float32 and bool(jnp.isfinite(value).all())
    assert 0.0 <= float(out["order"]) <= 1.0
    assert float(out["R_t"].min()) >= 0.0 and float(out["R_t"].max()) <= 1.0 + 1e-6
    fc = np.asarray(out["fc"])
    np.testing.assert_array_equal(fc, fc.T)
    np.testing.assert_array_equal(np.diag(fc), np.ones(12))
    assert np.abs(fc).max() <= 1.0
    # fc is the correlation of sin(theta): at this coupling the regions co-fluctuate
    assert fc[np.triu_indices(12, 1)].mean() > 0.5


def test_zero_delays_reproduce_the_undelayed_model() -> None:
    state = _small_state(delay=0, coupling=0.2)
    undelayed = {k: v for k, v in state.items() if k != "delays"}
    kwargs = {"n_steps": 300, "dt": 0.5, "n_record": 30, "transient": 0.2}
    reference = kuramoto(undelayed, **kwargs)
    for got in (delayed_kuramoto(state, **kwargs),
                delayed_kuramoto(state, max_delay=7, **kwargs),  # a longer buffer changes nothing
                delayed_kuramoto(undelayed, **kwargs)):
        np.testing.assert_allclose(got["R_t"], reference["R_t"], atol=2e-5)
        assert float(got["order"]) == pytest.approx(float(reference["order"]), abs=2e-5)


@pytest.mark.parametrize(("delay", "fc01", "order"), [
    (0, 1.0, 1.0),     # no delay: in phase
    (50, -1.0, 0.0),   # half a period: in phase is unstable, the pair locks in anti-phase
    (100, 1.0, 1.0),   # a whole period: in phase again
])
def test_delay_sets_the_locked_phase_of_two_oscillators(delay, fc01, order) -> None:
    state = {"coupling": 0.02, "noise": 0.0, "weights": np.array([[0, 1], [1, 0]], np.float32),
             "omega": np.full(2, TEN_HZ, np.float32),
             "delays": np.array([[0, delay], [delay, 0]])}
    out = delayed_kuramoto(state, n_steps=2000, dt=1.0, n_record=200, transient=0.5,
                           max_delay=100)
    assert float(out["fc"][0, 1]) == pytest.approx(fc01, abs=1e-3)
    assert float(out["order"]) == pytest.approx(order, abs=1e-3)


def test_order_rises_with_coupling_on_the_connectome(dk68: Connectome) -> None:
    state = make_demo_state(dk68, noise=0.05, dt=1.0)
    fixed = {k: v for k, v in state.items() if k != "coupling"}
    run = jax.jit(jax.vmap(
        lambda k, fx: delayed_kuramoto({**fx, "coupling": k}, n_steps=1000, dt=1.0,
                                       n_record=100, max_delay=51),
        in_axes=(0, None)))
    order = np.asarray(run(jnp.array([0.0, 0.05, 0.1, 0.2, 0.5]), fixed)["order"])
    assert (np.diff(order) > 0).all()
    assert order[0] < 0.25 and order[-1] > 0.8


def test_traced_delays_under_jit_vmap_match_eager_calls() -> None:
    state = _small_state(delay=0)
    state["delays"] = np.arange(144, dtype=np.int32).reshape(12, 12) % 6
    kwargs = {"n_steps": 200, "dt": 1.0, "n_record": 20}
    noise = jnp.array([0.0, 0.1, 0.3])
    run = jax.jit(jax.vmap(
        lambda s, st: delayed_kuramoto({**st, "noise": s}, max_delay=5, **kwargs),
        in_axes=(0, None)))
    batched = run(noise, state)
    for k, s in enumerate(noise.tolist()):
        eager = delayed_kuramoto({**state, "noise": s}, **kwargs)
        np.testing.assert_allclose(batched["R_t"][k], eager["R_t"], atol=1e-5)
        np.testing.assert_allclose(batched["fc"][k], eager["fc"], atol=1e-4)
    # deterministic: the fixed key gives the same noise at every call
    again = delayed_kuramoto({**state, "noise": 0.3}, **kwargs)
    np.testing.assert_array_equal(again["R_t"], eager["R_t"])


def test_delay_checks() -> None:
    state = _small_state(delay=4)
    with pytest.raises(ValueError, match="max_delay=3 is shorter than the longest delay, 4"):
        delayed_kuramoto(state, n_steps=20, n_record=2, max_delay=3)
    with pytest.raises(ValueError, match="integer time steps"):
        delayed_kuramoto({**state, "delays": state["delays"] * 0.5}, n_steps=20, n_record=2)
    with pytest.raises(ValueError, match="delays must be >= 0"):
        delayed_kuramoto({**state, "delays": -state["delays"]}, n_steps=20, n_record=2)
    with pytest.raises(ValueError, match="max_delay must be given"):
        jax.jit(lambda st: delayed_kuramoto(st, n_steps=20, n_record=2))(state)
    with pytest.raises(ValueError, match="n_steps must be a positive multiple of n_record"):
        delayed_kuramoto(state, n_steps=25, n_record=2)
    # traced delays beyond the buffer cannot raise: every output is NaN instead
    out = jax.jit(lambda st: delayed_kuramoto(st, n_steps=20, n_record=2, max_delay=3))(state)
    assert all(bool(jnp.isnan(v).all()) for v in out.values())


def test_runs_in_the_executor_with_traced_delays() -> None:
    state = _small_state(delay=2)
    state["coupling"] = GridAxis(0.0, 0.2, 3)
    state["noise"] = GridAxis(0.0, 0.1, 2)
    kwargs = {"n_steps": 200, "dt": 1.0, "n_record": 20}
    results = ParallelExecution(delayed_kuramoto, Space(state, mode="product"), progress=False,
                                output_dims={"R_t": ("time",), "fc": ("region", "region_to")},
                                max_delay=2, **kwargs).run()
    ds = results.to_xarray()
    assert dict(ds["fc"].sizes) == {"coupling": 3, "noise": 2, "region": 12, "region_to": 12}
    eager = delayed_kuramoto({**state, "coupling": 0.2, "noise": 0.1}, **kwargs)
    np.testing.assert_allclose(ds["R_t"].sel(coupling=0.2, noise=0.1), eager["R_t"], atol=1e-5)
    assert np.isfinite(ds["order"]).all()


# ---------------------------------------------------------------------------
# demo state, times and sweep settings
# ---------------------------------------------------------------------------


def test_make_demo_state_on_the_connectome(dk68: Connectome) -> None:
    state = make_demo_state(dk68, speed=5.0, dt=0.5)
    assert sorted(state) == ["coupling", "delays", "noise", "omega", "weights"]
    delays = state["delays"]
    assert delays.dtype == np.int32 and delays.shape == (68, 68)
    np.testing.assert_array_equal(delays, np.rint(dk68.tract_lengths / 2.5))
    assert int(delays.max()) == 101  # 252.9 mm at 5 mm/ms is 50.6 ms
    assert state["omega"].shape == (68,)
    assert state["omega"].mean() == pytest.approx(TEN_HZ, rel=0.05)
    assert "delays" not in make_demo_state(dk68, speed=None)
    with pytest.raises(ValueError, match="speed must be > 0"):
        make_demo_state(dk68, speed=0.0)


def test_record_times_and_demo_sweep() -> None:
    np.testing.assert_allclose(record_times(6000, 0.5, 300), np.arange(1, 301) * 10.0)
    sweep = demo_sweep()
    assert (sweep.size, sweep.duration) == (561, 3000.0)
    assert sweep.times().shape == (sweep.n_record,) and sweep.times()[-1] == sweep.duration
    small = demo_sweep(small=True)
    assert small.size < sweep.size and small.duration <= sweep.duration
    kwargs = sweep.model_kwargs({"delays": np.array([[0, 7], [7, 0]])})
    assert kwargs == {"n_steps": 6000, "dt": 0.5, "n_record": 300, "transient": 0.25,
                      "max_delay": 7}


def test_functional_connectivity_is_the_pearson_correlation() -> None:
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    np.testing.assert_allclose(functional_connectivity(jnp.asarray(x)), np.corrcoef(x.T),
                               atol=1e-5)

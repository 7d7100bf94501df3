"""The example model (labeled_spaces.examples) and the main job (examples/sweep.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from labeled_spaces import GridAxis, KeyAxis, ParallelExecution, Space
from labeled_spaces.examples import (
    kuramoto,
    make_connectome,
    make_frequencies,
    make_state,
    order_parameter,
)

ROOT = Path(__file__).resolve().parent.parent
STEPS = 500  # short runs: the synchronisation transition is already clear


# ---------------------------------------------------------------------------
# connectome and frequencies
# ---------------------------------------------------------------------------


def test_connectome_is_symmetric_nonnegative_and_normalised() -> None:
    w = make_connectome()
    assert w.shape == (68, 68) and w.dtype == np.float32
    np.testing.assert_array_equal(w, w.T)
    assert (w >= 0).all() and (np.diag(w) == 0).all()
    assert w.sum(axis=1).mean() == pytest.approx(1.0, rel=1e-5)
    assert 0.3 < (w > 0).mean() < 0.5  # density 0.4 off the diagonal


def test_connectome_is_deterministic_per_seed() -> None:
    np.testing.assert_array_equal(make_connectome(20, seed=3), make_connectome(20, seed=3))
    assert not np.array_equal(make_connectome(20, seed=3), make_connectome(20, seed=4))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_nodes": 1}, "n_nodes"),
    ({"density": 0.0}, "density"),
    ({"density": 1.5}, "density"),
])
def test_connectome_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_connectome(**kwargs)


def test_frequencies_and_state() -> None:
    omega = make_frequencies(1000, seed=0, mean=2.0, std=0.5)
    assert omega.dtype == np.float32
    assert omega.mean() == pytest.approx(2.0, abs=0.05)
    assert omega.std() == pytest.approx(0.5, abs=0.05)
    np.testing.assert_array_equal(make_frequencies(5, seed=1), make_frequencies(5, seed=1))
    state = make_state(n_nodes=8, coupling=2.0)
    assert sorted(state) == ["coupling", "noise", "omega", "weights"]
    assert state["coupling"] == 2.0 and state["weights"].shape == (8, 8)


def test_order_parameter() -> None:
    assert float(order_parameter(jnp.full(7, 1.3))) == pytest.approx(1.0)
    splay = jnp.linspace(0.0, 2 * jnp.pi, 8, endpoint=False)
    assert float(order_parameter(splay)) == pytest.approx(0.0, abs=1e-6)
    assert order_parameter(jnp.zeros((3, 5))).shape == (3,)


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------


def test_kuramoto_sweep() -> None:
    """One small coupling x noise sweep (one compilation), checked for physics and determinism."""
    state = make_state(n_nodes=32, coupling=GridAxis(0.0, 8.0, 5), noise=GridAxis(0.0, 1.0, 2))
    space = Space(state, mode="product")
    results = ParallelExecution(kuramoto, space, n_steps=STEPS, progress=False).run()
    sweep = results.to_xarray()
    assert sweep["R_t"].shape == (5, 2, 100) and sweep["order"].shape == (5, 2)
    for name in ("order", "R_t"):
        values = sweep[name].values
        assert np.isfinite(values).all()
        assert (values >= 0).all() and (values <= 1 + 1e-6).all()

    order = sweep["order"]
    for noise in order["noise"].values:
        assert float(order.sel(coupling=8.0, noise=noise)) > 0.8
        assert float(order.sel(coupling=0.0, noise=noise)) < 0.35
    # R grows with the coupling in the noiseless network
    assert (order.sel(noise=0.0).diff("coupling") > -0.02).all()
    # noise desynchronises at moderate coupling
    assert float(order.sel(coupling=4.0, noise=1.0)) < float(order.sel(coupling=4.0, noise=0.0))

    # fixed keys: running again gives the same bits (and reuses the compiled model)
    again = ParallelExecution(kuramoto, space, n_steps=STEPS, progress=False).run()
    np.testing.assert_array_equal(again.to_xarray()["R_t"].values, sweep["R_t"].values)


def test_model_options_and_seed() -> None:
    state = make_state(n_nodes=8, noise=0.5)
    run = jax.jit(lambda s, seed: kuramoto(s, n_steps=100, n_record=10, seed=seed))
    out = run(state, 0)
    assert out["R_t"].shape == (10,) and out["order"].shape == ()
    np.testing.assert_array_equal(run(state, 0)["R_t"], out["R_t"])
    assert not np.array_equal(run(state, 1)["R_t"], out["R_t"])
    # the order parameter averages R over the steps after the transient
    assert 0.0 <= float(out["order"]) <= 1.0
    with pytest.raises(ValueError, match="multiple of n_record"):
        kuramoto(state, n_steps=150, n_record=100)
    with pytest.raises(ValueError, match="transient"):
        kuramoto(state, n_steps=100, n_record=10, transient=1.0)


def test_a_key_in_the_state_replaces_the_seed() -> None:
    state = make_state(n_nodes=8, noise=0.5)
    seeded = kuramoto(state, n_steps=100, n_record=10, seed=3)
    keyed = kuramoto(dict(state, key=jax.random.key(3)), n_steps=100, n_record=10)
    np.testing.assert_array_equal(keyed["R_t"], seeded["R_t"])
    raw = kuramoto(dict(state, key=jax.random.PRNGKey(3)), n_steps=100, n_record=10)
    np.testing.assert_array_equal(raw["R_t"], seeded["R_t"])
    # a KeyAxis gives noise replicates, shared by every coupling (common random numbers)
    state = make_state(n_nodes=8, noise=0.5, coupling=GridAxis(0.0, 2.0, 3))
    state["key"] = KeyAxis(4)
    space = Space(state, mode="product", key=jax.random.key(1))
    r_t = ParallelExecution(kuramoto, space, n_steps=100, n_record=10,
                            progress=False).run().to_xarray()["R_t"]
    assert dict(r_t.sizes) == {"coupling": 3, "key": 4, "R_t_dim_0": 10}
    first = r_t.isel(key=0)
    assert all(not np.array_equal(first, r_t.isel(key=k)) for k in range(1, 4))
    np.testing.assert_array_equal(  # replicate 2 at coupling 1 is its key's realisation alone
        r_t.isel(coupling=1, key=2),
        kuramoto(dict(space[1 * 4 + 2]), n_steps=100, n_record=10)["R_t"])


# ---------------------------------------------------------------------------
# the main job
# ---------------------------------------------------------------------------


def test_sweep_script(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sweep.py"), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dims: {'coupling': 16, 'noise': 8}" in proc.stdout
    assert "results.sel(coupling=3.2, noise=0.0)" in proc.stdout
    assert "ran 128 simulations" in proc.stderr  # progress goes to logging, not stdout

    path = out / "sweep_results.nc"
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    assert dict(ds.sizes) == {"coupling": 16, "noise": 8, "time": 100}
    np.testing.assert_allclose(ds["coupling"].values, np.linspace(0.0, 6.0, 16))
    np.testing.assert_allclose(ds["noise"].values, np.linspace(0.0, 2.0, 8))
    assert ds["order"].dims == ("coupling", "noise")
    assert ds["R_t"].dims == ("coupling", "noise", "time")
    assert np.isfinite(ds["order"].values).all() and np.isfinite(ds["R_t"].values).all()
    assert ((ds["order"] >= 0) & (ds["order"] <= 1)).all()
    assert float(ds["order"].sel(coupling=6.0, noise=0.0)) > 0.9
    assert ds["coupling"].attrs["long_name"] == "global coupling K"
    assert Space.from_attrs(ds.attrs).sizes == {"coupling": 16, "noise": 8}
    assert not (tmp_path / "sweep_results.nc").exists()  # written only where --out says

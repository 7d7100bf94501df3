"""A stochastic Kuramoto network on a connectome, written in JAX.

The model for the demo, the notebooks and the benchmarks: small enough to read
in one sitting, real enough to show a synchronisation transition. Node ``i``
has phase ``theta_i`` and natural frequency ``omega_i``; the phases follow

.. math::

    d\\theta_i = \\Big(\\omega_i + K \\sum_j W_{ij} \\sin(\\theta_j - \\theta_i)\\Big)\\,dt
                 + \\sigma\\, dW_i(t)

with global coupling ``K`` (``state["coupling"]``), noise amplitude ``sigma``
(``state["noise"]``) and structural weights ``W`` (``state["weights"]``),
integrated with Euler–Maruyama inside ``lax.scan``. The Kuramoto order
parameter ``R(t) = |mean_j exp(i theta_j(t))|`` measures synchrony: 0 for
incoherent phases, 1 for complete synchrony.

Everything is deterministic: the connectome comes from a seeded NumPy
generator (no downloads), the initial phases and the noise from a fixed JAX
key. Every combination of a sweep sees the same noise realisation (common
random numbers), so differences between combinations come from the
parameters alone, unless the state holds its own ``"key"``: put a
:class:`~labeled_spaces.KeyAxis` there for noise replicates, or a
:class:`~labeled_spaces.PointKey` for a realisation per combination.

Examples
--------
>>> from labeled_spaces import GridAxis, ParallelExecution, Space
>>> from labeled_spaces.examples import kuramoto, make_state
>>> state = make_state(n_nodes=16)
>>> state["coupling"] = GridAxis(0.0, 4.0, 3)
>>> results = ParallelExecution(kuramoto, Space(state, mode="product"), n_steps=500,
...                             progress=False).run()
>>> r = results.to_xarray()["order"]
>>> bool(r.sel(coupling=4.0) > r.sel(coupling=0.0))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["make_connectome", "make_frequencies", "make_state", "kuramoto", "order_parameter"]


def make_connectome(n_nodes: int = 68, seed: int = 0, density: float = 0.4) -> np.ndarray:
    """A deterministic random structural connectome.

    A symmetric, non-negative weight matrix with an empty diagonal: about
    ``density`` of the node pairs are connected, with log-normally distributed
    weights (as tractography-derived weights roughly are), scaled so that the
    average node strength (row sum) is 1. Then ``K`` in :func:`kuramoto` is
    the coupling a node receives on average, independent of ``n_nodes``.

    Parameters
    ----------
    n_nodes : int, default 68
        Number of regions (68 as in the Desikan–Killiany parcellation).
    seed : int, default 0
        Seed of the NumPy generator; the same seed gives the same matrix.
    density : float, default 0.4
        Fraction of node pairs that are connected, in ``(0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``(n_nodes, n_nodes)`` float32 weights.

    Raises
    ------
    ValueError
        For ``n_nodes < 2`` or a density outside ``(0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.examples import make_connectome
    >>> w = make_connectome(10, seed=1)
    >>> w.shape, w.dtype, bool(np.allclose(w, w.T)), float(np.trace(w))
    ((10, 10), dtype('float32'), True, 0.0)
    >>> round(float(w.sum(axis=1).mean()), 5)
    1.0
    >>> bool(np.array_equal(w, make_connectome(10, seed=1)))
    True
    """
    n_nodes = int(n_nodes)
    if n_nodes < 2:
        raise ValueError(f"n_nodes must be >= 2, got {n_nodes}")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(mean=0.0, sigma=1.0, size=(n_nodes, n_nodes))
    connected = rng.random((n_nodes, n_nodes)) < density
    upper = np.triu(weights * connected, k=1)
    weights = upper + upper.T
    strength = weights.sum(axis=1).mean()
    if strength > 0:
        weights = weights / strength
    return weights.astype(np.float32)


def make_frequencies(
    n_nodes: int = 68, seed: int = 0, mean: float = 1.0, std: float = 1.0
) -> np.ndarray:
    """Deterministic natural frequencies (rad per unit time), normally distributed.

    Parameters
    ----------
    n_nodes : int, default 68
        Number of nodes.
    seed : int, default 0
        Seed of the NumPy generator (independent of :func:`make_connectome`'s
        stream for the same seed).
    mean, std : float, default 1.0, 1.0
        Mean and spread of the frequencies. For all-to-all coupling the
        classic Kuramoto transition sits at ``K_c = 2 / (pi g(0))``, about
        ``1.6 * std`` for a normal distribution.

    Returns
    -------
    numpy.ndarray
        ``(n_nodes,)`` float32.

    Examples
    --------
    >>> from labeled_spaces.examples import make_frequencies
    >>> make_frequencies(4, std=0.0).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    rng = np.random.default_rng([int(seed), 1])
    return (mean + std * rng.standard_normal(int(n_nodes))).astype(np.float32)


def make_state(
    n_nodes: int = 68,
    seed: int = 0,
    coupling: Any = 1.0,
    noise: Any = 0.1,
) -> dict[str, Any]:
    """The parameter state of :func:`kuramoto`, ready for axes.

    Parameters
    ----------
    n_nodes : int, default 68
        Number of nodes.
    seed : int, default 0
        Seed of the connectome and of the natural frequencies.
    coupling : float or axis, default 1.0
        Global coupling ``K``.
    noise : float or axis, default 0.1
        Noise amplitude ``sigma``.

    Returns
    -------
    dict
        ``{"coupling", "noise", "weights", "omega"}``; replace any entry by an
        axis to sweep it.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.examples import make_state
    >>> state = make_state(n_nodes=8, coupling=GridAxis(0.0, 2.0, 5))
    >>> sorted(state), state["weights"].shape
    (['coupling', 'noise', 'omega', 'weights'], (8, 8))
    >>> Space(state).sizes
    {'sample': 5}
    """
    return {
        "coupling": coupling,
        "noise": noise,
        "weights": make_connectome(n_nodes, seed=seed),
        "omega": make_frequencies(n_nodes, seed=seed),
    }


def order_parameter(theta: jax.Array) -> jax.Array:
    """Kuramoto order parameter ``R = |mean_j exp(i theta_j)|`` over the last axis.

    Parameters
    ----------
    theta : jax.Array
        Phases, nodes on the last axis.

    Returns
    -------
    jax.Array
        ``R`` in ``[0, 1]``, shape ``theta.shape[:-1]``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces.examples import order_parameter
    >>> float(order_parameter(jnp.zeros(5)))
    1.0
    >>> round(float(order_parameter(jnp.array([0.0, jnp.pi]))), 6)
    0.0
    """
    return jnp.hypot(jnp.mean(jnp.cos(theta), axis=-1), jnp.mean(jnp.sin(theta), axis=-1))


def kuramoto(
    state: Mapping[str, Any],
    n_steps: int = 2000,
    dt: float = 0.01,
    n_record: int = 100,
    transient: float = 0.2,
    seed: int = 0,
) -> dict[str, jax.Array]:
    """Simulate the stochastic Kuramoto network and measure its synchrony.

    Euler–Maruyama with ``lax.scan``: ``n_record`` segments of
    ``n_steps // n_record`` steps each. The coupling term uses
    ``sum_j W_ij sin(theta_j - theta_i) = cos(theta_i) (W sin theta)_i
    - sin(theta_i) (W cos theta)_i``, two matrix-vector products per step.
    Traceable: run it under ``jit``/``vmap`` (e.g. by
    :class:`labeled_spaces.ParallelExecution`).

    Parameters
    ----------
    state : mapping
        ``"coupling"`` (``K``, scalar), ``"noise"`` (``sigma``, scalar),
        ``"weights"`` (``(n, n)``) and ``"omega"`` (``(n,)`` natural
        frequencies), e.g. from :func:`make_state`; optionally ``"key"``, a
        PRNG key that replaces ``seed`` (a :class:`~labeled_spaces.KeyAxis`
        or :class:`~labeled_spaces.PointKey` puts one there per combination).
    n_steps : int, default 2000
        Integration steps; a multiple of ``n_record``.
    dt : float, default 0.01
        Time step.
    n_record : int, default 100
        Number of points of the recorded ``R_t``.
    transient : float, default 0.2
        Fraction of the run discarded before averaging ``R``.
    seed : int, default 0
        Seed of the JAX key for the initial phases (uniform on ``[0, 2 pi)``)
        and the noise, when the state holds no ``"key"``. The same seed gives
        the same noise at every combination of a sweep.

    Returns
    -------
    dict
        ``"order"``: time-averaged order parameter after the transient
        (scalar, float32, in ``[0, 1]``); ``"R_t"``: order parameter at the
        end of each recorded segment, shape ``(n_record,)``.

    Raises
    ------
    ValueError
        If ``n_steps`` is not a positive multiple of ``n_record`` or
        ``transient`` is not in ``[0, 1)``.

    Examples
    --------
    >>> from labeled_spaces.examples import kuramoto, make_state
    >>> out = kuramoto(make_state(n_nodes=16, coupling=8.0, noise=0.0), n_steps=1000)
    >>> out["R_t"].shape, bool(0.9 < out["order"] <= 1.0)
    ((100,), True)
    >>> weak = kuramoto(make_state(n_nodes=16, coupling=0.0), n_steps=1000)
    >>> bool(weak["order"] < out["order"])
    True
    >>> import jax
    >>> noisy = make_state(n_nodes=16, coupling=1.0, noise=1.0)
    >>> other = kuramoto(dict(noisy, key=jax.random.key(5)), n_steps=200)["R_t"]
    >>> bool((other != kuramoto(noisy, n_steps=200)["R_t"]).any())  # another realisation
    True
    """
    n_steps, n_record = int(n_steps), int(n_record)
    if n_record < 1 or n_steps < n_record or n_steps % n_record:
        raise ValueError(
            f"n_steps must be a positive multiple of n_record, got n_steps={n_steps}, "
            f"n_record={n_record}"
        )
    if not 0.0 <= transient < 1.0:
        raise ValueError(f"transient must be in [0, 1), got {transient!r}")
    per_segment = n_steps // n_record
    first_kept = min(int(round(transient * n_record)), n_record - 1)

    coupling = jnp.asarray(state["coupling"], dtype=jnp.float32)
    noise = jnp.asarray(state["noise"], dtype=jnp.float32)
    weights = jnp.asarray(state["weights"], dtype=jnp.float32)
    omega = jnp.asarray(state["omega"], dtype=jnp.float32)
    n_nodes = omega.shape[-1]

    key = state.get("key")
    init_key, noise_key = jax.random.split(jax.random.key(seed) if key is None else key)
    theta0 = jax.random.uniform(init_key, (n_nodes,), maxval=2 * jnp.pi)
    sqrt_dt = jnp.sqrt(jnp.float32(dt))

    def step(theta, xi):
        sin, cos = jnp.sin(theta), jnp.cos(theta)
        drive = cos * (weights @ sin) - sin * (weights @ cos)
        theta = theta + (omega + coupling * drive) * dt + noise * sqrt_dt * xi
        return theta, order_parameter(theta)

    def segment(theta, s):
        xi = jax.random.normal(jax.random.fold_in(noise_key, s), (per_segment, n_nodes))
        theta, r = jax.lax.scan(step, theta, xi)
        return jnp.mod(theta, 2 * jnp.pi), (r[-1], jnp.mean(r))

    _, (r_t, r_mean) = jax.lax.scan(segment, theta0, jnp.arange(n_record))
    return {"order": jnp.mean(r_mean[first_kept:]), "R_t": r_t}

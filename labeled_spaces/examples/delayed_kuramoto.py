"""A Kuramoto network with conduction delays, for sweeps on a real connectome.

The model of the ``labeled-spaces demo`` sweep. Region ``i`` is a phase
oscillator with natural frequency ``omega_i``; it feels region ``j`` through
the structural weight ``W_ij`` and with the conduction delay ``tau_ij`` of
their tract (length over conduction speed):

.. math::

    d\\theta_i = \\Big(\\omega_i + K \\sum_j W_{ij}
                 \\sin\\big(\\theta_j(t - \\tau_{ij}) - \\theta_i(t)\\big)\\Big)\\,dt
                 + \\sigma\\, dW_i(t)

Time is in ms, so ``omega`` and ``K`` are in rad/ms (10 Hz is
``2 pi 10 / 1000 = 0.0628`` rad/ms) and ``sigma`` in rad/sqrt(ms). The
delays are whole time steps; the past phases live in a ring buffer of
``max_delay + 1`` steps inside ``lax.scan``, from which each step gathers
``theta_j(t - tau_ij)`` for all pairs. Before ``t = 0`` every region is
taken to have run freely at its natural frequency.

Without ``state["delays"]`` the model is the undelayed network of
:mod:`labeled_spaces.examples.kuramoto`, with the same initial phases and
noise: two matrix-vector products a step instead of the gather, about 7x
faster (the demo's 561 combinations of 6000 steps: 4.4 s instead of 30 s on
two CPU cores).

Examples
--------
>>> import numpy as np
>>> from labeled_spaces.examples.connectome import load_connectome
>>> from labeled_spaces.examples.delayed_kuramoto import delayed_kuramoto, make_demo_state
>>> state = make_demo_state(load_connectome(), coupling=0.3, noise=0.0, dt=1.0)
>>> int(state["delays"].max())  # the longest tract, 253 mm at 5 m/s
51
>>> out = delayed_kuramoto(state, n_steps=1000, dt=1.0, n_record=100)
>>> out["R_t"].shape, out["fc"].shape, bool(out["order"] > 0.8)
((100,), (68, 68), True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .connectome import Connectome
from .kuramoto import make_frequencies, order_parameter

__all__ = [
    "delayed_kuramoto",
    "functional_connectivity",
    "make_demo_state",
    "record_times",
]


def _check_schedule(n_steps: Any, n_record: Any, transient: Any) -> tuple[int, int, int]:
    """``(n_steps, n_record, first kept record)``, or a ValueError naming the argument."""
    n_steps, n_record = int(n_steps), int(n_record)
    if n_record < 1 or n_steps < n_record or n_steps % n_record:
        raise ValueError(
            f"n_steps must be a positive multiple of n_record, got n_steps={n_steps}, "
            f"n_record={n_record}"
        )
    if not 0.0 <= transient < 1.0:
        raise ValueError(f"transient must be in [0, 1), got {transient!r}")
    # keep at least two records where there are two: a correlation needs two samples
    return n_steps, n_record, min(int(round(transient * n_record)), max(n_record - 2, 0))


def record_times(n_steps: int = 4000, dt: float = 0.5, n_record: int = 200) -> np.ndarray:
    """Times (ms) of the samples of ``R_t`` from :func:`delayed_kuramoto`.

    The ``k``-th record is taken at the end of the ``k``-th of ``n_record``
    equal segments, so the times run from ``n_steps * dt / n_record`` to
    ``n_steps * dt``. Pass them as the coordinate of the ``R_t`` axis.

    Parameters
    ----------
    n_steps, dt, n_record
        As given to :func:`delayed_kuramoto`.

    Returns
    -------
    numpy.ndarray
        ``(n_record,)`` float64.

    Raises
    ------
    ValueError
        If ``n_steps`` is not a positive multiple of ``n_record``.

    Examples
    --------
    >>> from labeled_spaces.examples.delayed_kuramoto import record_times
    >>> record_times(n_steps=1000, dt=0.5, n_record=4).tolist()
    [125.0, 250.0, 375.0, 500.0]
    """
    n_steps, n_record, _ = _check_schedule(n_steps, n_record, 0.0)
    return np.arange(1, n_record + 1) * (n_steps // n_record) * float(dt)


def functional_connectivity(signals: jax.Array) -> jax.Array:
    """Pearson correlation matrix of signals, time on the first axis.

    Parameters
    ----------
    signals : jax.Array
        ``(n_times, n)``.

    Returns
    -------
    jax.Array
        ``(n, n)``, symmetric, ones on the diagonal; 0 for a pair involving a
        constant signal (whose correlation is undefined).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces.examples.delayed_kuramoto import functional_connectivity
    >>> t = jnp.linspace(0.0, 6.0, 50)
    >>> fc = functional_connectivity(jnp.stack([jnp.sin(t), -jnp.sin(t), jnp.ones(50)], axis=1))
    >>> fc.round(4).tolist()
    [[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    centred = signals - jnp.mean(signals, axis=0)
    cov = centred.T @ centred
    var = jnp.diagonal(cov)
    # a relative floor: float32 leaves ~1e-7 of variance in a constant signal
    scale = jnp.where(var > 1e-6 * jnp.max(var), jnp.sqrt(var), jnp.inf)
    corr = cov / scale[:, None] / scale[None, :]
    corr = 0.5 * (corr + corr.T)  # exactly symmetric, whatever the matmul's summation order
    return jnp.where(jnp.eye(corr.shape[0], dtype=bool), 1.0, jnp.clip(corr, -1.0, 1.0))


def _static_max_delay(delays: Any, max_delay: int | None) -> tuple[int, bool]:
    """The ring buffer's ``max_delay`` and whether the delays still need a check at run time."""
    dtype = getattr(delays, "dtype", None) or np.asarray(delays).dtype
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"delays must be integer time steps, got dtype {dtype}")
    if max_delay is not None and int(max_delay) < 0:
        raise ValueError(f"max_delay must be >= 0, got {max_delay}")
    try:
        concrete = np.asarray(delays)
    except jax.errors.TracerArrayConversionError:
        concrete = None
    if concrete is None:  # traced: only the static max_delay can size the buffer
        if max_delay is None:
            raise ValueError(
                "max_delay must be given when the delays are traced (under jit/vmap or an "
                "executor), e.g. max_delay=int(state['delays'].max())"
            )
        return int(max_delay), True
    if concrete.size and concrete.min() < 0:
        raise ValueError(f"delays must be >= 0, got a minimum of {int(concrete.min())}")
    longest = int(concrete.max(initial=0))
    if max_delay is None:
        return longest, False
    if longest > int(max_delay):
        raise ValueError(f"max_delay={max_delay} is shorter than the longest delay, {longest}")
    return int(max_delay), False


def delayed_kuramoto(
    state: Mapping[str, Any],
    n_steps: int = 4000,
    dt: float = 0.5,
    n_record: int = 200,
    transient: float = 0.25,
    max_delay: int | None = None,
    seed: int = 0,
) -> dict[str, jax.Array]:
    """Simulate the delayed stochastic Kuramoto network; measure synchrony and FC.

    Euler–Maruyama with ``lax.scan``: ``n_record`` segments of
    ``n_steps // n_record`` steps. Each step writes ``sin theta`` and
    ``cos theta`` into a ring buffer of ``max_delay + 1`` past steps and
    gathers ``history[(t - tau_ij) mod (max_delay + 1), j]``, so the coupling
    is ``cos(theta_i) sum_j W_ij sin(theta_j(t - tau_ij)) - sin(theta_i)
    sum_j W_ij cos(theta_j(t - tau_ij))``. Traceable and vmappable; under
    ``vmap`` over ``coupling``/``noise`` the gather indices stay shared by
    all combinations.

    Parameters
    ----------
    state : mapping
        ``"coupling"`` (``K``, rad/ms, scalar), ``"noise"`` (``sigma``,
        rad/sqrt(ms), scalar), ``"weights"`` (``(n, n)``), ``"omega"``
        (``(n,)``, rad/ms) and optionally ``"delays"`` (``(n, n)`` integer
        steps of ``dt``, ``>= 0``), e.g. from :func:`make_demo_state`.
        Without ``"delays"`` the network is undelayed.
    n_steps : int, default 4000
        Integration steps; a multiple of ``n_record``.
    dt : float, default 0.5
        Time step in ms; the delays are counted in it.
    n_record : int, default 200
        Number of recorded samples (``R_t`` and the signals behind ``fc``),
        one at the end of each segment; see :func:`record_times`.
    transient : float, default 0.25
        Fraction of the run discarded before averaging ``R`` and computing
        ``fc`` (at most all but the last two records, so that ``fc`` has two
        samples).
    max_delay : int, optional
        Length of the ring buffer minus one, in steps (static). Needed when
        ``state["delays"]`` is traced, as in an executor; there, delays beyond
        it turn every output into NaN. By default the longest delay.
    seed : int, default 0
        Seed of the JAX key for the initial phases (uniform on ``[0, 2 pi)``)
        and the noise; every combination of a sweep sees the same noise.

    Returns
    -------
    dict
        ``"order"``: the order parameter ``R`` averaged over every step after
        the transient (scalar in ``[0, 1]``); ``"R_t"``: ``R`` at the
        recorded times, ``(n_record,)``; ``"fc"``: the correlation matrix of
        ``sin theta`` over the recorded samples after the transient,
        ``(n, n)`` (a simulated functional connectivity).

    Raises
    ------
    ValueError
        For a bad schedule (``n_steps``, ``n_record``, ``transient``), delays
        that are not non-negative integers, or a ``max_delay`` that is
        missing (traced delays) or shorter than the longest delay.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.examples.delayed_kuramoto import delayed_kuramoto
    >>> ring = np.roll(np.eye(6, dtype=np.float32), 1, axis=1)
    >>> state = {"coupling": 0.2, "noise": 0.0, "weights": ring + ring.T,
    ...          "omega": np.full(6, 0.06, np.float32), "delays": np.full((6, 6), 5)}
    >>> out = delayed_kuramoto(state, n_steps=1000, n_record=10)
    >>> out["R_t"].shape, round(float(out["R_t"][-1]), 3), float(out["fc"][0, 0])
    ((10,), 1.0, 1.0)
    """
    n_steps, n_record, first_kept = _check_schedule(n_steps, n_record, transient)
    per_segment = n_steps // n_record

    coupling = jnp.asarray(state["coupling"], dtype=jnp.float32)
    noise = jnp.asarray(state["noise"], dtype=jnp.float32)
    weights = jnp.asarray(state["weights"], dtype=jnp.float32)
    omega = jnp.asarray(state["omega"], dtype=jnp.float32)
    n_nodes = omega.shape[-1]
    delayed = state.get("delays") is not None
    if delayed:
        max_delay, check_at_run_time = _static_max_delay(state["delays"], max_delay)
        delays = jnp.asarray(state["delays"]).astype(jnp.int32)
        length = max_delay + 1
    dt = jnp.float32(dt)
    sqrt_dt = jnp.sqrt(dt)

    init_key, noise_key = jax.random.split(jax.random.key(seed))
    theta0 = jax.random.uniform(init_key, (n_nodes,), maxval=2 * jnp.pi)
    columns = jnp.arange(n_nodes)

    def drive(theta, history, t):
        sin, cos = jnp.sin(theta), jnp.cos(theta)
        if not delayed:
            return cos * (weights @ sin) - sin * (weights @ cos), history
        sincos = jnp.stack([sin, cos], axis=-1)
        history = jax.lax.dynamic_update_index_in_dim(history, sincos, t % length, axis=0)
        # one flat gather of (sin, cos) pairs: its indices depend on t only, not on the
        # vmapped parameters, so they are computed once per step for a whole block
        rows = ((t - delays) % length) * n_nodes + columns
        past = history.reshape(length * n_nodes, 2)[rows]  # (n, n, 2): theta_j(t - tau_ij)
        summed = jnp.einsum("ij,ijk->ik", weights, past)
        return cos * summed[:, 0] - sin * summed[:, 1], history

    def step(carry, inputs):
        theta, history = carry
        t, xi = inputs
        coupled, history = drive(theta, history, t)
        theta = theta + (omega + coupling * coupled) * dt + noise * sqrt_dt * xi
        return (theta, history), order_parameter(theta)

    def segment(carry, s):
        xi = jax.random.normal(jax.random.fold_in(noise_key, s), (per_segment, n_nodes))
        steps = s * per_segment + jnp.arange(per_segment)
        (theta, history), r = jax.lax.scan(step, carry, (steps, xi))
        # wrapped, the phases keep float32's resolution; the history holds sin/cos, unaffected
        theta = jnp.mod(theta, 2 * jnp.pi)
        return (theta, history), (r[-1], jnp.mean(r), jnp.sin(theta))

    if delayed:
        # slot (t mod length) holds step t; before t = 0 each region ran at omega_i
        back = (length - jnp.arange(length)) % length  # steps before t = 0 of each slot
        past = theta0 - omega * (back[:, None] * dt)
        history = jnp.stack([jnp.sin(past), jnp.cos(past)], axis=-1)
    else:
        history = jnp.zeros((0,), jnp.float32)
    _, (r_t, r_mean, sines) = jax.lax.scan(segment, (theta0, history), jnp.arange(n_record))
    out = {
        "order": jnp.mean(r_mean[first_kept:]),
        "R_t": r_t,
        "fc": functional_connectivity(sines[first_kept:]),
    }
    if delayed and check_at_run_time:
        bad = jnp.any((delays < 0) | (delays >= length))  # length: max_delay + 1
        out = {k: jnp.where(bad, jnp.nan, v) for k, v in out.items()}
    return out


def make_demo_state(
    connectome: Connectome,
    coupling: Any = 0.1,
    noise: Any = 0.0,
    speed: float | None = 5.0,
    dt: float = 0.5,
    frequency: float = 10.0,
    frequency_spread: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """The parameter state of :func:`delayed_kuramoto` on a connectome, ready for axes.

    Parameters
    ----------
    connectome : Connectome
        E.g. :func:`labeled_spaces.examples.connectome.load_connectome`.
    coupling : float or axis, default 0.1
        Global coupling ``K`` (rad/ms).
    noise : float or axis, default 0.0
        Noise amplitude ``sigma`` (rad/sqrt(ms)).
    speed : float or None, default 5.0
        Conduction speed in m/s (= mm/ms); each delay is its tract length
        over ``speed``, rounded to whole steps of ``dt``. ``None``: no delays.
    dt : float, default 0.5
        Time step (ms) the delays are counted in; give the model the same.
    frequency, frequency_spread : float, default 10.0, 1.0
        Mean and standard deviation (Hz) of the normally distributed natural
        frequencies (10 Hz: the alpha rhythm).
    seed : int, default 0
        Seed of the natural frequencies
        (:func:`labeled_spaces.examples.make_frequencies`).

    Returns
    -------
    dict
        ``{"coupling", "noise", "weights", "omega"}`` and ``"delays"`` (int32
        steps) unless ``speed`` is None; replace an entry by an axis to sweep it.

    Raises
    ------
    ValueError
        For a speed or ``dt`` that is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.examples.connectome import Connectome
    >>> from labeled_spaces.examples.delayed_kuramoto import make_demo_state
    >>> pair = Connectome("pair", np.array([[0, 1], [1, 0]]), np.array([[0, 30], [30, 0]]),
    ...                   np.array(["l_a", "r_a"]), np.zeros((2, 3)))
    >>> state = make_demo_state(pair, speed=6.0, dt=0.5, frequency_spread=0.0)
    >>> sorted(state), state["delays"].tolist()  # 30 mm at 6 m/s: 5 ms, 10 steps
    (['coupling', 'delays', 'noise', 'omega', 'weights'], [[0, 10], [10, 0]])
    >>> [round(float(x), 4) for x in state["omega"]]  # 10 Hz in rad/ms
    [0.0628, 0.0628]
    >>> "delays" in make_demo_state(pair, speed=None)
    False
    """
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    to_rad_per_ms = 2 * np.pi / 1000.0
    state: dict[str, Any] = {
        "coupling": coupling,
        "noise": noise,
        "weights": np.array(connectome.weights, dtype=np.float32),
        "omega": make_frequencies(connectome.n_regions, seed=seed,
                                  mean=frequency * to_rad_per_ms,
                                  std=frequency_spread * to_rad_per_ms),
    }
    if speed is not None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (m/s) or None, got {speed!r}")
        steps = np.rint(np.asarray(connectome.tract_lengths, np.float64) / (speed * dt))
        state["delays"] = steps.astype(np.int32)
    return state

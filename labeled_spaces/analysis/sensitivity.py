"""Variance-based (Sobol) sensitivity indices of every output element, in one labeled sweep.

A Saltelli design on a scrambled Sobol sequence of dimension ``2k`` (``k``
unit columns over the factors) gives the matrices ``A`` and ``B`` and, for
every factor ``i``, ``AB_i`` (``A`` with factor ``i``'s columns from ``B``).
The ``n (d + 2)`` points, mapped onto the axes as quasi-random spaces map them
(:func:`labeled_spaces.space.design.map_unit`), become a zip Space of
DataAxis tables beside the state's fixed leaves, which one executor run
evaluates, so stores, resume, ``n_vmap`` and dask work as for ``run()``.

The estimators are those of ``scipy.stats.sobol_indices``: outputs centred on
the mean of ``f(A)`` and ``f(B)``; ``S1_i = mean(f_B (f_ABi - f_A)) / var``
(Saltelli 2010) and ``ST_i = mean((f_A - f_ABi)^2) / 2 / var`` (Jansen), with
``var`` the variance of ``f(A)`` and ``f(B)`` together, and indices of an
element without variance set to 0. They are computed for every element of
the output at once; the bootstrap draws rows with replacement, which for
means is a matrix product of resampling counts with per-row terms.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import jax
import numpy as np
import xarray as xr

from .._checks import fail
from .._codec import key_data
from ..axes import AbstractAxis, BoundedAxis, DataAxis, KeyAxis, NumPyroAxis
from ..execution import ParallelExecution
from ..space import Space, check_key, is_axis, keypath_name
from ..space.design import Factor, column_slices, factors, map_factors, unit_design

__all__ = ["sensitivity"]

DIM = "sample"  # the shared dimension of the sweep (its space has no other)


def _check_options(n: Any, n_resamples: Any, confidence: Any) -> None:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 2 or (
            int(n) & (int(n) - 1)):
        fail("n", "a power of two of at least 2 (the base samples of a Sobol design)", n)
    if isinstance(n_resamples, (bool, np.bool_)) or not isinstance(
            n_resamples, numbers.Integral) or n_resamples < 2:
        fail("n_resamples", "an integer of at least 2", n_resamples)
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(
            confidence, numbers.Real) or not 0 < float(confidence) < 1:
        fail("confidence", "a number between 0 and 1 (exclusive)", confidence)


def _axes_of(state: Any) -> tuple[list[Any], Any, list[int], list[str]]:
    """The state's leaves, its structure, where its axes are, and their names."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(state, is_leaf=is_axis)
    leaves = [leaf for _, leaf in flat]
    positions = [k for k, leaf in enumerate(leaves) if is_axis(leaf)]
    if not positions:
        raise ValueError(f"state must contain at least one axis (the factors of the analysis), "
                         f"got none in {state!r}")
    names = [leaves[k].name if leaves[k].name is not None else keypath_name(flat[k][0])
             for k in positions]
    for k, name in zip(positions, names, strict=True):
        axis = leaves[k]
        if isinstance(axis, KeyAxis):
            fail("state", "axes with a distribution to vary as factors", axis,
                 detail=f" at {name!r}: a KeyAxis holds replicate keys, not a distribution; "
                 "for a key per evaluation use PointKey()")
        if not isinstance(axis, (BoundedAxis, DataAxis, NumPyroAxis)):
            fail("state", "axes with a distribution to vary as factors (GridAxis, "
                 "LogGridAxis, UniformAxis, NumPyroAxis or DataAxis)", axis,
                 detail=f" at {name!r}")
    return leaves, treedef, positions, names


def saltelli_points(found: Sequence[Factor], n: int, key: jax.Array) -> np.ndarray:
    """The unit points of A, B and every AB_i, stacked: shape ``(n (d + 2), k)``.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces.analysis.sensitivity import saltelli_points
    >>> from labeled_spaces.space.design import Factor
    >>> u = saltelli_points([Factor("a", (0,), 1), Factor("b", (1,), 1)], 4, jax.random.key(0))
    >>> u.shape, bool((u[8:12, 0] == u[4:8, 0]).all() and (u[8:12, 1] == u[:4, 1]).all())
    ((16, 2), True)
    """
    k = sum(f.columns for f in found)
    u = unit_design("sobol", n, 2 * k, key)
    a, b = u[:, :k], u[:, k:]
    pages = [a, b]
    for cols in column_slices(found):
        ab = a.copy()
        ab[:, cols] = b[:, cols]
        pages.append(ab)
    return np.concatenate(pages)


def _sweep_state(leaves: list[Any], treedef: Any, positions: list[int], names: list[str],
                 u: np.ndarray) -> Any:
    axes: list[AbstractAxis] = [leaves[k] for k in positions]
    mapped = map_factors(axes, factors(axes, names), u)
    out = list(leaves)
    for k, axis, point in zip(positions, axes, mapped, strict=True):
        out[k] = DataAxis(point.values, name=axis.name, attrs=axis.attrs)
    return treedef.unflatten(out)


def _pick_output(names: Sequence[str], output: Any) -> int:
    if output is None:
        if len(names) != 1:
            raise ValueError(f"the model has several outputs {list(names)}; choose one with "
                             "output=")
        return 0
    if output not in names:
        raise ValueError(f"output must be the key path of one of the model's outputs "
                         f"{list(names)}, got {output!r}")
    return list(names).index(output)


def _indices(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray, weights: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """S1 and ST ``(d, [R,] E)`` from ``f_a, f_b (n, E)`` and ``f_ab (d, n, E)``.

    ``weights`` (``(R, n)`` resampling counts) turns every mean over rows into
    the mean over each resample's rows.
    """
    n = f_a.shape[0]

    def mean(terms: np.ndarray) -> np.ndarray:  # over rows (axis -2)
        if weights is None:
            return terms.mean(axis=-2)
        return np.matmul(weights, terms) / n

    first = mean(f_b * (f_ab - f_a))
    total = 0.5 * mean((f_a - f_ab) ** 2)
    centre = 0.5 * mean(f_a + f_b)
    var = 0.5 * mean(f_a**2 + f_b**2) - centre**2
    with np.errstate(divide="ignore", invalid="ignore"):
        s1, st = first / var, total / var
    s1[~np.isfinite(s1)] = 0.0  # an element without variance has no sensitivity
    st[~np.isfinite(st)] = 0.0
    return s1, st


def sobol_estimates(values: np.ndarray, d: int, n_resamples: int, confidence: float,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """S1, ST and their bootstrap half-widths from the outputs of a Saltelli sweep.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n (d + 2), *element shape)``: the outputs at A, B, AB_1, ..., AB_d.
    d : int
        Number of factors.
    n_resamples : int
        Bootstrap resamples of the ``n`` rows (drawn with replacement).
    confidence : float
        The half-widths are ``z * std`` of the resampled indices, with ``z``
        the normal quantile at ``(1 + confidence) / 2`` (as SALib reports).
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``S1``, ``ST``, ``S1_conf``, ``ST_conf``, each ``(d, *element shape)``.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.analysis.sensitivity import sobol_estimates
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random((2, 256, 2))
    >>> ab = np.stack([np.where(np.arange(2) == i, b, a) for i in range(2)])
    >>> f = lambda x: x[..., 0] + 0.0 * x[..., 1]
    >>> out = sobol_estimates(np.concatenate([f(a), f(b), *f(ab)]), 2, 50, 0.95, rng)
    >>> np.round(out["ST"], 1).tolist()
    [1.0, 0.0]
    """
    shape = values.shape[1:]
    n = values.shape[0] // (d + 2)
    flat = values.reshape(d + 2, n, -1).astype(np.float64)
    flat = flat - 0.5 * (flat[0] + flat[1]).mean(axis=0)  # centred, as scipy does
    f_a, f_b, f_ab = flat[0], flat[1], flat[2:]
    s1, st = _indices(f_a, f_b, f_ab, None)
    rows = rng.integers(0, n, size=(n_resamples, n))
    counts = np.bincount((rows + n * np.arange(n_resamples)[:, None]).ravel(),
                         minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)
    s1_r, st_r = _indices(f_a, f_b, f_ab, counts)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return {
        "S1": s1.reshape(d, *shape),
        "ST": st.reshape(d, *shape),
        "S1_conf": (z * s1_r.std(axis=1, ddof=1)).reshape(d, *shape),
        "ST_conf": (z * st_r.std(axis=1, ddof=1)).reshape(d, *shape),
    }


def _labeled(estimates: Mapping[str, np.ndarray], factor_names: Sequence[str],
             dims: Sequence[str], coords: Mapping[str, xr.Variable],
             attrs: Mapping[str, Any]) -> xr.Dataset:
    labels: dict[str, Any] = {"factor": list(factor_names)}
    labels.update({name: c for name, c in coords.items() if set(c.dims) <= set(dims)})
    return xr.Dataset({k: (("factor", *dims), v) for k, v in estimates.items()},
                      coords=labels, attrs=dict(attrs))


def sensitivity(
    model: Any,
    state: Any,
    *args: Any,
    n: int = 1024,
    output: str | None = None,
    key: jax.Array | None = None,
    n_resamples: int = 200,
    confidence: float = 0.95,
    executor: Any = ParallelExecution,
    **options: Any,
) -> xr.Dataset:
    """Sobol sensitivity indices (first order and total) of every element of an output.

    Each axis of ``state`` is one factor with the distribution of its axis:
    ``UniformAxis``/``GridAxis`` uniform over their interval, ``LogGridAxis``
    log-uniform, ``NumPyroAxis`` its distribution (through its ``icdf``),
    ``DataAxis`` categorical with equal weights; the axes' own ``n`` is
    ignored. The axes of a group are one factor named by the group's label,
    one column driving all its members as zip pairs them. ``n`` base samples
    of a scrambled Sobol design give ``n (d + 2)`` evaluations, run in one
    sweep by ``executor`` (a zip Space over dimension ``"sample"``).

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)`` returning a pytree of arrays.
    state : pytree
        The parameters; leaves that are axes are the factors, others stay fixed.
    *args
        Passed to the model.
    n : int, default 1024
        Base samples, a power of two (else ``ValueError``).
    output : str, optional
        Key path of the output to analyse (default: the only one; a model with
        several outputs needs it).
    key : jax.Array, optional
        Seeds the scrambled Sobol design and the bootstrap (default
        ``jax.random.key(0)``); the same key gives the same indices.
    n_resamples : int, default 200
        Bootstrap resamples of the ``n`` rows.
    confidence : float, default 0.95
        Level of the bootstrap half-widths: ``z * std`` of the resampled
        indices, ``z`` the normal quantile at ``(1 + confidence) / 2``.
    executor : class, default ParallelExecution
        ``ParallelExecution``, ``SequentialExecution`` or ``DaskExecution``.
    **options
        The executor's options (``n_vmap``, ``chunk_size``, ``store``,
        ``progress``, ``output_dims``, ``output_coords``, ...) and the model's
        keyword arguments, as for ``run()``.

    Returns
    -------
    xarray.Dataset
        ``S1``, ``ST`` (the estimators of ``scipy.stats.sobol_indices``:
        Saltelli 2010 and Jansen), ``S1_conf``, ``ST_conf``, with dims
        ``("factor", *output dims)`` and the output's coordinates; coordinate
        ``factor`` holds the factor names (axis names or group labels).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import UniformAxis, sensitivity
    >>> state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}
    >>> indices = sensitivity(lambda s: s["x"] + 0.1 * s["y"], state, n=256, progress=False)
    >>> indices["S1"].round(1).values.tolist(), indices["factor"].values.tolist()
    ([1.0, 0.0], ['x', 'y'])
    """
    _check_options(n, n_resamples, confidence)
    key = check_key(key)
    leaves, treedef, positions, names = _axes_of(state)
    found = factors([leaves[k] for k in positions], names)
    u = saltelli_points(found, int(n), key)
    space = Space(_sweep_state(leaves, treedef, positions, names, u), mode="zip", key=key,
                  dim=DIM)
    results = executor(model, space, *args, **options).run()
    k = _pick_output(results.names, output)
    outputs = results.outputs  # the labels of the outputs' own dimensions, as run() made them
    rng = np.random.default_rng(np.random.SeedSequence(key_data(key)).spawn(1)[0])
    estimates = sobol_estimates(np.asarray(results.arrays[k]), len(found), int(n_resamples),
                                float(confidence), rng)
    attrs = {"output": results.names[k], "n": int(n), "evaluations": len(space),
             "n_resamples": int(n_resamples), "confidence": float(confidence),
             "first_order": "Saltelli 2010", "total_order": "Jansen 1999"}
    coords = {name: c.variable() for name, c in outputs.coords.items()}
    return _labeled(estimates, [f.name for f in found], outputs.dims[k], coords, attrs)

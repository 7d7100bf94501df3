"""Variance-based (Sobol) sensitivity indices of every output element, in one labeled sweep.

A Saltelli design on a scrambled Sobol sequence of dimension ``2k`` (``k``
unit columns over the factors) gives the matrices ``A`` and ``B`` and, for
every factor ``i``, ``AB_i`` (``A`` with factor ``i``'s columns from ``B``).
The ``n (d + 2)`` points, mapped onto the axes as quasi-random spaces map them
(:func:`labeled_spaces.space.design.map_unit`), become a zip Space of
DataAxis tables beside the state's fixed leaves, which one executor run
evaluates, so stores, resume, ``n_vmap`` and dask work as for ``run()``.

The estimators (:mod:`.sobol`) are those of ``scipy.stats.sobol_indices``,
for every element of the output at once, with a bootstrap.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._caches import ProgramCache
from .._checks import check_callable, fail, integer_scalar, silenced, warn_user
from .._codec import key_data
from ..axes import AbstractAxis, BoundedAxis, DataAxis, KeyAxis, NumPyroAxis
from ..execution import ParallelExecution, Program
from ..results import output_names
from ..results.identity import ANOTHER_SPACE
from ..space import Space, check_key, is_axis, keypath_name
from ..space.design import (
    SOBOL_LIMIT,
    Factor,
    column_slices,
    factors,
    map_factors,
    unit_design,
)
from ..space.shared_keys import SHARED_KEYS
from .program import UnusableOutputs, check_output, run_program
from .sobol import sobol_estimates

__all__ = ["sensitivity"]

DIM = "sample"  # the shared dimension of the sweep (its space has no other), if free
#: the names of the Dataset sensitivity returns, which an output's own dimensions cannot take
RESERVED = ("factor", "S1", "ST", "S1_conf", "ST_conf")

# one Program per output choice: the executors cache compiled programs per model and Program
_PROGRAMS = ProgramCache("sensitivity programs")


def _check_options(n: Any, n_resamples: Any, confidence: Any) -> tuple[int, int, float]:
    """``n``, ``n_resamples`` and ``confidence`` checked, as Python numbers.

    NumPy scalars and 0-d arrays count as the numbers they hold, as for the
    executors' options; booleans are refused.
    """
    count = integer_scalar(n)
    if count is None or count < 2 or count & (count - 1):
        fail("n", "a power of two of at least 2 (the base samples of a Sobol design)", n)
    if count > SOBOL_LIMIT:  # the design's own message suggests a mode, which is no option here
        fail("n", "a power of two of at most 2**30 (scipy's Sobol engine has 30 bits)", n)
    resamples = integer_scalar(n_resamples)
    if resamples is None or resamples < 2:
        fail("n_resamples", "an integer of at least 2", n_resamples)
    level = None
    if not isinstance(confidence, (bool, np.bool_)) and (
            isinstance(confidence, numbers.Real) or (
                getattr(confidence, "ndim", None) == 0
                and np.asarray(confidence).dtype.kind in "iuf")):
        level = float(confidence)
    if level is None or not 0 < level < 1:
        fail("confidence", "a number between 0 and 1 (exclusive)", confidence)
    return count, resamples, level


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


def _check_output_dims(output: Any, output_dims: Any) -> None:
    """Refuse own dimensions of the analysed output that the returned Dataset uses."""
    if not isinstance(output_dims, Mapping):
        return  # the executor checks its kind
    for name, own in output_dims.items():
        if output is not None and name != output:
            continue
        own = (own,) if isinstance(own, str) else own
        clash = [d for d in own if d in RESERVED] if isinstance(own, Sequence) else []
        if clash:
            fail(f"output_dims[{name!r}]", f"dimension names other than {list(RESERVED)} "
                 "(the names of the indices' Dataset)", own)


def _free_dim(taken: set[str]) -> str:
    """The sweep's dimension: ``"sample"``, with ``_`` appended while an axis or output uses it."""
    dim = DIM
    while dim in taken:
        dim += "_"
    return dim


def _dim_names(output_dims: Any) -> set[str]:
    if not isinstance(output_dims, Mapping):
        return set()
    found: set[str] = set()
    for own in output_dims.values():
        own = (own,) if isinstance(own, str) else own
        if isinstance(own, Sequence):
            found.update(d for d in own if isinstance(d, str))
    return found


def _selecting(output: str | None) -> Program:
    """The model, checked when traced: one output chosen (``output``), of a real dtype.

    So a model with several outputs and no ``output=``, an unknown
    ``output``, or an output without a real value (complex, keys) is refused
    before any evaluation runs.
    """

    def lane(call: Callable[..., Any], axis_values: Sequence[Any], state_arrays: Sequence[Any],
             extra_arrays: Sequence[Any]) -> Any:
        out = call(axis_values, state_arrays, extra_arrays)
        leaves, treedef = jax.tree.flatten(out)
        names = output_names(treedef)
        k = _pick_output(names, output)
        dtype = jnp.result_type(leaves[k])
        if not any(jnp.issubdtype(dtype, kind) for kind in (jnp.floating, jnp.integer,
                                                             jnp.bool_)):
            raise UnusableOutputs(
                f"the output {names[k]!r} is {dtype}: Sobol indices need real values "
                "(for a complex output, return its real part, imaginary part or magnitude)")
        return out

    # the sweep's points (n, key, the axes) are its space; output, n_resamples and
    # confidence only read the stored outputs, so a store serves every choice of them
    return Program(lane, settings=(("analysis", "sensitivity"),))


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
    try:
        mapped = map_factors(axes, factors(axes, names), u)
    except ValueError as err:  # a distribution without a usable icdf, an unsupported axis
        # the designs' hint (another mode) does not apply here: there is no mode to choose
        reason = re.sub(r";\s*use mode=.*$", "", str(err))
        raise ValueError(f"sensitivity draws every factor of state through its axis's "
                         f"distribution, and cannot for one of them: {reason}; give that "
                         "factor as a UniformAxis, LogGridAxis, a DataAxis of draws, or a "
                         "NumPyroAxis whose distribution has an icdf") from None
    out = list(leaves)
    for k, axis, point in zip(positions, axes, mapped, strict=True):
        out[k] = DataAxis(point.values, name=axis.name, attrs=axis.attrs)
    return treedef.unflatten(out)


def _pick_output(names: Sequence[str], output: Any) -> int:
    """Which output is analysed (an :class:`UnusableOutputs`, a ``ValueError``, if none)."""
    if not names:
        raise UnusableOutputs("the model returns no outputs (an empty pytree); sensitivity "
                              "needs one array of real values to analyse")
    if output is None:
        if len(names) != 1:
            raise UnusableOutputs(f"the model has several outputs {list(names)}; choose one "
                                  "with output=")
        return 0
    if output not in names:
        raise UnusableOutputs(f"output must be the key path of one of the model's outputs "
                              f"{list(names)}, got {output!r}")
    return list(names).index(output)


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
    sweep by ``executor`` (a zip Space over dimension ``"sample"``, or
    ``"sample_"`` where an axis or an output dimension is named ``sample``).
    The model's outputs are checked when it is traced, before anything runs:
    the analysed one must be chosen and have real values (bool, integer or
    floating). Elements of the output that are NaN or infinite at some
    evaluation get NaN indices (with a ``RuntimeWarning``); elements without
    variance get 0.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)`` returning a pytree of arrays.
    state : pytree or Space
        The parameters; leaves that are axes are the factors, others stay
        fixed. A Space gives its state (its mode and key play no part).
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

    Raises
    ------
    ValueError
        ``n`` not a power of two from 2 to 2**30, ``n_resamples`` below 2,
        ``confidence`` outside (0, 1); a state without axes or with a
        ``KeyAxis``; several outputs and no ``output``, or an ``output`` the
        model does not return, or one without real values; an output
        dimension named ``factor``, ``S1``, ``ST``, ``S1_conf`` or ``ST_conf``.
    TypeError
        ``model`` or ``executor`` not callable; ``output`` not a string;
        a keyword that is neither an executor option nor the model's.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import UniformAxis, sensitivity
    >>> state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2)}
    >>> indices = sensitivity(lambda s: s["x"] + 0.1 * s["y"], state, n=256, progress=False)
    >>> indices["S1"].round(1).values.tolist(), indices["factor"].values.tolist()
    ([1.0, 0.0], ['x', 'y'])
    """
    check_callable("model", model)
    check_callable("executor", executor)
    n, n_resamples, confidence = _check_options(n, n_resamples, confidence)
    check_output(output)
    key = check_key(key)
    built = isinstance(state, Space)  # its user was warned of its PointKeys already
    if built:  # its axes and fixed leaves; its mode and key do not apply
        state = state.state
    leaves, treedef, positions, names = _axes_of(state)
    _check_output_dims(output, options.get("output_dims"))
    found = factors([leaves[k] for k in positions], names)
    u = saltelli_points(found, n, key)
    coords = options.get("output_coords")
    dim = _free_dim(set(names) | _dim_names(options.get("output_dims"))
                    | (set(map(str, coords)) if isinstance(coords, Mapping) else set()))
    with silenced(*([SHARED_KEYS] if built else [])):
        space = Space(_sweep_state(leaves, treedef, positions, names, u), mode="zip", key=key,
                      dim=dim)
    program = _PROGRAMS.get(None, ("sensitivity", output), lambda: _selecting(output))
    try:
        results = run_program(executor, model, space, args, program, options)
    except ValueError as err:
        if ANOTHER_SPACE not in str(err):
            raise
        # the points come from n, key and the axes: say so before the axes' differences
        raise ValueError(f"store={options.get('store')!r} holds a sensitivity sweep of other "
                         f"points than this call's (n={n}): n, key and the axes' bounds must "
                         "be those it was made with; give a new path, or overwrite=True. "
                         f"In detail: {err}") from None
    k = _pick_output(results.names, output)
    outputs = results.outputs  # the labels of the outputs' own dimensions, as run() made them
    rng = np.random.default_rng(np.random.SeedSequence(key_data(key)).spawn(1)[0])
    values = np.asarray(results.arrays[k])
    bad = int(np.count_nonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1)))
    if bad:
        warn_user(f"the output {results.names[k]!r} is not finite (NaN or inf) at {bad} of "
                  f"{len(values)} evaluations; the indices of its elements that are not "
                  "finite everywhere are NaN", RuntimeWarning)
    estimates = sobol_estimates(values, len(found), n_resamples, confidence, rng)
    attrs = {"output": results.names[k], "n": n, "evaluations": len(space),
             "n_resamples": n_resamples, "confidence": confidence,
             "first_order": "Saltelli 2010", "total_order": "Jansen 1999"}
    coords = {name: c.variable() for name, c in outputs.coords.items()}
    return _labeled(estimates, [f.name for f in found], outputs.dims[k], coords, attrs)

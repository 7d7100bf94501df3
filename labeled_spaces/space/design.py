"""Quasi-random designs: a joint low-discrepancy design over axes, mapped onto each axis.

A design space (``Space(state, mode="sobol" | "halton" | "lhs")``) draws one
joint design in the unit cube (:func:`unit_design`: scipy's scrambled Sobol,
or the scrambled Halton and Latin hypercube constructions of
``scipy.stats.qmc`` built column-wise by :mod:`~labeled_spaces.space.sequences`)
with one column per axis, or per component of a
:class:`~labeled_spaces.axes.NumPyroAxis` with a ``sample_shape``; the axes of
a group share their columns, so one column drives all members as zip pairs
them. :func:`map_unit` maps an axis's columns onto its values (the one place
that knows how; :func:`labeled_spaces.sensitivity` uses it too), and
:func:`design_tables` gives every axis's value table and labels, which the
Space then serves exactly as it serves a zip space's tables (``space[i]``,
labels, results, stores). The design's length is the axes' common size (a
``ValueError`` where sizes differ); a Sobol design whose length is not a power
of two warns, as scipy does. The same key gives the same points bit for bit, so
``Space.from_attrs`` (and ``open_results``) rebuild them from the mode and key
in the attrs. Sub-spaces and slices of a design are zip spaces over its points.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import qmc

from .._checks import fail, warn_user
from .._codec import key_data
from ..axes import AbstractAxis, BoundedAxis, DataAxis, KeyAxis, LogGridAxis, NumPyroAxis
from ..axes.bounded import UniformAxis
from ..axes.distribution import describe_distribution
from .sequences import unit_columns_of

__all__ = ["DESIGNS", "Factor", "MappedAxis", "design_tables", "factors", "map_unit",
           "unit_columns", "unit_design"]

DESIGNS = ("sobol", "halton", "lhs")

SOBOL_BALANCE = ("The balance properties of Sobol' points require n to be a power of 2")
SOBOL_BLOCK = 1 << 16
SOBOL_LIMIT = 1 << 30
"""scipy's Sobol engine (30 bits) gives at most this many distinct points."""
SOBOL_COLUMNS = 21201
"""scipy's Sobol engine has direction numbers for at most this many columns."""


def design_rng(key: jax.Array) -> np.random.Generator:
    """A NumPy generator seeded by a PRNG key's integers (same key, same stream)."""
    return np.random.default_rng(key_data(key))


def unit_design(mode: str, n: int, d: int, key: jax.Array) -> np.ndarray:
    """``n`` points of a ``d``-dimensional design in ``[0, 1)^d``, seeded by ``key``.

    Parameters
    ----------
    mode : {"sobol", "halton", "lhs"}
        ``scipy.stats.qmc.Sobol`` (scrambled); a scrambled Halton sequence
        (Owen's random digit permutations, the values of
        ``scipy.stats.qmc.van_der_corput(..., scramble=True)`` in the first
        ``d`` prime bases); or a Latin hypercube (``LatinHypercube``'s
        ``(perm - u) / n``). Halton and Latin hypercube columns are built
        column by column in :mod:`~labeled_spaces.space.sequences` (for 1e6
        points x 8 columns about 40x and 7x faster than scipy's engines).
        Sobol and Halton designs are scipy's ``Sobol(d, scramble=True,
        rng=design_rng(key))`` and ``Halton(d, scramble=True,
        rng=design_rng(key))`` (Halton's values up to the order of the
        additions, 2**-51); each Latin hypercube column draws from its own
        child of the key's seed.
    n, d : int
        Number of points and of columns.
    key : jax.Array
        The same key gives the same points, bit for bit.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n, d)``.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces.space.design import unit_design
    >>> u = unit_design("sobol", 8, 2, jax.random.key(0))
    >>> u.shape, bool(((0 <= u) & (u < 1)).all())
    ((8, 2), True)
    >>> sorted((unit_design("lhs", 4, 1, jax.random.key(1))[:, 0] * 4).astype(int).tolist())
    [0, 1, 2, 3]
    """
    if mode in ("halton", "lhs"):
        return unit_columns_of(mode, n, d, key_data(key))
    if mode != "sobol":
        raise ValueError(f"mode must be one of {list(DESIGNS)}, got {mode!r}")
    if n > SOBOL_LIMIT:  # before drawing: scipy refuses only once 2**30 points are drawn
        fail("n", "at most 2**30 = 1073741824 for a Sobol design (scipy's Sobol engine "
             "has 30 bits); use mode='halton' or 'lhs' for more points", n)
    if n & (n - 1):
        warn_user(f"{SOBOL_BALANCE}; got n={n}")
    engine = qmc.Sobol(d, scramble=True, rng=design_rng(key))
    out = np.empty((d, n))  # column-major: each axis reads one contiguous column
    with warnings.catch_warnings():  # the Sobol balance warning was given above
        warnings.filterwarnings("ignore", message="The balance properties", category=UserWarning)
        # in blocks: the same points as engine.random(n) (the engine continues its
        # sequence), without scipy's two n x d temporaries, whose first touch
        # made a 1e6-point build swing between 20 ms and 400 ms here
        for start in range(0, n, SOBOL_BLOCK):
            stop = min(n, start + SOBOL_BLOCK)
            out[:, start:stop] = engine.random(stop - start).T
    return out.T


def unit_columns(axis: AbstractAxis) -> int:
    """How many unit-cube columns drive an axis (see :func:`map_unit`).

    One for a scalar or ``shape=`` axis (its scalar label is broadcast) and
    for a DataAxis; for a NumPyroAxis one per drawn component (``sample_shape``
    times the distribution's batch shape), one with ``broadcast_mode=True``.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces import GridAxis, NumPyroAxis
    >>> from labeled_spaces.space.design import unit_columns
    >>> unit_columns(GridAxis(0, 1, 4, shape=(3,))), unit_columns(
    ...     NumPyroAxis(dist.Normal(0.0, 1.0), 4, sample_shape=(2, 3)))
    (1, 6)
    """
    if isinstance(axis, NumPyroAxis):
        batch = math.prod(axis.distribution.batch_shape)
        return batch if axis.broadcast_mode else math.prod(axis.sample_shape) * batch
    if isinstance(axis, (BoundedAxis, DataAxis)):
        return 1
    raise _unsupported(axis)


@dataclass(frozen=True)
class MappedAxis:
    """An axis's values at design points: what the model gets, the labels, the value coordinate."""

    values: np.ndarray
    labels: np.ndarray
    value_coordinate: np.ndarray | None


def _unsupported(axis: AbstractAxis) -> ValueError:
    way_out = ("use mode='zip' or 'product' for it" if not isinstance(axis, KeyAxis) else
               "a KeyAxis has no values to place on a design: for noise at every design point, "
               "put a PointKey() in the state instead (a key of its own per point); replicates "
               "as a dimension (KeyAxis) need mode='product'")
    return ValueError(
        f"a quasi-random design maps a unit column onto GridAxis, UniformAxis, LogGridAxis, "
        f"NumPyroAxis or DataAxis, got {axis!r} ({type(axis).__name__}); {way_out}"
    )


def _interval(axis: BoundedAxis, u: np.ndarray) -> np.ndarray:
    # the axis's own dtype: a grid's bounds' (bfloat16), jax.random.uniform's default float
    dtype = (jnp.result_type(float) if isinstance(axis, UniformAxis)
             else axis.spec_values().get("dtype") or jnp.result_type(float))
    low, high = float(axis.low), float(axis.high)
    if isinstance(axis, LogGridAxis):
        log_low = math.log(low)
        scalar = u[:, 0] * (math.log(high) - log_low)
        scalar += log_low
        np.exp(scalar, out=scalar)
    else:  # in place: one temporary of the column's length, not three
        scalar = u[:, 0] * (high - low)
        scalar += low
    values = scalar.astype(np.dtype(dtype), copy=False)  # rounds as jnp.asarray(scalar, dtype)
    if axis.shape:
        values = np.broadcast_to(values.reshape(-1, *[1] * len(axis.shape)),
                                 (len(values), *axis.shape))
    return values


ICDF_CHUNK = 1 << 14
"""Values per icdf call: every call has the same shape, whatever the design's length."""


def _icdf_in_chunks(dist: Any, unit: np.ndarray, dtype: Any) -> np.ndarray:
    """``dist.icdf(unit)`` over the points (axis 0) in calls of one fixed shape.

    XLA's elementwise kernels take other code paths for arrays of other
    lengths (a vectorised body and its tail): a LogNormal's icdf at the same
    unit point differed in the last bit between designs of 7 and 5000 points,
    so a Sobol or Halton design of ``n`` points was not a prefix of a longer
    one. Cut into chunks of one shape (the last padded with 0.5), each point
    is computed the same way for every ``n``.
    """
    n, rest = len(unit), unit.shape[1:]
    rows = max(1, ICDF_CHUNK // max(1, math.prod(rest)))
    chunks = []
    for start in range(0, n, rows):
        block = np.full((rows, *rest), 0.5)
        block[:min(rows, n - start)] = unit[start:start + rows]
        chunks.append(np.asarray(dist.icdf(jnp.asarray(block, dtype=dtype))))
    if not chunks:
        return np.asarray(dist.icdf(jnp.asarray(unit, dtype=dtype)))
    out = np.concatenate(chunks)
    return out if len(out) == n else out[:n]


def _quantiles(axis: NumPyroAxis, u: np.ndarray) -> np.ndarray:
    dist = axis.distribution
    n = len(u)
    batch = tuple(dist.batch_shape)
    shape = (n, *batch) if axis.broadcast_mode else (n, *axis.sample_shape, *batch)
    dtype = jnp.result_type(float)
    # inside (0, 1): an icdf at 0 or 1 is infinite for unbounded distributions
    tiny = float(np.finfo(dtype).eps) / 2
    unit = np.clip(u, tiny, 1.0 - tiny).reshape(shape)
    name = describe_distribution(dist)
    try:
        values = _icdf_in_chunks(dist, unit, dtype)
    except NotImplementedError:
        raise ValueError(
            f"a quasi-random design maps unit columns through the distribution's icdf, but "
            f"{name} of the axis {axis!r} has none; use mode='zip' or 'product' for it"
        ) from None
    except Exception as err:  # noqa: BLE001 - any failure of a third-party icdf
        raise ValueError(
            f"a quasi-random design maps unit columns through the distribution's icdf, but "
            f"{name}.icdf failed: {type(err).__name__}: {err}"
        ) from None
    if values.shape != shape:
        raise ValueError(f"{name}.icdf returned shape {values.shape} for unit points of shape "
                         f"{shape}; a quasi-random design needs one value per unit point")
    lost = np.isnan(values)
    if lost.any():  # inside (0, 1) an icdf is a number (or an infinite tail), never NaN
        raise ValueError(
            f"{name}.icdf returned NaN at {int(lost.sum())} of {lost.size} unit points "
            f"(the first at u={float(unit[lost][0]):.6g}); a quasi-random design needs a "
            "value for every point: check the distribution's parameters")
    if axis.broadcast_mode and axis.sample_shape:
        values = np.broadcast_to(values.reshape(n, *[1] * len(axis.sample_shape)),
                                 (n, *axis.sample_shape))
    return values


def map_unit(axis: AbstractAxis, u: np.ndarray) -> MappedAxis:
    """An axis's values at unit-cube points ``u`` of shape ``(n, unit_columns(axis))``.

    ``UniformAxis``/``GridAxis``: ``low + (high - low) * u``; ``LogGridAxis``:
    the same in log space (both broadcast to ``shape=``); ``NumPyroAxis``:
    ``distribution.icdf(u)`` (``u`` kept inside ``(0, 1)`` by half an epsilon of
    the float dtype; a distribution without an ``icdf`` or whose ``icdf``
    fails is a ``ValueError`` naming it); ``DataAxis``: the point at
    ``floor(u * size)`` (equal weights), with its label. The values have the
    dtype the axis's own values have; the labels are the values themselves
    where one scalar describes a point (bfloat16 ones as float32, exactly:
    stores and netCDF have no bfloat16), else ``0..n-1`` with the values kept
    as the value coordinate, as the axis labels its own draws.

    Parameters
    ----------
    axis : AbstractAxis
    u : numpy.ndarray
        Points in ``[0, 1)``.

    Returns
    -------
    MappedAxis

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces import DataAxis, LogGridAxis
    >>> from labeled_spaces.space.design import map_unit
    >>> map_unit(LogGridAxis(1.0, 100.0, 2), np.array([[0.0], [0.5]])).values.tolist()
    [1.0, 10.0]
    >>> map_unit(DataAxis([10, 20], labels=["a", "b"]), np.array([[0.7]])).labels.tolist()
    ['b']
    """
    u = np.asarray(u, dtype=np.float64)
    n = len(u)
    if isinstance(axis, BoundedAxis):
        values = _interval(axis, u)
        labels = values.reshape(n, -1)[:, 0]
        if str(labels.dtype) == "bfloat16":  # exact as float32, which stores and files hold
            labels = labels.astype(np.float32)
        return MappedAxis(values, labels, None)
    if isinstance(axis, DataAxis):
        index = np.minimum((u[:, 0] * axis.size).astype(np.int64), axis.size - 1)
        held = axis.value_coordinate()
        return MappedAxis(np.asarray(axis.generate_values())[index], axis.coordinate()[index],
                          None if held is None else np.asarray(held)[index])
    if isinstance(axis, NumPyroAxis):
        values = _quantiles(axis, u)
        dist = axis.distribution
        scalar = not dist.batch_shape and not dist.event_shape and (
            axis.broadcast_mode or not axis.sample_shape)
        if scalar:
            return MappedAxis(values, values.reshape(n, -1)[:, 0], None)
        return MappedAxis(values, np.arange(n), values)
    raise _unsupported(axis)


@dataclass(frozen=True)
class Factor:
    """Axes driven by the same unit columns: one ungrouped axis, or all axes of a group.

    Attributes
    ----------
    name : str
        The axis's name, or the group's label as a string.
    members : tuple of int
        The axes (by position) it drives.
    columns : int
        How many unit columns it takes (its widest member's).
    """

    name: str
    members: tuple[int, ...]
    columns: int


def factors(axes: Sequence[AbstractAxis], names: Sequence[str]) -> list[Factor]:
    """The factors of axes in order of first appearance: a group is one factor.

    Examples
    --------
    >>> from labeled_spaces import GridAxis
    >>> from labeled_spaces.space.design import factors
    >>> [(f.name, f.members) for f in factors(
    ...     [GridAxis(0, 1, 2, group="g"), GridAxis(0, 1, 2), GridAxis(0, 1, 2, group="g")],
    ...     ["a", "b", "c"])]
    [('g', (0, 2)), ('b', (1,))]
    """
    found: dict[Hashable, list[int]] = {}
    order: list[tuple[str, Hashable]] = []
    for a, axis in enumerate(axes):
        tag: Hashable = ("group", axis.group) if axis.group is not None else ("axis", a)
        if tag not in found:
            found[tag] = []
            order.append((str(axis.group) if axis.group is not None else names[a], tag))
        found[tag].append(a)
    return [Factor(name, tuple(found[tag]), max(unit_columns(axes[a]) for a in found[tag]))
            for name, tag in order]


def column_slices(found: Sequence[Factor]) -> list[slice]:
    """Each factor's columns in a design whose factors follow one another."""
    out, start = [], 0
    for f in found:
        out.append(slice(start, start + f.columns))
        start += f.columns
    return out


def map_factors(axes: Sequence[AbstractAxis], found: Sequence[Factor], u: np.ndarray
                ) -> list[MappedAxis]:
    """Every axis's values at unit points ``u`` whose columns follow :func:`column_slices`."""
    mapped: list[MappedAxis | None] = [None] * len(axes)
    for f, cols in zip(found, column_slices(found), strict=True):
        for a in f.members:
            mapped[a] = map_unit(axes[a], u[:, cols][:, :unit_columns(axes[a])])
    return [m for m in mapped if m is not None]


def design_tables(axes: Sequence[AbstractAxis], names: Sequence[str], mode: str,
                  key: jax.Array) -> list[MappedAxis]:
    """Every axis's values and labels at the points of one joint design.

    Its length is the axes' common size (else ``ValueError``), its columns the factors'.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces import GridAxis, UniformAxis
    >>> from labeled_spaces.space.design import design_tables
    >>> mapped = design_tables([GridAxis(0, 1, 4), UniformAxis(5, 6, 4)], ["a", "b"], "lhs",
    ...                        jax.random.key(0))
    >>> [m.values.shape for m in mapped]
    [(4,), (4,)]
    """
    found = factors(axes, names)  # an axis a design cannot place is named before any size
    sizes = {names[a]: axis.size for a, axis in enumerate(axes)}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"a {mode!r} design takes one point count from its axes, which must agree "
            f"(a DataAxis counts its values), got sizes {sizes}"
        )
    columns = sum(f.columns for f in found)
    if mode == "sobol" and columns > SOBOL_COLUMNS:  # scipy's own message names no axis
        widest = sorted(found, key=lambda f: -f.columns)[:3]
        raise ValueError(
            f"a 'sobol' design has at most {SOBOL_COLUMNS} columns (scipy's Sobol direction "
            f"numbers), one per axis and per component of a NumPyroAxis with sample_shape; "
            f"this space needs {columns} (" + ", ".join(f"{f.name}: {f.columns}" for f in widest)
            + (", ..." if len(found) > 3 else "") + "); use mode='halton' or 'lhs'"
        )
    u = unit_design(mode, next(iter(sizes.values())), columns, key)
    return map_factors(axes, found, u)

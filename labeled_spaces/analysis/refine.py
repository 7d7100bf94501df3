"""refine: adaptive sampling of a 2-D or 3-D box, one compiled block call per round.

The space's grid is the first round; each later round adds ``batch`` points
where the output departs most from linear interpolation over the Delaunay
mesh of all points so far (see :mod:`labeled_spaces.analysis.mesh`), and runs
them as one zip Space of :class:`~labeled_spaces.DataAxis` through the
executor. With ``store=PATH``, ``PATH`` is a zarr store of every point so
far (``open_results``, ``xarray.open_zarr``), brought up to date after each
round, and each round streams into its own store inside it
(:mod:`labeled_spaces.results.refine_store`); since the same inputs give the
same points, a rerun opens the finished rounds instead of computing them
again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import jax
import numpy as np

from .._checks import check_callable, check_int, fail, silenced
from .._format import format_count
from ..axes import BoundedAxis, DataAxis, GridAxis, LogGridAxis, PointKey, UniformAxis
from ..execution import Interrupted, ModelError, ParallelExecution
from ..results import Outputs, Results
from ..results.refine_store import (
    points_from,
    root_damage,
    root_step,
    round_done,
    round_store,
    write_root,
)
from ..results.refined import POINT, ROUND, Box, Refinement, RefineResults
from ..space import Space, check_space, is_axis
from ..space.shared_keys import SHARED_KEYS
from .mesh import next_points
from .program import check_output
from .refine_rounds import check_refine_store, one_cluster, set_aside

__all__ = ["RefineResults", "refine"]

#: the dimension of the points, and the coordinate of their rounds: no axis or output
#: dimension may take these names
RESERVED = (POINT, ROUND)

logger = logging.getLogger("labeled_spaces")

_INTERVALS = (GridAxis, LogGridAxis, UniformAxis)


def _box(space: Space) -> Box:
    """The refined axes of ``space``, after checking it is a product of 2 or 3 intervals."""
    check_space(space)
    for axis, name in zip(space.axes, space.names, strict=True):
        if not isinstance(axis, _INTERVALS):
            origin = space.selected_from.get(name)
            fail(f"the axis {name!r} of space",
                 "an interval axis (GridAxis, LogGridAxis or UniformAxis)", axis,
                 detail="" if origin is None else (
                     f": a sub-space (isel, sel, a slice) holds the points it kept of the "
                     f"{origin} {name!r} as a DataAxis, which has no interval to refine; give "
                     f"refine a Space of the {origin} with the bounds to refine instead"))
        if axis.size < 2:
            fail(f"the axis {name!r} of space", "at least 2 points (the first round's grid)",
                 axis)
    if len(space.axes) not in (2, 3):
        count = len(space.axes)
        fail("space", "a space of 2 or 3 axes (refine samples a 2-D or 3-D box)",
             f"{format_count(count, 'axis', 'axes')} {list(space.names)}")
    if space.mode != "product" or len(space.dims) != len(space.axes):
        fail("space", "a product space with one dimension per axis (no zip, no groups)",
             f"mode={space.mode!r} with dims {list(space.dims)}")
    for name in space.names:
        if name in RESERVED:
            fail("space", f"a space whose axes are named other than {list(RESERVED)} (the "
                 "dimension and the coordinate refine puts on the points)", name,
                 detail=" (the name of one of its axes)")
    axes = cast(tuple[BoundedAxis, ...], space.axes)
    return Box(tuple(space.names), np.array([float(a.low) for a in axes]),
               np.array([float(a.high) for a in axes]),
               np.array([isinstance(a, LogGridAxis) for a in axes]))


def _grid_points(space: Space) -> np.ndarray:
    """Every combination of the space's axis labels, ``(N, d)`` in flat order."""
    labels = [np.asarray(space.coords[name].values, dtype=np.float64) for name in space.names]
    return np.stack(np.meshgrid(*labels, indexing="ij"), axis=-1).reshape(-1, len(labels))


def _points_space(space: Space, values: np.ndarray, start: int = 0) -> Space:
    """A zip Space over ``point`` whose axes are DataAxis of ``values`` ``(m, d)``.

    Its points are points ``start`` to ``start + m - 1`` of all rounds: a
    PointKey gives each the key of that position along ``point``, so no two
    points of a refinement share a key and the combined results' space
    (``start=0``, every point) gives each point the key it was computed with.
    """
    leaves, treedef = jax.tree_util.tree_flatten(space.state, is_leaf=is_axis)
    column = iter(range(values.shape[1]))
    replaced: list[Any] = []
    for leaf in leaves:
        if isinstance(leaf, PointKey):  # its position along point, among all the rounds
            replaced.append(PointKey() if start == 0 else PointKey(
                positions=[(POINT, np.arange(start, start + len(values)))]))
            continue
        if not is_axis(leaf):
            replaced.append(leaf)
            continue
        labels = values[:, next(column)]
        if leaf.shape:  # every point broadcast to the axis's shape, labeled by its scalar
            data = np.broadcast_to(labels.reshape((-1,) + (1,) * len(leaf.shape)),
                                   (len(labels), *leaf.shape))
            replaced.append(DataAxis(data, labels=labels.tolist(), value_coordinate=None,
                                     name=leaf.name, attrs=leaf.attrs))
        else:
            replaced.append(DataAxis(labels, name=leaf.name, attrs=leaf.attrs))
    with silenced(SHARED_KEYS):  # the space's user was warned of its PointKeys
        return Space(jax.tree_util.tree_unflatten(treedef, replaced), mode="zip",
                     key=space.key, dim=POINT)


def _check_output_dims(output_dims: Any) -> None:
    """Refuse output dimensions named ``point`` or ``round`` (refine's own names)."""
    if not isinstance(output_dims, Mapping):
        return  # the executor checks its kind
    for name, own in output_dims.items():
        own = (own,) if isinstance(own, str) else own
        if isinstance(own, Sequence) and any(d in RESERVED for d in own):
            fail(f"output_dims[{name!r}]", f"dimension names other than {list(RESERVED)} "
                 "(the dimension and the coordinate refine puts on the points)", own)


def _driver(results: Results, output: str | None) -> int:
    """Which output leaf drives the loss."""
    names = results.names
    if output is None:
        if len(names) != 1:
            fail("output", f"one of the model's outputs {names} (it has several)", output)
        return 0
    if output not in names:
        fail("output", f"one of the model's outputs {names}", output)
    return names.index(output)


def _driving_values(results: Results, leaf: int) -> np.ndarray:
    """The driving output per point: its value, or the norm of a non-scalar output."""
    values = np.asarray(results.arrays[leaf])
    flat = values.reshape(len(values), -1)
    if flat.shape[1] == 1 and values.dtype.kind != "c":
        return flat[:, 0].astype(np.float64)
    return np.linalg.norm(flat, axis=1).astype(np.float64)


def refine(model: Callable[..., Any], space: Space, *args: Any, n: int,
           output: str | None = None, batch: int = 256,
           executor: Callable[..., Any] = ParallelExecution, **options: Any) -> RefineResults:
    """Sample a 2-D or 3-D box adaptively, where the output is least linear.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)``, as for the executors.
    space : Space
        A product space of 2 or 3 interval axes (``GridAxis``,
        ``LogGridAxis``, ``UniformAxis``; each at least 2 points), one
        dimension each; fixed leaves stay fixed. Its combinations are the
        first round; the axes' bounds are the box refined.
    *args
        Extra positional arguments for the model.
    n : int
        Points in all (at least the space's size).
    output : str, optional
        Key path of the output that drives the refinement (default: the
        only one; with several, naming one is required). A non-scalar output
        drives it by its norm over its own elements (complex: by magnitude).
    batch : int, default 256
        Points per round after the first (the last round may be smaller).
    executor : class, default ParallelExecution
        Runs each round: ``executor(model, points, *args, progress=...,
        **options).run()``. A ``DaskExecution`` given no ``client`` gets the
        client of one local cluster, started once for all rounds.
    **options
        The executor's options and the model's keyword arguments, as for
        ``run()``. ``store=PATH`` makes ``PATH`` a zarr store of the results
        over every point so far, brought up to date after each round:
        ``open_results(PATH)`` gives back these RefineResults and
        ``xarray.open_zarr(PATH)`` their Dataset (``labeled_spaces:refine``
        in its attrs says how the refinement was asked for). Each round
        streams into its own store inside it (``round_000.zarr``, ...), so a
        rerun with the same inputs (model, space, ``n``, ``batch``, ``output``)
        reads the finished rounds back instead of computing them, and a round
        a crash cut short computes only its unfinished blocks; a larger ``n``
        computes only the points it adds, as a fresh run would. One store
        rather than a bare folder of rounds, so that both readers see the
        whole refinement; the rounds stay for resuming (a rerun on a folder of
        rounds made by an earlier version writes the root from them).
        ``overwrite=True`` replaces the store.

    Returns
    -------
    RefineResults
        The outputs over one ``point`` dimension, in the order computed, with
        the axis values (and ``round``) as coordinates on it;
        ``to_grid(**sizes)`` interpolates them onto a regular grid.

    Raises
    ------
    ValueError
        Besides bad arguments: ``store`` holds a refinement asked for with
        a smaller ``n``, another ``batch``, ``output`` or box (named, as
        ``n: 80 -> 60``), another space or model arguments (named by the
        round's store), or is a zarr store that refine did not make; the
        store is left untouched.

    Notes
    -----
    Points are scaled to the unit box (logarithmically for a
    ``LogGridAxis``). Each round triangulates all points so far
    (``scipy.spatial.Delaunay``), estimates along every edge how far the
    output departs from linear interpolation (from the gradients at both
    ends), weighs that by the square root of the area or volume the edge
    serves, and samples the midpoints of the ``batch`` worst edges; see
    :mod:`labeled_spaces.analysis.mesh`. Each round is one run of the
    executor: one compiled, vectorised call for a ``ParallelExecution``.
    Non-finite outputs count as the mean of the finite ones for choosing
    points. A :class:`~labeled_spaces.PointKey` in the state gives point
    ``i`` (in the order computed, over all rounds) the key
    ``fold_in(space.key, i)``, as the returned results' space does. When a
    round fails (:class:`~labeled_spaces.ModelError`, or
    :class:`~labeled_spaces.Interrupted` on Ctrl-C), the error's
    ``partial`` holds every finished round and what the failed round
    finished, over ``point``, with the ``computed`` mask.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, Space, refine
    >>> space = Space({"x": GridAxis(-1.0, 1.0, 5), "y": GridAxis(-1.0, 1.0, 5), "a": 0.05},
    ...               mode="product")
    >>> def step(s):
    ...     return jnp.tanh((s["x"] ** 2 + s["y"] ** 2 - 0.5) / s["a"])
    >>> results = refine(step, space, n=100, batch=25)
    >>> results.to_xarray().sizes["point"], sorted(set(results.rounds.tolist()))
    (100, [0, 1, 2, 3])
    """
    box = _box(space)
    check_callable("model", model)
    check_callable("executor", executor)
    _check_output_dims(options.get("output_dims"))
    check_output(output)  # before round 0 runs
    if "program" in options:
        fail("program", "left out: refine runs the model itself", options["program"], TypeError)
    n = check_int("n", n, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    if n < space.N:
        fail("n", f"at least the {space.N} points of the space's grid (the first round)", n)
    asked = Refinement(box, space.N, batch, n, output)
    overwrite = bool(options.get("overwrite", False))
    store, held = check_refine_store(options.pop("store", None), asked, overwrite)
    # the points the store's root holds (all from rounds before these), and its chunks; a
    # root with a chunk missing or unreadable holds none: it is rewritten from point 0, from
    # the rounds as they are read back
    damage = None if held is None or store is None else root_damage(store)
    if damage is not None:
        logger.warning("refine: the root of %s is damaged (%s); it is written again from the "
                       "rounds", store, damage)
    root_points = 0 if held is None or damage is not None else held.points
    step = root_step(batch) if held is None else held.step
    progress = options.pop("progress", False)
    values = _grid_points(space)
    unit = box.to_unit(values)
    # one local dask cluster for every round (DaskExecution would start one per round); a
    # store to overwrite is kept aside until the new refinement is whole
    with set_aside(store, overwrite) as commit, one_cluster(executor, options) as options:
        loaded: list[list[np.ndarray]] = []  # per round, its outputs (read once)
        outputs: Outputs | None = None
        chosen: list[np.ndarray] = []
        driver: np.ndarray = np.empty(0)
        leaf = 0
        k = 0
        try:
            while True:
                start = len(driver)
                read_back = False
                if store is not None:
                    store.mkdir(parents=True, exist_ok=True)
                    options["store"] = round_store(store, k)
                    read_back = not overwrite and round_done(options["store"])
                points = _points_space(space, values, start=start)
                try:
                    result = executor(model, points, *args, progress=progress, **options).run()
                except (ModelError, Interrupted) as err:
                    # never lose what was computed: the finished rounds go with the error
                    if loaded and outputs is not None:
                        err.partial = _combine(space, asked, outputs, loaded, chosen,
                                               err.partial, values)
                        _note_rounds(err, k, start)
                    raise
                if k == 0:
                    leaf = _driver(result, output)
                    outputs = result.outputs
                loaded.append([np.asarray(a) for a in result.arrays])
                chosen.append(values)
                driver = np.concatenate([driver, _driving_values(result, leaf)])
                logger.info("refine: round %d, %d of %d points", k, len(driver), n)
                if store is not None and outputs is not None and (
                        not read_back or len(driver) > root_points):
                    # the root takes the round: from its first point, or from the first the root
                    # lacks where the round was read back (the root may hold it already)
                    first = root_points if read_back else start
                    write_root(store, _points_space(space, np.concatenate(chosen)), outputs, asked,
                               points_from(loaded, first - first % step), first, step)
                    root_points = len(driver)
                if len(driver) >= n:
                    commit()  # the new store is whole: an old one set aside goes
                    break
                new = next_points(unit, driver, min(batch, n - len(driver)))
                unit = np.concatenate([unit, new])
                values = box.from_unit(new)
                k += 1
            assert outputs is not None, "round 0 ran"
            return _combine(space, asked, outputs, loaded, chosen)
        except KeyboardInterrupt as err:
            # a round's own Interrupted holds its partial; a Ctrl-C between rounds (choosing
            # points, writing the root, gathering the results) gets what finished, as one
            m = min(len(loaded), len(chosen))  # a round counts once both lists hold it
            if isinstance(err, Interrupted) or not m or outputs is None:
                raise
            raise Interrupted(
                f"interrupted by the user after round {m - 1}; the "
                f"{sum(len(c) for c in chosen[:m])} points of the finished rounds are in "
                ".partial", _combine(space, asked, outputs, loaded[:m], chosen[:m])) from err


def _note_rounds(err: ModelError | Interrupted, k: int, start: int) -> None:
    """Say in ``err`` that its index and ``partial`` count the points of every round."""
    if isinstance(err, ModelError) and err.index is not None:
        err.add_note(f"refine: that is point {start + err.index} of the results (round {k}, "
                     f"which started at point {start}); err.index and err.partial count all "
                     "points")
        err.index += start
    elif isinstance(err, Interrupted) and err.partial is not None:
        done = err.partial.done
        finished = len(err.partial) if done is None else int(np.count_nonzero(done))
        err.add_note(f"refine: .partial holds the finished rounds and what round {k} "
                     f"finished: {finished} points computed in all")


def _combine(space: Space, asked: Refinement, outputs: Outputs,
             loaded: Sequence[Sequence[np.ndarray]], values: Sequence[np.ndarray],
             failed: Results | None = None, failed_values: np.ndarray | None = None
             ) -> RefineResults:
    """One RefineResults over the points of every round, in the order computed.

    ``loaded`` holds the outputs of each finished round. ``failed`` is the
    partial result of a round that failed (``failed_values`` its points):
    its points are kept with a ``computed`` mask.
    """
    done = None
    if failed is not None and failed_values is not None:
        loaded = [*loaded, [np.asarray(a) for a in failed.arrays]]
        values = [*values, failed_values]
        finished = sum(len(arrays[0]) for arrays in loaded[:-1])
        mask = failed.done if failed.done is not None else np.ones(len(failed), bool)
        done = np.concatenate([np.ones(finished, bool), np.asarray(mask).ravel()])
    everything = _points_space(space, np.concatenate(values))
    arrays = [np.concatenate([arrays[i] for arrays in loaded]) for i in range(len(loaded[0]))]
    results = cast(RefineResults,
                   RefineResults.from_outputs(everything, outputs, arrays, done))
    results.refinement = asked
    results.rounds = asked.rounds_of(np.arange(everything.N))
    return results

"""refine: adaptive sampling of a 2-D or 3-D box, one compiled block call per round.

The space's grid is the first round; each later round adds ``batch`` points
where the output departs most from linear interpolation over the Delaunay
mesh of all points so far (see :mod:`labeled_spaces.analysis.mesh`), and runs
them as one zip Space of :class:`~labeled_spaces.DataAxis` through the
executor. With ``store=PATH`` each round streams into its own zarr store in
``PATH``; since the same inputs give the same points, a rerun opens the
finished rounds instead of computing them again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import jax
import numpy as np

from .._checks import check_callable, check_int, fail
from ..axes import BoundedAxis, DataAxis, GridAxis, LogGridAxis, PointKey, UniformAxis
from ..execution import DaskExecution, Interrupted, ModelError, ParallelExecution, cluster
from ..execution.program import Program, model_lane
from ..results import Results
from ..results.identity import ANOTHER_SPACE, OTHER_SETTINGS
from ..space import Space, is_axis
from .mesh import next_points
from .program import check_output
from .refined import ROUND, Box, RefineResults

__all__ = ["RefineResults", "refine"]

#: the dimension of the points, and the coordinate of their rounds: no axis or output
#: dimension may take these names
POINT = "point"
RESERVED = (POINT, ROUND)

logger = logging.getLogger("labeled_spaces")

_INTERVALS = (GridAxis, LogGridAxis, UniformAxis)


def _box(space: Space) -> Box:
    """The refined axes of ``space``, after checking it is a product of 2 or 3 intervals."""
    if not isinstance(space, Space):
        fail("space", "a labeled_spaces.Space", space, TypeError)
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
        fail("space", "a space of 2 or 3 axes (refine samples a 2-D or 3-D box)",
             f"{len(space.axes)} axes {list(space.names)}")
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
    return Space(jax.tree_util.tree_unflatten(treedef, replaced), mode="zip", key=space.key,
                 dim=POINT)


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


def _round_store(store: Any, k: int) -> str:
    return os.fspath(Path(store) / f"round_{k:03d}.zarr")


def _round_program(box: Box, k: int, batch: int, output: str) -> Program:
    """The model, with what round ``k``'s points follow from as settings of its run identity.

    Every round records the box (the axes' bounds and scales); rounds after
    the first also ``batch`` and the driving ``output`` (resolved: the name
    of the output the first round found), so that a store made with others
    is refused naming them. ``n`` only cuts the last round short: a round
    stored at another length is refused as another space (see
    :func:`_refused_round`), or grows where it was shorter.
    """
    bounds = tuple(f"{name}: {float(low)!r}..{float(high)!r}{' log' if log else ''}"
                   for name, low, high, log in zip(box.names, box.low, box.high, box.log,
                                                   strict=True))
    settings: tuple[tuple[str, Any], ...] = (("analysis", "refine"), ("box", bounds))
    if k > 0:
        settings += (("batch", batch), ("output", output))
    return Program(model_lane, settings=settings)


def _refused_round(err: ValueError, store: Path, k: int, size: int, n: int) -> ValueError:
    """The refusal of round ``k``'s store as another space, naming ``n``, which differs.

    The rounds record the box, ``batch`` and ``output``, and the first
    round's store the space, the model's arguments and outputs: past the
    first round, only an ``n`` that cuts the last round at another length
    makes a round's points differ.
    """
    return ValueError(
        f"store={os.fspath(store)!r} was made by a refine with another n than this call's "
        f"n={n}: its round {k} holds other points than the {size} this call computes there "
        "(the rounds record the space, the model's arguments, batch and output, and only n "
        "cuts the last round at another length). It is left as it is: give the n it was made "
        f"with, a new path, or overwrite=True. In detail: {err}")


@contextlib.contextmanager
def _one_cluster(executor: Any, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``options``, with the client of one local dask cluster kept for all rounds.

    Only for a ``DaskExecution`` given no client, which would otherwise
    start and close a cluster in every round.
    """
    if not (isinstance(executor, type) and issubclass(executor, DaskExecution)) or \
            options.get("client") is not None:
        yield options
        return
    import dask
    from distributed import Client

    # as DaskExecution starts its own: restarted workers are spawned too
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}), \
            cluster.local_cluster() as local, Client(local, set_as_default=False) as client:
        logger.info("refine: started a local dask cluster of %d workers for every round",
                    len(local.workers))
        yield {**options, "client": client}


def _check_store(store: Any) -> Any:
    if store is None:
        return None
    try:
        path = Path(os.fspath(store))
    except TypeError:
        fail("store", "None or the path of a directory for the rounds' stores", store,
             TypeError)
    if path.exists() and (not path.is_dir() or (path / "zarr.json").exists()
                          or (path / ".zgroup").exists()):
        fail("store", "a directory holding one zarr store per round (not a store itself)",
             store)
    return path


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
        ``run()``. ``store=PATH`` names a directory that gets one zarr store
        per round (``round_000.zarr``, ...); a rerun with the same inputs
        (model, space, ``n``, ``batch``, ``output``) opens the finished rounds
        instead of computing them, and a larger ``n`` computes only the rounds
        it adds. A store made with another ``batch``, ``output`` or box (the
        axes' bounds), or with an ``n`` that cut a round at another length, is
        refused with a ``ValueError`` naming it, and left as it is.

    Returns
    -------
    RefineResults
        The outputs over one ``point`` dimension, in the order computed, with
        the axis values (and ``round``) as coordinates on it;
        ``to_grid(**sizes)`` interpolates them onto a regular grid.

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
    store = _check_store(options.pop("store", None))
    progress = options.pop("progress", False)
    values = _grid_points(space)
    unit = box.to_unit(values)
    # one local dask cluster for every round (DaskExecution would start one per round)
    with _one_cluster(executor, options) as options:
        rounds: list[Results] = []
        chosen: list[np.ndarray] = []
        driver: np.ndarray = np.empty(0)
        leaf = 0
        driving = ""  # the name of the output driving the refinement, once round 0 found it
        k = 0
        while True:
            if store is not None:
                store.mkdir(parents=True, exist_ok=True)
                options["store"] = _round_store(store, k)
            points = _points_space(space, values, start=len(driver))
            program = _round_program(box, k, batch, driving)
            try:
                result = executor(model, points, *args, progress=progress, program=program,
                                  **options).run()
            except ValueError as err:
                refused = str(err)
                if k == 0 or store is None or ANOTHER_SPACE not in refused \
                        or OTHER_SETTINGS in refused:  # those name what differs
                    raise
                raise _refused_round(err, store, k, len(values), n) from None
            except (ModelError, Interrupted) as err:
                # never lose what was computed: the finished rounds go with the error
                if rounds:
                    err.partial = _combine(space, box, rounds, chosen, err.partial, values)
                    before = sum(len(r) for r in rounds)
                    if isinstance(err, ModelError) and err.index is not None:
                        err.add_note(f"refine: that is point {before + err.index} of the results "
                                     f"(round {k}, which started at point {before}); "
                                     "err.index and err.partial count all points")
                        err.index += before
                raise
            if k == 0:
                leaf = _driver(result, output)
                driving = result.names[leaf]
            rounds.append(result)
            chosen.append(values)
            driver = np.concatenate([driver, _driving_values(result, leaf)])
            logger.info("refine: round %d, %d of %d points", k, len(driver), n)
            if len(driver) >= n:
                break
            new = next_points(unit, driver, min(batch, n - len(driver)))
            unit = np.concatenate([unit, new])
            values = box.from_unit(new)
            k += 1
        return _combine(space, box, rounds, chosen)


def _combine(space: Space, box: Box, rounds: Sequence[Results],
             values: Sequence[np.ndarray], failed: Results | None = None,
             failed_values: np.ndarray | None = None) -> RefineResults:
    """One RefineResults over the points of every round, in the order computed.

    ``failed`` is the partial result of a round that failed (``failed_values``
    its points): its points are kept with a ``computed`` mask.
    """
    done = None
    if failed is not None and failed_values is not None:
        rounds, values = [*rounds, failed], [*values, failed_values]
        finished = sum(len(r) for r in rounds[:-1])
        mask = failed.done if failed.done is not None else np.ones(len(failed), bool)
        done = np.concatenate([np.ones(finished, bool), np.asarray(mask).ravel()])
    everything = _points_space(space, np.concatenate(values))
    arrays = [np.concatenate([np.asarray(r.arrays[i]) for r in rounds])
              for i in range(len(rounds[0].arrays))]
    results = cast(RefineResults,
                   RefineResults.from_outputs(everything, rounds[0].outputs, arrays, done))
    results.box = box
    results.rounds = np.concatenate([np.full(len(r), k) for k, r in enumerate(rounds)])
    return results

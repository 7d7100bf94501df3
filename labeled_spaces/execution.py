"""Executors: run a model over every combination of a Space.

:class:`SequentialExecution` calls one compiled function per combination.
:class:`ParallelExecution` cuts the space's grid into N-D blocks and runs each
block in one compiled ``jit(vmap(model))`` call; the block's parameters are
computed inside the call from its origin (a few int32 digits), so no array of
size N exists on the host or device except the results themselves. Executors
know nothing about xarray: they hand arrays to :class:`Results`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import numbers
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from .compile import signature, split_arrays, static_token
from .results import Results, _check_output_dims, output_names
from .space import Space

__all__ = ["ModelError", "SequentialExecution", "ParallelExecution"]

logger = logging.getLogger("labeled_spaces")

# default share of the available memory that one run may use for blocks in flight
_MEMORY_FRACTION = 0.25
# blocks in flight hold at most this share of the results (so peak <= 1.1x results)
_BLOCK_SHARE = 0.015
_MIN_BLOCK_BYTES = 2**20
_MAX_BLOCK = 2**22


class ModelError(RuntimeError):
    """The model failed at one combination.

    Attributes
    ----------
    index : int or None
        Flat index of the failing combination (None where no single
        combination could be blamed).
    params : pytree or None
        Its parameter state (``space[index]``).
    partial : Results or None
        The results finished before the failure, over the whole space, with
        ``partial.done`` marking which combinations hold values.
    """

    def __init__(
        self,
        message: str,
        index: int | None = None,
        params: Any = None,
        partial: Results | None = None,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.params = params
        self.partial = partial


def _check_model(model: Any) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable, got {model!r} ({type(model).__name__})")


def _check_space(space: Any, argname: str) -> Space:
    if not isinstance(space, Space):
        raise TypeError(f"{argname} must be a labeled_spaces.Space, got {type(space).__name__}")
    return space


def _positive_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _output_leaf(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"model outputs must be arrays or numbers, got {x!r}")
    return arr


def _empty_like(space: Space, leaves: Sequence[Any]) -> list[np.ndarray]:
    """Uninitialised arrays for every output leaf over the whole grid."""
    return [np.empty(space.shape + tuple(x.shape), dtype=np.dtype(x.dtype)) for x in leaves]


def _blank_undone(arrays: Sequence[np.ndarray], done: np.ndarray) -> None:
    """Fill what was not computed with NaN (floats) or 0 (others), for partial results."""
    for array in arrays:
        fill = np.nan if np.issubdtype(array.dtype, np.inexact) else 0
        array[~done] = fill


class _Prepared:
    """The model closed over everything that is not an array, as a function of arrays."""

    def __init__(self, model: Callable, space: Space, args: tuple, kwargs: dict) -> None:
        static_leaves = [x for k, x in enumerate(space.leaves) if k not in space.axis_positions]
        extra_leaves, self.extra_treedef = jax.tree.flatten((args, kwargs))
        self.state_arrays, self._rebuild_state = split_arrays(space.leaves)
        self.extra_arrays, self._rebuild_extra = split_arrays(extra_leaves)
        self.model = model
        self.space = space
        self.token = (
            space.treedef,
            space.axis_positions,
            static_token(static_leaves),
            self.extra_treedef,
            static_token(extra_leaves),
        )

    def call(self, axis_values: Sequence[Any], state_arrays: Sequence[Any],
             extra_arrays: Sequence[Any]) -> Any:
        """``model(state, *args, **kwargs)`` for one combination's axis values."""
        leaves = self._rebuild_state(state_arrays)
        state = self.space._assemble(axis_values, leaves)
        args, kwargs = self.extra_treedef.unflatten(self._rebuild_extra(extra_arrays))
        return self.model(state, *args, **kwargs)


def _failed_at(space: Space, i: int, message: str, partial: Results | None = None) -> ModelError:
    """The error for combination ``i``: its index and parameters, and what went wrong."""
    return ModelError(
        f"the model failed at combination {i} with parameters {space[i]!r}: {message}",
        index=i, params=space[i], partial=partial,
    )


def _trace_failure(prepared: _Prepared, err: Exception) -> ModelError:
    """The error for a model that fails before any combination runs (while compiling).

    Tracing sees no parameter values, so if the first combination also fails
    without ``jit`` it is named; otherwise ``index`` and ``params`` are None:
    no combination is to blame.
    """
    found = _locate_failure(prepared, [0])
    if found is not None:
        i, cause = found
        return _failed_at(prepared.space, i, f"{type(cause).__name__}: {cause}")
    return ModelError(
        "the model could not be compiled, although its first combination runs without "
        "jit (is it traceable by JAX? Python control flow on a parameter is not; use "
        f"jax.lax.cond/jnp.where, or SequentialExecution(jit=False)): "
        f"{type(err).__name__}: {err}"
    )


def _locate_failure(
    prepared: _Prepared, indices: Sequence[int], seconds: float = 10.0
) -> tuple[int, Exception] | None:
    """Run combinations one by one, without jit, until one raises (for at most ``seconds``)."""
    space = prepared.space
    start = time.perf_counter()
    for i in indices:
        digits = space.index.unravel(i)
        values = [t[digits[j]] for t, j in zip(space._tables, space._axis_dim, strict=True)]
        try:
            prepared.call(values, prepared.state_arrays, prepared.extra_arrays)
        except Exception as err:  # noqa: BLE001 - any model failure is reported
            return i, err
        if time.perf_counter() - start > seconds:
            break
    return None


# ---------------------------------------------------------------------------
# sequential
# ---------------------------------------------------------------------------


class SequentialExecution:
    """Run a model on one combination at a time.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)`` returning a pytree of arrays or numbers.
    statespace : Space
        The combinations to run.
    *args
        Extra positional arguments, passed to the model unchanged.
    jit : bool, default True
        Compile the model once (the state has the same structure at every
        combination) and reuse it. ``False`` calls it as plain Python, e.g. a
        model that runs an external simulator.
    progress : bool, default True
        A tqdm progress bar when there is more than one combination.
    **kwargs
        Extra keyword arguments, passed to the model unchanged.

    Notes
    -----
    Arrays in the state and in the extra arguments are passed to the compiled
    function; other values (``dt=0.1``, strings) stay Python constants, as
    the model would see them without ``jit``. Each output is copied to the
    host while the next combination runs. A failing combination raises
    :class:`ModelError` naming its index and parameters, with the results
    finished so far in ``.partial``.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, SequentialExecution, Space
    >>> space = Space({"k": GridAxis(0.0, 1.0, 3)}, mode="product")
    >>> results = SequentialExecution(lambda s, c: s["k"] + c, space, 10.0, progress=False).run()
    >>> [float(r) for r in results]
    [10.0, 10.5, 11.0]
    """

    def __init__(
        self,
        model: Callable[..., Any],
        statespace: Space,
        *args: Any,
        jit: bool = True,
        progress: bool = True,
        **kwargs: Any,
    ) -> None:
        _check_model(model)
        self.model = model
        self.statespace = self.space = _check_space(statespace, "statespace")
        self.args = args
        self.kwargs = kwargs
        self.jit = _check_bool("jit", jit)
        self.progress = _check_bool("progress", progress)

    def run(self) -> Results:
        """Run every combination in flat order.

        Returns
        -------
        Results
        """
        space = self.space
        prepared = _Prepared(self.model, space, self.args, self.kwargs)
        state_arrays, extra_arrays = prepared.state_arrays, prepared.extra_arrays
        tables, axis_dim = space._tables, space._axis_dim
        if self.jit:  # fixed arrays go to the device once, not at every call
            state_arrays, extra_arrays = jax.device_put((state_arrays, extra_arrays))
            first = [t[0] for t in tables]
            shapes = signature([*first, *jax.tree.leaves((state_arrays, extra_arrays))])
            # the cache holds the compiled executable, which keeps no reference to the
            # model or the space (a jitted closure would keep both alive forever)
            try:
                fn = _cached(
                    self.model, ("sequential", prepared.token, shapes),
                    lambda: jax.jit(prepared.call).lower(first, state_arrays,
                                                         extra_arrays).compile(),
                )
            except Exception as err:
                raise _trace_failure(prepared, err) from err
        else:
            fn = prepared.call
        n = space.N
        arrays: list[np.ndarray] | None = None
        flats: list[np.ndarray] = []
        treedef = None
        shapes: list[tuple] = []
        n_done = 0  # combinations stored, in flat order
        pending: tuple[int, Any] | None = None

        def partial() -> Results | None:
            if arrays is None:
                return None
            done = np.zeros(n, dtype=bool)
            done[:n_done] = True
            done = done.reshape(space.shape)
            _blank_undone(arrays, done)
            return Results(space, treedef, arrays, done=done)

        def store(i: int, out: Any) -> None:
            nonlocal arrays, treedef, flats, shapes, n_done
            leaves, tdef = jax.tree.flatten(out)
            leaves = [_output_leaf(x) for x in leaves]
            if arrays is None:
                treedef, shapes = tdef, [(x.shape, x.dtype) for x in leaves]
                arrays = _empty_like(space, leaves)
                flats = [a.reshape((n, *a.shape[len(space.shape):])) for a in arrays]
            elif tdef != treedef or [(x.shape, x.dtype) for x in leaves] != shapes:
                raise ModelError(
                    f"the model's output changed at combination {i}: expected structure "
                    f"{treedef} with leaves {shapes}, got {tdef} with "
                    f"{[(x.shape, x.dtype) for x in leaves]}",
                    index=i, params=space[i], partial=partial(),
                )
            for flat, leaf in zip(flats, leaves, strict=True):
                flat[i] = leaf
            n_done = i + 1

        bar = tqdm(total=n, disable=not self.progress or n <= 1, unit="combination")
        try:
            for i in range(n):
                digits = space.index.unravel(i)
                values = [t[digits[j]] for t, j in zip(tables, axis_dim, strict=True)]
                try:
                    out = fn(values, state_arrays, extra_arrays)
                except Exception as err:
                    if pending is not None:
                        store(*pending)
                    message = f"{type(err).__name__}: {err}"
                    if self.jit:
                        found = _locate_failure(prepared, [i])
                        if found is None:
                            message = ("it fails only when compiled (run it with jit=False if it "
                                       f"is not traceable by JAX): {message}")
                    raise _failed_at(space, i, message, partial()) from err
                if pending is not None:
                    store(*pending)
                    bar.update(1)
                pending = (i, out)
            if pending is not None:
                store(*pending)
                bar.update(1)
        finally:
            bar.close()
        return Results(space, treedef, arrays)


# ---------------------------------------------------------------------------
# parallel
# ---------------------------------------------------------------------------

# one jitted function per (model, closed-over structure, block, vmap, devices)
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _block_shape(
    shape: Sequence[int], lanes: int, multiple: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split a grid into N-D blocks of about ``lanes`` points.

    Fills the fastest dimensions first, so blocks are contiguous runs of the
    flat index where they can be, and balances each dimension's blocks so the
    ragged last one wastes little. Returns the step between block origins and
    the compiled block shape, whose first entry may be larger so that the
    block's size is a multiple of ``multiple`` (the extra rows are real
    points of the next block, computed and dropped).
    """
    step = [1] * len(shape)
    room = max(1, lanes)
    for j in reversed(range(len(shape))):
        take = min(shape[j], room)
        nblocks = -(-shape[j] // take)
        step[j] = -(-shape[j] // nblocks)
        room = max(1, room // step[j])
    compiled = list(step)
    inner = math.prod(step[1:])
    unit = multiple // math.gcd(inner, multiple)
    compiled[0] = -(-step[0] // unit) * unit
    return tuple(step), tuple(compiled)


class ParallelExecution:
    """Run a model over a Space in vectorised, compiled blocks, across devices.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)``, traceable by JAX, returning a pytree
        of arrays or numbers.
    space : Space
        The combinations to run.
    *args
        Extra positional arguments for the model.
    n_vmap : int, optional
        Combinations vectorised together (``lax.map`` over batches of
        ``n_vmap`` inside a block). Default: the whole block at once, which is
        fastest unless one combination's intermediates are large.
    n_pmap : int, default 1
        Devices sharing every block (``jit`` with a ``NamedSharding`` over a
        1-D mesh of the first ``n_pmap`` devices).
    chunk_size : int, optional
        Combinations per compiled call. Default: chosen from the output size
        and ``max_memory`` (blocks in flight stay within a few percent of the
        results, so peak memory is about the results themselves).
    store : None
        Streaming to a zarr store on disk is not available in this version;
        anything but None is a ``ValueError``.
    progress : bool, default True
        A tqdm progress bar when there is more than one block.
    output_dims : dict, optional
        ``{output name: (dim, ...)}`` names for the outputs' own dimensions.
    max_memory : int, optional
        Bytes the blocks in flight may use. Default a quarter of the memory
        available when the run starts.
    **kwargs
        Extra keyword arguments for the model.

    Notes
    -----
    The grid is cut into N-D blocks (contiguous flat ranges where possible);
    each block's parameters are gathered inside the compiled call from the
    per-axis tables at its origin, so nothing of size N but the results is
    ever built. Blocks at the grid's edge are padded by repeating real
    points, which are computed and dropped. The next block is dispatched
    before the previous one is copied out. The compiled function is cached
    per (model, structure of the state and arguments, block, ``n_vmap``,
    devices) and reused by later runs and executors.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, ParallelExecution, Space, UniformAxis
    >>> space = Space({"k": GridAxis(0.0, 1.0, 4), "s": UniformAxis(0.0, 1.0, 3)}, mode="product")
    >>> results = ParallelExecution(lambda p: {"y": p["k"] * jnp.ones(2)}, space,
    ...                             progress=False).run()
    >>> results.to_xarray()["y"].shape
    (4, 3, 2)
    """

    def __init__(
        self,
        model: Callable[..., Any],
        space: Space,
        *args: Any,
        n_vmap: int | None = None,
        n_pmap: int = 1,
        chunk_size: int | None = None,
        store: Any = None,
        progress: bool = True,
        output_dims: dict[str, Sequence[str]] | None = None,
        max_memory: int | None = None,
        **kwargs: Any,
    ) -> None:
        _check_model(model)
        self.model = model
        self.space = _check_space(space, "space")
        self.args = args
        self.kwargs = kwargs
        self.n_vmap = _positive_int("n_vmap", n_vmap, allow_none=True)
        self.n_pmap = _positive_int("n_pmap", n_pmap)
        if self.n_pmap > jax.device_count():
            raise ValueError(
                f"n_pmap={self.n_pmap} exceeds the {jax.device_count()} available device(s); "
                "on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=K (set before jax "
                "is imported) gives K devices"
            )
        self.chunk_size = _positive_int("chunk_size", chunk_size, allow_none=True)
        if store is not None:
            raise ValueError(
                f"store={store!r}: streaming results to disk is not available in this version "
                "of labeled_spaces; run without store= and save with results.to_netcdf(path)"
            )
        self.max_memory = _positive_int("max_memory", max_memory, allow_none=True)
        self.progress = _check_bool("progress", progress)
        self.output_dims = output_dims

    # -- planning ---------------------------------------------------------
    def _available_memory(self) -> int:
        if self.max_memory is not None:
            return self.max_memory
        try:
            import psutil

            return int(psutil.virtual_memory().available * _MEMORY_FRACTION)
        except ImportError:  # pragma: no cover - psutil comes with distributed
            return 2**30

    def _initial_lanes(self, lane_bytes: int, result_bytes: int) -> int:
        """Combinations per call from the output size alone (refined by :meth:`_plan`)."""
        multiple = self.n_pmap * (self.n_vmap or 1)
        if self.chunk_size is not None:
            lanes = self.chunk_size
        else:
            budget = max(_BLOCK_SHARE * result_bytes, _MIN_BLOCK_BYTES)
            budget = min(budget, self._available_memory() / 2)
            lanes = int(min(_MAX_BLOCK, max(multiple, budget // max(lane_bytes, 1))))
        return max(1, min(lanes, self.space.N))

    def _plan(self, prepared: _Prepared, inputs: tuple, lanes: int) -> tuple[Any, ...]:
        """Block layout and compiled executable, shrinking blocks whose temporaries don't fit.

        XLA reports the scratch memory of a compiled block; a model with large
        intermediates (a stored time series it then averages) gets smaller
        blocks than its output alone would suggest.
        """
        # a block splits evenly across devices; lax.map runs a last short n_vmap batch
        multiple = self.n_pmap
        limit = self._available_memory() / 2
        for _ in range(8):
            step, block = _block_shape(self.space.shape, lanes, multiple)
            executable = self._compiled(prepared, block, inputs)
            try:
                temp = executable.memory_analysis().temp_size_in_bytes
            except Exception:  # noqa: BLE001 - not every backend reports it
                temp = 0
            smaller = max(1, int(lanes * limit / max(temp, 1) / 2))
            if self.chunk_size is not None or temp <= limit or smaller >= lanes or lanes == 1:
                break
            logger.info("block of %d lanes needs %.0f MB of scratch; trying %d", lanes,
                        temp / 1e6, smaller)
            lanes = smaller
        logger.info(
            "ParallelExecution: %d combinations in blocks of %s (%d lanes per call), "
            "n_vmap=%s, n_pmap=%d", self.space.N, block, math.prod(block),
            self.n_vmap, self.n_pmap,
        )
        return step, block, executable

    def _compiled(self, prepared: _Prepared, block: tuple[int, ...], inputs: tuple) -> Any:
        devices = tuple(d.id for d in jax.devices()[: self.n_pmap])
        shapes = signature(jax.tree.leaves(inputs))
        key = (prepared.token, self.space.index, self.space._axis_dim, block, self.n_vmap,
               devices, shapes)

        def build() -> Any:
            return self._build(prepared, block).lower(*inputs, self._origin_input((0,) * len(
                self.space.shape))).compile()

        return _cached(self.model, key, build)

    def _origin_input(self, origin: Sequence[int]) -> Any:
        origin = np.asarray(origin, dtype=np.int32)
        if self.n_pmap > 1:
            return jax.device_put(origin, self._replicated())
        return origin

    def _replicated(self) -> jax.sharding.NamedSharding:
        mesh = jax.sharding.Mesh(np.array(jax.devices()[: self.n_pmap]), ("devices",))
        return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    def _build(self, prepared: _Prepared, block: tuple[int, ...]) -> Callable:
        space, n_vmap, n_pmap = self.space, self.n_vmap, self.n_pmap
        lanes = math.prod(block)
        mesh = None
        if n_pmap > 1:
            mesh = jax.sharding.Mesh(np.array(jax.devices()[:n_pmap]), ("devices",))

        def lane(values, state_arrays, extra_arrays):
            return prepared.call(values, state_arrays, extra_arrays)

        per_device = lanes // n_pmap
        vectorised = jax.vmap(lane, in_axes=(0, None, None))

        def on_device(vals, state_arrays, extra_arrays):
            return jax.lax.map(lambda v: lane(v, state_arrays, extra_arrays), vals,
                               batch_size=n_vmap)

        def run_block(tables, state_arrays, extra_arrays, origin):
            values = _block_values(space, tables, origin, block)
            spec = None
            if mesh is not None:
                spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("devices"))
            if n_vmap is None or n_vmap >= per_device:
                # one flat vmap over all lanes (sharded across devices if n_pmap > 1):
                # a nested (devices, lanes) vmap makes XLA:CPU transpose inside the
                # model's loops (1.5x slower on the Kuramoto benchmark)
                if spec is not None:
                    values = [jax.lax.with_sharding_constraint(v, spec) for v in values]
                return vectorised(values, state_arrays, extra_arrays)
            # batches of n_vmap run one after another on each device
            values = [v.reshape((n_pmap, per_device, *v.shape[1:])) for v in values]
            if spec is not None:
                values = [jax.lax.with_sharding_constraint(v, spec) for v in values]
            out = jax.vmap(on_device, in_axes=(0, None, None))(values, state_arrays,
                                                                extra_arrays)
            return jax.tree.map(lambda x: x.reshape((lanes, *x.shape[2:])), out)

        return jax.jit(run_block)

    # -- running ------------------------------------------------------------
    def run(self) -> Results:
        """Run every combination.

        Returns
        -------
        Results

        Raises
        ------
        ModelError
            When the model fails; names the first failing combination.
        """
        space = self.space
        prepared = _Prepared(self.model, space, self.args, self.kwargs)
        tables = space.device_tables()
        # fixed arrays go to the device(s) once, not at every call
        target = self._replicated() if self.n_pmap > 1 else None
        tables, state_arrays, extra_arrays = jax.device_put(
            (tables, prepared.state_arrays, prepared.extra_arrays), target)

        # shape of one combination's output, without running anything; cached with the
        # compiled functions, so a later run of the same structure does not trace again
        lane_avals = [jax.ShapeDtypeStruct(t.shape[1:], t.dtype) for t in tables]
        try:
            one = _cached(
                self.model,
                ("output", prepared.token, tuple((a.shape, str(a.dtype)) for a in lane_avals)),
                lambda: jax.eval_shape(prepared.call, lane_avals, state_arrays, extra_arrays),
            )
        except Exception as err:
            raise _trace_failure(prepared, err) from err
        out_leaves, treedef = jax.tree.flatten(one)
        # validate output_dims before any work is done
        _check_output_dims(self.output_dims, output_names(treedef),
                           [tuple(x.shape) for x in out_leaves], space)
        lane_bytes = sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in out_leaves)
        lane_bytes += sum(int(np.prod(t.shape[1:])) * t.dtype.itemsize for t in tables)
        lane_bytes += 8 * len(space.shape)
        inputs = (tables, state_arrays, extra_arrays)
        try:
            step, block, fn = self._plan(
                prepared, inputs, self._initial_lanes(lane_bytes, lane_bytes * space.N))
        except Exception as err:
            raise _trace_failure(prepared, err) from err
        arrays = _empty_like(space, out_leaves)
        finished: list[tuple[int, ...]] = []  # block origins written (a mask only on failure)

        origins = itertools.product(*[range(0, s, b) for s, b in zip(space.shape, step,
                                                                    strict=True)])
        n_blocks = math.prod(-(-s // b) for s, b in zip(space.shape, step, strict=True))
        bar = tqdm(total=space.N, disable=not self.progress or n_blocks <= 1,
                   unit="combination")
        pending = None

        def fail(err: Exception, origin: tuple[int, ...]) -> ModelError:
            done = self._done_mask(finished, step)
            _blank_undone(arrays, done)
            partial = Results(space, treedef, arrays, output_dims=self.output_dims, done=done)
            # the compiled block also runs the first rows of the next one (see _block_shape)
            return self._failure(prepared, err, _region_indices(space, origin, block), partial)

        def write(pending: tuple[tuple[int, ...], Any]) -> int:
            # an accelerator may report a failure only when the block is copied out
            try:
                return self._write(arrays, finished, *pending, step, block)
            except Exception as err:
                raise fail(err, pending[0]) from err

        try:
            for origin in origins:
                try:
                    out = fn(tables, state_arrays, extra_arrays, self._origin_input(origin))
                except Exception as err:
                    if pending is not None:  # keep the block before the failing one
                        with contextlib.suppress(Exception):
                            self._write(arrays, finished, *pending, step, block)
                    raise fail(err, origin) from err
                if pending is not None:
                    bar.update(write(pending))
                pending = (origin, out)
            if pending is not None:
                bar.update(write(pending))
        finally:
            bar.close()
        return Results(space, treedef, arrays, output_dims=self.output_dims)

    def _done_mask(self, finished: Sequence[tuple[int, ...]], step: Sequence[int]) -> np.ndarray:
        done = np.zeros(self.space.shape, dtype=bool)
        for origin in finished:
            done[tuple(slice(o, o + b) for o, b in zip(origin, step, strict=True))] = True
        return done

    def _write(self, arrays, finished, origin, out, step, block) -> int:
        shape = self.space.shape
        extent = tuple(min(b, s - o) for o, b, s in zip(origin, step, shape, strict=True))
        region = tuple(slice(o, o + e) for o, e in zip(origin, extent, strict=True))
        cut = tuple(slice(0, e) for e in extent)
        for array, leaf in zip(arrays, jax.tree.leaves(out), strict=True):
            host = np.asarray(leaf)
            array[region] = host.reshape(block + host.shape[1:])[cut]
        finished.append(origin)
        return math.prod(extent)

    def _failure(self, prepared: _Prepared, err: Exception, indices: Sequence[int],
                 partial: Results | None) -> ModelError:
        found = _locate_failure(prepared, indices)
        space = self.space
        if found is not None:
            i, cause = found
            return _failed_at(space, i, f"{type(cause).__name__}: {cause}", partial)
        first = indices[0] if len(indices) else None
        return ModelError(
            f"the compiled model failed on the block starting at combination {first}, "
            f"although each of its combinations runs alone without jit: "
            f"{type(err).__name__}: {err}",
            index=first, params=space[first] if first is not None else None, partial=partial,
        )


def _cached(model: Callable, key: Any, build: Callable[[], Any]) -> Any:
    """What ``build()`` made for ``(model, key)``, made once while the model lives."""
    try:
        per_model = _COMPILED.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no reuse across runs
        per_model = {}
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _region_indices(space: Space, origin: Sequence[int], step: Sequence[int]) -> list[int]:
    """Flat indices of a block's real points, in flat order."""
    ranges = [range(o, min(o + b, s)) for o, b, s in zip(origin, step, space.shape, strict=True)]
    return [space.index.ravel(d) for d in itertools.product(*ranges)]


def _block_values(space: Space, tables: Sequence[jax.Array], origin: jax.Array,
                  block: Sequence[int]) -> list[jax.Array]:
    """Per-axis values of an N-D block, flattened to ``(prod(block), ...)`` lanes.

    Each axis gathers only its own dimension's ``block[j]`` points and is
    broadcast over the others, which XLA fuses into the model: no per-lane
    index arithmetic at all.
    """
    lanes = math.prod(block)
    out = []
    for table, j in zip(tables, space._axis_dim, strict=True):
        size = space.shape[j]
        picks = jnp.minimum(origin[j] + jnp.arange(block[j], dtype=jnp.int32), size - 1)
        small = table[picks]
        vshape = small.shape[1:]
        expand = [1] * len(block)
        expand[j] = block[j]
        small = small.reshape((*expand, *vshape))
        out.append(jnp.broadcast_to(small, (*block, *vshape)).reshape((lanes, *vshape)))
    return out

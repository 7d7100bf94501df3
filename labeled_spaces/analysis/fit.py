"""Multi-start fits: an optax loop in ``lax.scan`` from every combination of a Space.

The analysis is a Program (:func:`fitting`): its lane starts from the axis
values it receives, runs ``steps`` updates in one ``lax.scan`` and returns
the fitted values and the loss at them; its labels give the loss trace a
``step`` dimension, and its settings (the optimizer, as a digest of its
traced ``init`` and ``update``, ``steps``, ``record_every``, ``has_aux`` and
``wrt``) are part of the run identity, so a store made by another fit is
refused naming what differs. The executors run it with ``program=`` and
vectorise it over the starts of each block, so ``n_vmap``, sharding, stores,
resume and dask work as for any run. :class:`FitResults` adds ``best()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._caches import ProgramCache
from .._checks import check_bool, check_callable, check_positive_int, fail
from ..execution import Labels, ParallelExecution, Program
from ..results.fitted import FitResults
from ..results.identity import program_fingerprint
from ..space import Space, check_space
from .parameters import Parameter, choose, with_leaves
from .program import UnusableOutputs, run_program

__all__ = ["STEP", "FitResults", "fit", "fitting", "optimizer_digest"]

#: the dimension of the recorded loss trace
STEP = "step"

# one Program per (loss, axes, settings): the executors cache compiled programs per
# model and Program, so repeating a fit with the same loss compiles nothing. Kept per
# loss (weakly), as those compiled programs are, since the key holds the optimizer
_PROGRAMS = ProgramCache("fit programs")


@functools.cache
def _default_optimizer() -> Any:
    import optax

    return optax.adam(1e-2)


def _described(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{jnp.result_type(value)}{list(jnp.shape(value))}"
    return f"{type(value).__name__} {jax.tree.structure(value)}"


def _check_loss(out: Any, has_aux: bool) -> None:
    """An :class:`UnusableOutputs` for a loss that is not a floating scalar (or pair)."""
    value = out
    if has_aux:
        if not isinstance(out, tuple) or len(out) != 2:
            raise UnusableOutputs("with has_aux=True, loss must return a pair (value, aux), "
                                  f"got {jax.tree.structure(out)}")
        value = out[0]
    if not hasattr(value, "dtype") or jnp.shape(value) != () or not jnp.issubdtype(
            jnp.result_type(value), jnp.floating):
        raise UnusableOutputs(
            "loss must return a floating scalar" + (" as the first of (value, aux)"
                                                    if has_aux else "")
            + f", got {_described(value)}"
            + ("" if has_aux else "; with an aux output, pass has_aux=True"))


def _stand_in_loss(params: tuple) -> Any:
    """A loss for tracing an optimizer that calls one (``value_fn``): any fixed function does."""
    return sum(jnp.sum(jnp.square(p)) for p in params)


def _update(optimizer: Any, grads: tuple, state: Any, params: tuple, value: Any,
            value_fn: Callable[[tuple], Any]) -> Any:
    """One update as a fit makes it (``optimizer.update``'s ``(updates, state)``).

    Transformations that take extra arguments (line searches such as
    ``optax.lbfgs``, ``reduce_on_plateau``) get the loss's value, its
    gradient and the loss itself (``value_fn``), as optax documents for them;
    the others get none.
    """
    import optax

    if isinstance(optimizer, optax.GradientTransformationExtraArgs):
        return optimizer.update(grads, state, params, value=value, grad=grads,
                                value_fn=value_fn)
    return optimizer.update(grads, state, params)


def optimizer_digest(optimizer: Any, params: Sequence[Any]) -> str:
    """A digest of what ``optimizer`` computes: its ``init`` and ``update`` as JAX traces them.

    Traced on ``params`` (arrays or ``jax.ShapeDtypeStruct``: only their
    shapes and dtypes count), the way a fit calls them, so every
    hyperparameter counts wherever it lives: a learning rate closed over, a
    schedule, an ``inject_hyperparams`` state. Two optimizers with the same
    digest update alike. Another JAX or optax version may trace the same
    optimizer differently.

    Raises
    ------
    ValueError
        ``optimizer`` cannot be traced on ``params``.

    Examples
    --------
    >>> import jax, optax
    >>> from labeled_spaces.analysis.fit import optimizer_digest
    >>> params = [jax.ShapeDtypeStruct((), "float32")]
    >>> optimizer_digest(optax.adam(1e-2), params) == optimizer_digest(optax.adam(1e-2), params)
    True
    >>> optimizer_digest(optax.adam(1e-2), params) == optimizer_digest(optax.adam(1e-3), params)
    False
    """
    params = tuple(jax.ShapeDtypeStruct(jnp.shape(p), jnp.result_type(p)) for p in params)

    def update(grads: tuple, state: Any, at: tuple) -> Any:  # as the lane calls it
        return _update(optimizer, grads, state, at, _stand_in_loss(at), _stand_in_loss)

    try:
        init = jax.make_jaxpr(optimizer.init)(params)
        state = jax.eval_shape(optimizer.init, params)
        step = jax.make_jaxpr(update)(params, state, params)
    except Exception as err:
        fail("optimizer", "an optax GradientTransformation that JAX traces on the fitted "
             f"parameters {[f'{p.dtype}{list(p.shape)}' for p in params]}", optimizer,
             detail=f" ({type(err).__name__}: {err})")
    return program_fingerprint(f"{init}\n{step}", [*init.consts, *step.consts])


def fitting(indices: Sequence[int], names: Sequence[str], optimizer: Any, steps: int,
            record_every: int | None = None, has_aux: bool = False,
            params: Sequence[Any] | None = None) -> Program:
    """The Program of a fit that starts at the axis values its lane receives.

    The lane takes the axis values at ``indices`` as the parameters, runs
    ``steps`` updates of ``optimizer`` (value and gradient of the loss, the
    model, ``optimizer.update`` (with ``value=``, ``grad=`` and ``value_fn=``
    for a ``GradientTransformationExtraArgs``), ``optax.apply_updates``) in one
    ``lax.scan`` and returns ``{"{name}_fit": parameter, ..., "loss": loss at
    the fitted parameters}``, plus ``"aux"`` (with ``has_aux``, at the fitted
    parameters) and ``"loss_trace"`` (with ``record_every=k``: the loss before
    the updates of steps ``0, k, 2k, ...``, dimension ``step``). The labels
    record ``steps`` and ``record_every`` in the attrs of ``loss``, so that a
    store made with other settings is refused rather than resumed. A loss
    that is not a floating scalar raises
    :class:`~labeled_spaces.analysis.program.UnusableOutputs` when the lane is
    traced.

    Parameters
    ----------
    indices : sequence of int
        Which of the lane's axis values (the space's axes, in order) are fitted.
    names : sequence of str
        Their names (the outputs ``{name}_fit``).
    optimizer : optax.GradientTransformation
        The update rule.
    steps : int
        Updates per start.
    record_every : int, optional
        Record the loss trace every ``record_every`` steps.
    has_aux : bool, default False
        The model returns ``(loss, aux)``.
    params : sequence of arrays or jax.ShapeDtypeStruct, optional
        The fitted parameters' shapes and dtypes, on which the optimizer is
        traced for its digest (:func:`optimizer_digest`). Default: a float32
        scalar each; give them for an optimizer that depends on the
        parameters' shapes (``optax.multi_transform``, ``optax.masked``).
        :func:`fit` gives them.

    Examples
    --------
    >>> import optax
    >>> from labeled_spaces import GridAxis, ParallelExecution, Space
    >>> space = Space({"x": GridAxis(0.0, 1.0, 2), "c": 3.0}, mode="product")
    >>> program = fitting([0], ["x"], optax.sgd(0.25), 20, record_every=10)
    >>> ds = ParallelExecution(lambda s: (s["x"] - s["c"]) ** 2, space, program=program,
    ...                        progress=False).run().to_xarray()
    >>> ds["x_fit"].round(4).values.tolist(), ds["loss_trace"].dims, ds["step"].values.tolist()
    ([3.0, 3.0], ('x', 'step'), [0, 10])
    """
    import optax

    indices, names = tuple(indices), tuple(names)
    if params is None:
        params = [jax.ShapeDtypeStruct((), jnp.float32) for _ in names]
    settings = (("analysis", "fit"), ("wrt", names),
                ("optimizer", optimizer_digest(optimizer, params)), ("steps", steps),
                ("record_every", record_every), ("has_aux", has_aux))
    def lane(call: Callable[..., Any], axis_values: Sequence[Any], state_arrays: Sequence[Any],
             extra_arrays: Sequence[Any]) -> dict[str, Any]:
        start = tuple(jnp.asarray(axis_values[k]) for k in indices)

        def objective(params: tuple) -> tuple[Any, Any]:
            out = call(with_leaves(axis_values, indices, params), state_arrays, extra_arrays)
            _check_loss(out, has_aux)  # at trace time: the loss's shape and dtype are known
            return out if has_aux else (out, None)

        value_and_grad = jax.value_and_grad(objective, has_aux=True)

        def value_fn(params: tuple) -> Any:
            return objective(params)[0]

        def step(carry: tuple, _: Any) -> tuple[tuple, Any]:
            params, opt_state = carry
            (value, _aux), grads = value_and_grad(params)
            updates, opt_state = _update(optimizer, grads, opt_state, params, value, value_fn)
            return (optax.apply_updates(params, updates), opt_state), (
                value if record_every else None)

        (params, _), trace = jax.lax.scan(step, (start, optimizer.init(start)), None,
                                          length=steps)
        value, aux = objective(params)
        out = {f"{name}_fit": p for name, p in zip(names, params, strict=True)}
        out["loss"] = value
        if has_aux:
            out["aux"] = aux
        if record_every:
            out["loss_trace"] = trace[::record_every]
        return out

    def labels(outputs: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> Labels:
        if not record_every:
            return Labels()
        return Labels(dims={"loss_trace": (STEP,)},
                      coords={STEP: np.arange(0, steps, record_every)})

    return Program(lane, labels, settings)


def _check_labels(record_every: int | None, output_dims: Any, output_coords: Any) -> None:
    """Refuse output labels for what fit labels itself: the loss trace's ``step``."""
    if not record_every:
        return
    if isinstance(output_dims, Mapping) and "loss_trace" in output_dims:
        raise ValueError(f"output_dims names 'loss_trace', whose dimension fit sets to {STEP!r}")
    if isinstance(output_coords, Mapping) and STEP in output_coords:
        raise ValueError(f"output_coords names {STEP!r}, which fit sets to the recorded steps")


def _check_names(space: Space, names: Sequence[str], record_every: int | None,
                 has_aux: bool) -> None:
    """Refuse coordinates of the space that fit's own variables or ``step`` would take."""
    ours = {f"{name}_fit" for name in names} | {"loss"}
    if record_every:
        ours |= {"loss_trace", STEP}
    for name in sorted(space.coord_names):
        if name in ours or (has_aux and (name == "aux" or name.startswith(("aux.", "aux[")))):
            fail("space", "a space whose coordinates are named other than fit's variables "
                 f"{sorted(ours | ({'aux'} if has_aux else set()))}", name,
                 detail=" (a coordinate of the space: rename that axis with name=)")


def _fittable(p: Parameter) -> str | None:
    if p.data:
        return "is a DataAxis: its values are conditions of a start, not parameters"
    if p.keys:
        return "is a KeyAxis: replicate PRNG keys, conditions of a start, not parameters"
    if not p.floating:
        return f"has {p.dtype} values, which cannot be optimised"
    return None


def fit(loss: Callable[..., Any], space: Space, *args: Any, optimizer: Any = None,
        steps: int = 1000, record_every: int | None = None, has_aux: bool = False,
        wrt: Any = None, executor: Callable[..., Any] = ParallelExecution,
        **options: Any) -> FitResults:
    """Minimise ``loss`` from every combination of ``space`` (a multi-start fit).

    Every combination is a start; the fitted parameters are the axes named in
    ``wrt``. Each start runs ``steps`` updates of ``optimizer`` in one
    ``lax.scan``; the executor vectorises the starts of each block (as
    ``jit(vmap(scan(...)))`` by hand would), so ``n_vmap``, ``n_pmap``,
    ``store=`` (and resume) and ``DaskExecution`` work as for any run.

    Parameters
    ----------
    loss : callable
        ``loss(state, *args, **kwargs)`` returning a floating scalar (or
        ``(scalar, aux)`` with ``has_aux``); differentiable in the fitted leaves.
    space : Space
        The starts.
    *args
        Extra positional arguments for ``loss`` (e.g. the data to fit).
    optimizer : optax.GradientTransformation, optional
        Default ``optax.adam(1e-2)``. One that takes extra arguments
        (``optax.lbfgs()``, ``optax.contrib.reduce_on_plateau``) gets
        ``value=``, ``grad=`` and ``value_fn=`` (the loss at given
        parameters); an ``optax.MultiSteps`` is used through its
        ``gradient_transformation()``.
    steps : int, default 1000
        Updates per start.
    record_every : int, optional
        Record the loss before the updates of steps ``0, k, 2k, ...`` as
        ``loss_trace`` (dimension ``step``).
    has_aux : bool, default False
        ``loss`` returns ``(value, aux)``; the aux at the fitted parameters is
        returned under ``aux`` (``aux.<path>`` for a pytree).
    wrt : str or sequence of str, optional
        The axes to fit. Default: every axis with floating values other than
        a ``DataAxis`` (which stays a condition of each start, like the fixed
        leaves). A ``shape=`` axis is fitted with its full shape. A sub-space
        (``isel``, ``sel``, a slice) holds the points it kept as DataAxis;
        those of another kind of axis (a grid, draws, a design:
        ``Space.selected_from``) are fitted as that axis would be.
    executor : class, default ParallelExecution
        ``SequentialExecution``, ``ParallelExecution`` or ``DaskExecution``.
    **options
        The executor's options and ``loss``'s keyword arguments, as for ``run()``.

    Returns
    -------
    FitResults
        Variables ``{axis}_fit`` (the fitted values, full shape; the start
        value stays coordinate ``{axis}``), ``loss`` (at the fitted
        parameters), ``aux...`` and ``loss_trace`` as asked; ``best()``.

    Raises
    ------
    ValueError
        ``steps`` or ``record_every`` not positive; ``wrt`` naming an unknown
        axis, a ``DataAxis`` or non-floating values; a loss that is not a
        floating scalar; an axis named like one of fit's variables
        (``loss``, ``{axis}_fit``, ``aux``, ``loss_trace``, ``step``); an
        optimizer that JAX cannot trace on the fitted parameters; a
        ``store=`` made by another fit: another ``optimizer`` (its traced
        ``init`` and ``update``, so also another learning rate), ``steps``,
        ``record_every``, ``has_aux`` or ``wrt`` (named in the message; the
        store is left as it is).
    TypeError
        ``optimizer`` is not an optax ``GradientTransformation``.

    Examples
    --------
    >>> import optax
    >>> from labeled_spaces import GridAxis, Space, fit
    >>> space = Space({"x": GridAxis(-2.0, 2.0, 5), "target": 0.5}, mode="product")
    >>> results = fit(lambda s: (s["x"] - s["target"]) ** 2, space, steps=100,
    ...               optimizer=optax.sgd(0.1), record_every=50, progress=False)
    >>> ds = results.to_xarray()
    >>> sorted(ds.data_vars), ds["loss_trace"].dims
    (['loss', 'loss_trace', 'x_fit'], ('x', 'step'))
    >>> bool(abs(ds["x_fit"] - 0.5).max() < 1e-4)
    True
    """
    import optax

    check_callable("loss", loss)
    check_space(space)
    if optimizer is None:
        optimizer = _default_optimizer()
    if not isinstance(optimizer, optax.GradientTransformation) and callable(
            getattr(optimizer, "gradient_transformation", None)):
        optimizer = optimizer.gradient_transformation()  # optax.MultiSteps
    if not isinstance(optimizer, optax.GradientTransformation):
        fail("optimizer", "an optax GradientTransformation (e.g. optax.adam(1e-2))",
             optimizer, TypeError)
    steps = int(check_positive_int("steps", steps) or 0)  # never None: allow_none=False
    record_every = check_positive_int("record_every", record_every, allow_none=True)
    has_aux = check_bool("has_aux", has_aux)
    chosen = choose(space, wrt, _fittable, lambda p: _fittable(p) is None)
    _check_labels(record_every, options.get("output_dims"), options.get("output_coords"))
    indices = tuple(p.index for p in chosen)
    names = tuple(p.name for p in chosen)
    _check_names(space, names, record_every, has_aux)
    # the optimizer is traced on the fitted parameters as the lane will hold them
    params = tuple(jax.ShapeDtypeStruct(p.value_shape, jax.dtypes.canonicalize_dtype(p.dtype))
                   for p in chosen)
    key = ("fit", indices, names, optimizer, steps, record_every, has_aux, params)

    def build() -> Program:
        return fitting(indices, names, optimizer, steps, record_every, has_aux, params)

    try:
        hash(key)
    except TypeError:  # an optimizer holding unhashable values: no reuse
        program = build()
    else:
        program = _PROGRAMS.get(loss, key, build)
    results = run_program(executor, loss, space, args, program, options)
    return FitResults.of(results, names)

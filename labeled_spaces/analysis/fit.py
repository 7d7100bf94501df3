"""Multi-start fits: an optax loop in ``lax.scan`` from every combination of a Space.

The analysis is a transformation of the loss into a lane function
(:func:`fit_lane`: init, ``steps`` updates in one ``lax.scan``, the loss at
the fitted parameters) plus its labels (:func:`fit_labels`). The executors
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
from ..execution import ParallelExecution
from ..results import Results
from ..space import Space
from .parameters import Parameter, choose, with_leaves
from .program import ModelRef, first_output_shapes, like_model, model_keywords

__all__ = ["STEP", "FitResults", "fit", "fit_labels", "fit_lane"]

#: the dimension of the recorded loss trace
STEP = "step"

# one lane function per (loss, structure, settings): the executors cache compiled
# programs per lane function, so repeating a fit with the same loss compiles nothing
_LANES = ProgramCache("fit lanes")


@functools.cache
def _default_optimizer() -> Any:
    import optax

    return optax.adam(1e-2)


def fit_lane(loss: Callable[..., Any] | ModelRef, treedef: Any, positions: Sequence[int],
             names: Sequence[str], optimizer: Any, steps: int, record_every: int | None,
             has_aux: bool) -> Callable[..., Any]:
    """``loss`` as the lane function of a fit that starts at the state it is given.

    ``lane(state, *args, **kwargs)`` takes the leaves at ``positions`` as the
    parameters, runs ``steps`` updates of ``optimizer`` (value and gradient of
    ``loss``, ``optimizer.update``, ``optax.apply_updates``) in one
    ``lax.scan`` and returns ``{"{name}_fit": parameter, ..., "loss": loss at
    the fitted parameters}``, plus ``"aux"`` (with ``has_aux``, at the fitted
    parameters) and ``"loss_trace"`` (with ``record_every=k``: the loss before
    the updates of steps ``0, k, 2k, ...``).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> treedef = jax.tree.structure({"x": 0, "c": 0})
    >>> lane = fit_lane(lambda s: (s["x"] - s["c"]) ** 2, treedef, [1], ["x"],
    ...                 optax.sgd(0.25), 20, None, False)
    >>> out = lane({"x": jnp.float32(0.0), "c": 3.0})
    >>> round(float(out["x_fit"]), 4), float(out["loss"]) < 1e-8
    (3.0, True)
    """
    import optax

    positions = tuple(positions)
    ref = loss if isinstance(loss, ModelRef) else ModelRef(loss)

    def lane(state: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        loss = ref()
        leaves = treedef.flatten_up_to(state)
        start = tuple(jnp.asarray(leaves[p]) for p in positions)

        def objective(params: tuple) -> tuple[Any, Any]:
            out = loss(treedef.unflatten(with_leaves(leaves, positions, params)),
                       *args, **kwargs)
            return out if has_aux else (out, None)

        value_and_grad = jax.value_and_grad(objective, has_aux=True)

        def step(carry: tuple, _: Any) -> tuple[tuple, Any]:
            params, opt_state = carry
            (value, _aux), grads = value_and_grad(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
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

    return like_model(lane, ref())


def fit_labels(steps: int, record_every: int | None, output_dims: Any, output_coords: Any,
               output_attrs: Any) -> tuple[Any, Any, Any]:
    """The executor's ``output_dims``, ``output_coords`` and ``output_attrs`` for a fit lane.

    ``loss_trace`` gets the dimension ``step`` (coordinate ``0, k, 2k, ...``);
    ``loss`` records ``steps`` and ``record_every`` in its attrs, so that a
    store made with other settings is refused rather than resumed.

    Examples
    --------
    >>> dims, coords, attrs = fit_labels(10, 5, None, None, None)
    >>> dims, coords["step"].tolist(), attrs
    ({'loss_trace': ('step',)}, [0, 5], {'loss': {'steps': 10, 'record_every': 5}})
    """
    if not all(isinstance(o, Mapping | None) for o in (output_dims, output_coords,
                                                         output_attrs)):
        return output_dims, output_coords, output_attrs  # the executor says what is wrong
    dims, coords, attrs = dict(output_dims or {}), dict(output_coords or {}), dict(
        output_attrs or {})
    if record_every:
        if "loss_trace" in dims:
            raise ValueError("output_dims names 'loss_trace', whose dimension fit sets to "
                             f"{STEP!r}")
        if STEP in coords:
            raise ValueError(f"output_coords names {STEP!r}, which fit sets to the recorded "
                             "steps")
        dims["loss_trace"] = (STEP,)
        coords[STEP] = np.arange(0, steps, record_every)
    settings = {"steps": steps, "record_every": record_every or 0}
    attrs["loss"] = {**settings, **dict(attrs.get("loss") or {})}
    return dims, coords, attrs


def _fittable(p: Parameter) -> str | None:
    if p.data:
        return "is a DataAxis: its values are conditions of a start, not parameters"
    if not p.floating:
        return f"has {p.dtype} values, which cannot be optimised"
    return None


def _check_loss_output(shapes: Any, has_aux: bool) -> None:
    if shapes is None:
        return  # tracing failed: the executor reports it with the combination
    value = shapes
    if has_aux:
        if not isinstance(shapes, tuple) or len(shapes) != 2:
            raise ValueError("with has_aux=True, loss must return a pair (value, aux), got "
                             f"{jax.tree.structure(shapes)}")
        value = shapes[0]
    if not hasattr(value, "shape") or value.shape != () or not jnp.issubdtype(
            value.dtype, jnp.floating):
        raise ValueError(
            "loss must return a floating scalar" + (" as the first of (value, aux)"
                                                    if has_aux else "")
            + f", got {value}" + ("" if has_aux else "; with an aux output, pass has_aux=True"))


class FitResults(Results):
    """Results of :func:`fit`, with :meth:`best`.

    Attributes
    ----------
    fitted : tuple of str
        The names of the fitted axes (variables ``{name}_fit``).
    """

    fitted: tuple[str, ...] = ()

    @classmethod
    def of(cls, results: Results, fitted: Sequence[str]) -> FitResults:
        """``results`` (of a fit lane) as FitResults, sharing their arrays."""
        out = cls.from_outputs(results.space, results.outputs, results.arrays, results.done)
        assert isinstance(out, FitResults)
        out.fitted = tuple(fitted)
        return out

    def best(self) -> Any:
        """The fitted state of the start with the lowest final loss.

        The state pytree (fixed leaves included) with every fitted axis
        replaced by its fitted value (a JAX array) and every other axis by
        that start's value. Starts whose loss is NaN are skipped.

        Raises
        ------
        ValueError
            Every final loss is NaN.

        Examples
        --------
        >>> import optax
        >>> from labeled_spaces import GridAxis, Space, fit
        >>> space = Space({"x": GridAxis(-2.0, 2.0, 3), "c": 1.0}, mode="product")
        >>> results = fit(lambda s: (s["x"] ** 2 - s["c"]) ** 2, space, steps=200,
        ...               optimizer=optax.sgd(0.05), progress=False)
        >>> best = results.best()
        >>> round(abs(float(best["x"])), 3), best["c"]
        (1.0, 1.0)
        """
        names = self.outputs.names
        final = np.asarray(self.arrays[list(names).index("loss")]).reshape(-1)
        if np.all(np.isnan(final)):
            raise ValueError("every start's final loss is NaN: no best fit")
        i = int(np.nanargmin(final))
        point = self[i]
        layout = self.space.layout
        positions = [layout.axis_positions[self.space.names.index(n)] for n in self.fitted]
        values = [jnp.asarray(point[f"{n}_fit"]) for n in self.fitted]
        leaves = layout.treedef.flatten_up_to(self.space[i])
        return layout.treedef.unflatten(with_leaves(leaves, positions, values))


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
        Default ``optax.adam(1e-2)``.
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
        leaves). A ``shape=`` axis is fitted with its full shape.
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
        floating scalar.
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
    if not isinstance(space, Space):
        raise TypeError(f"space must be a labeled_spaces.Space, got {type(space).__name__}")
    if optimizer is None:
        optimizer = _default_optimizer()
    if not isinstance(optimizer, optax.GradientTransformation):
        fail("optimizer", "an optax GradientTransformation (e.g. optax.adam(1e-2))",
             optimizer, TypeError)
    steps = int(check_positive_int("steps", steps) or 0)  # never None: allow_none=False
    record_every = check_positive_int("record_every", record_every, allow_none=True)
    has_aux = check_bool("has_aux", has_aux)
    chosen = choose(space, wrt, _fittable, lambda p: _fittable(p) is None)
    names = tuple(p.name for p in chosen)
    positions = tuple(p.position for p in chosen)
    _check_loss_output(first_output_shapes(loss, space, args,
                                           model_keywords(executor, options)), has_aux)
    dims, coords, attrs = fit_labels(steps, record_every, options.pop("output_dims", None),
                                     options.pop("output_coords", None),
                                     options.pop("output_attrs", None))
    treedef = space.layout.treedef
    key = ("fit", treedef, positions, names, optimizer, steps, record_every, has_aux)
    def build() -> Callable[..., Any]:
        return fit_lane(ModelRef(loss, weak=True), treedef, positions, names, optimizer,
                        steps, record_every, has_aux)

    try:
        hash(key)
    except TypeError:  # an optimizer holding unhashable values: no reuse
        lane = fit_lane(loss, treedef, positions, names, optimizer, steps, record_every,
                        has_aux)
    else:
        lane = _LANES.get(loss, key, build)
    results = executor(lane, space, *args, output_dims=dims, output_coords=coords,
                       output_attrs=attrs, **options).run()
    return FitResults.of(results, names)

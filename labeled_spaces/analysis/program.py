"""An analysis as a program for the executors: a lane function and the labels it adds.

Every analysis here transforms the user's model (or loss) into a *lane
function* ``lane(state, *args, **kwargs)`` of one combination's state, as
executors call a model, and says how to label what it returns (the
executors' ``output_dims``, ``output_coords`` and ``output_attrs``). The
executors then run it like any model: blocks, ``n_vmap``, sharding, stores,
resume and dask work unchanged. This module holds what every such
transformation needs to look like the model it wraps.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._caches import ProgramCache
from ..space import Space

__all__ = ["ModelRef", "first_output_shapes", "like_model", "model_keywords"]

# the output shapes of a model per structure of its inputs (what first_output_shapes traced)
_SHAPES = ProgramCache("analysis output shapes")


class ModelRef:
    """The user's model as a lane function holds it: strongly, or weakly for a cache.

    Lane functions may be cached per model (weak keys), so that repeating an
    analysis with the same model reuses the executors' compiled programs. A
    cached lane that held its model strongly would keep that key alive for
    ever; it holds ``ModelRef(model, weak=True)`` instead, weak where the
    model allows it (the cache then drops the lane with the model).
    Pickling (dask) always takes the model itself along.

    Examples
    --------
    >>> def model(state):
    ...     return state
    >>> ModelRef(model)() is model, ModelRef(model, weak=True)() is model
    (True, True)
    """

    def __init__(self, model: Callable[..., Any], weak: bool = False) -> None:
        self._ref: Callable[[], Any] = lambda: model
        if weak:
            try:
                self._ref = weakref.ref(model)
            except TypeError:  # not weakly referenceable: no cache holds it either
                pass

    def __call__(self) -> Callable[..., Any]:
        model = self._ref()
        if model is None:
            raise ReferenceError("the model of this analysis no longer exists")
        return model

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return ModelRef, (self(),)


def like_model(lane: Callable[..., Any], model: Callable[..., Any]) -> Callable[..., Any]:
    """``lane`` with the signature and name of ``model``, returned.

    The executors check the keywords they pass on against the model's
    signature (a typo is a ``TypeError`` naming the nearest option) and name
    the model in their messages; a lane that wraps the model keeps both.

    Examples
    --------
    >>> import inspect
    >>> def model(state, n_steps=10):
    ...     return state
    >>> lane = like_model(lambda state, *args, **kwargs: state, model)
    >>> str(inspect.signature(lane)), lane.__name__
    ('(state, n_steps=10)', 'model')
    """
    try:
        lane.__signature__ = inspect.signature(model)  # type: ignore[attr-defined]
    except (TypeError, ValueError):  # builtins: nothing to check
        pass
    lane.__name__ = getattr(model, "__name__", type(model).__name__)
    return lane


def model_keywords(executor: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` that are not the executor's own (the model's keywords).

    Examples
    --------
    >>> from labeled_spaces import ParallelExecution
    >>> model_keywords(ParallelExecution, {"n_vmap": 4, "n_steps": 10})
    {'n_steps': 10}
    """
    try:
        own = set(inspect.signature(executor).parameters)
    except (TypeError, ValueError):
        own = set()
    return {k: v for k, v in options.items() if k not in own}


def _token(leaves: list[Any]) -> tuple[Hashable, ...] | None:
    """What an output's shapes can depend on: arrays by shape and dtype, the rest by value."""
    token: list[Hashable] = []
    for x in leaves:
        if isinstance(x, jax.Array | np.ndarray):
            token.append(("array", np.shape(x), str(x.dtype), type(x).__name__))
            continue
        try:
            hash(x)
        except TypeError:
            return None
        token.append(("value", type(x).__name__, repr(x) if isinstance(x, float) else x))
    return tuple(token)


def first_output_shapes(function: Callable[..., Any], space: Space, args: tuple,
                        kwargs: Mapping[str, Any]) -> Any:
    """``function``'s output shapes at the space's first combination (traced, not run).

    Returns None where tracing fails: the executor then runs it and reports
    the failure with the combination it happened at. The shapes are kept per
    function and per structure, shapes and Python values of the state and the
    arguments, so repeating an analysis does not trace the model again.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, Space
    >>> space = Space({"a": GridAxis(0.0, 1.0, 3)})
    >>> first_output_shapes(lambda s: {"y": s["a"] * jnp.ones(4)}, space, (), {})
    {'y': ShapeDtypeStruct(shape=(4,), dtype=float32)}
    """
    layout = space.layout
    values = [jnp.asarray(t[0]) for t in layout.tables]

    def trace() -> Any:
        try:
            return jax.eval_shape(lambda v: function(layout.assemble(v), *args, **kwargs),
                                  values)
        except Exception:  # noqa: BLE001 - the executor reports it, naming the combination
            return None

    extra_leaves, extra_treedef = jax.tree.flatten((args, dict(kwargs)))
    state = _token(list(layout.fixed_leaves))
    extra = _token(extra_leaves)
    if state is None or extra is None:
        return trace()
    key = (layout.treedef, layout.axis_positions,
           tuple((t.shape[1:], str(t.dtype)) for t in layout.tables), state, extra_treedef,
           extra)
    return _SHAPES.get(function, key, trace)

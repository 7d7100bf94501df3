"""Executor options kept apart from the model's own keyword arguments.

Every keyword an executor is given is either one of its options or an
argument for the model. A keyword that is neither (``n_vmapp=4``, or
``output_dims=`` given to an executor that lacked it) would otherwise reach
the model and fail as a ``ModelError`` at combination 0; it is a
``TypeError`` at construction instead, with the nearest option suggested.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._checks import closest
from ..space import Space

__all__ = ["COMMON_OPTIONS", "check_model_kwargs", "check_space"]

#: the options every executor takes
COMMON_OPTIONS = ("progress", "store", "overwrite", "output_dims", "output_coords",
                  "output_attrs")


def _model_parameters(model: Callable) -> tuple[set[str], bool] | None:
    """The model's keyword parameters and whether it takes ``**kwargs`` (None: unknown)."""
    try:
        parameters = inspect.signature(model).parameters.values()
    except (TypeError, ValueError):  # builtins and C functions: nothing to check
        return None
    names = {p.name for p in parameters
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters)
    return names, takes_any


def check_model_kwargs(executor: str, model: Callable, kwargs: Mapping[str, Any],
                       options: Iterable[str]) -> None:
    """Refuse keywords that neither the executor (``options``) nor the model accepts.

    Raises
    ------
    TypeError
        Naming the keyword and suggesting the nearest option or model parameter.

    Examples
    --------
    >>> from labeled_spaces.execution.options import check_model_kwargs
    >>> def model(state, n_steps=100):
    ...     return state
    >>> check_model_kwargs("ParallelExecution", model, {"n_steps": 10}, ["n_vmap"])
    >>> check_model_kwargs("ParallelExecution", model, {"n_vmapp": 4}, ["n_vmap"])
    Traceback (most recent call last):
    ...
    TypeError: ParallelExecution got the keyword n_vmapp=4, which is neither one of its options ...
    """
    known = _model_parameters(model)
    if known is None or known[1]:
        return
    accepted, _ = known
    options = list(options)
    for name, value in kwargs.items():
        if name in accepted:
            continue
        hint = closest(name, [*options, *sorted(accepted)])
        raise TypeError(
            f"{executor} got the keyword {name}={value!r}, which is neither one of its options "
            f"({', '.join(options)}) nor a parameter of the model "
            f"{getattr(model, '__name__', type(model).__name__)}{hint}"
        )


def check_space(space: Any, argname: str) -> Space:
    """A Space, or a ``TypeError`` naming the argument."""
    if not isinstance(space, Space):
        raise TypeError(f"{argname} must be a labeled_spaces.Space, got {type(space).__name__}")
    return space

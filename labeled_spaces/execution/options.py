"""Executor options: one dataclass, checked once, kept apart from the model's own keywords.

Every keyword an executor is given is either one of its options or an
argument for the model. A keyword that is neither (``n_vmapp=4``, or
``output_dims=`` given to an executor that lacked it) would otherwise reach
the model and fail as a ``ModelError`` at combination 0; it is a
``TypeError`` at construction instead, with the nearest option suggested.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np

from .._checks import check_bool, check_positive_int, closest, fail, integer_scalar, warn_user
from .._format import short_repr
from ..axes import AbstractAxis, PointKey
from ..results.sink import check_store
from .program import MODEL, Program, check_program

__all__ = ["COMMON_OPTIONS", "Options", "check_model_arguments", "check_model_kwargs"]

#: the options every executor takes
COMMON_OPTIONS = ("progress", "store", "overwrite", "output_dims", "output_coords",
                  "output_attrs", "program")


@dataclasses.dataclass(frozen=True)
class Options:
    """Every executor option, checked at construction (an executor uses those it takes).

    Attributes
    ----------
    progress : bool
        A tqdm progress bar.
    store : None, str or Sink
        Where the results go (see :func:`labeled_spaces.results.sink.make_sink`).
    overwrite : bool
        Replace an existing store rather than resume it.
    output_dims, output_coords, output_attrs : dict or None
        The outputs' labels (checked against the outputs when they are known).
    program : Program
        What each lane computes (:data:`~labeled_spaces.execution.program.MODEL`
        by default).
    jit : bool
        SequentialExecution: compile the model.
    n_vmap : int, None or "auto"
        Combinations vectorised together; ``"auto"``: the largest batch whose
        compiled peak memory fits in ``max_memory``
        (:func:`labeled_spaces.execution.plan.plan_auto`).
    n_pmap, chunk_size, max_memory : int or None
        Devices, block size and the memory budget in bytes (a whole float
        such as ``2e9`` is taken as that many bytes).
    client : distributed.Client or None
        DaskExecution's cluster.

    Examples
    --------
    >>> from labeled_spaces.execution.options import Options
    >>> Options(n_vmap=4).n_vmap, Options().program.lane.__name__
    (4, 'model_lane')
    """

    progress: bool = True
    store: Any = None
    overwrite: bool = False
    output_dims: Mapping[str, Any] | None = None
    output_coords: Mapping[str, Any] | None = None
    output_attrs: Mapping[str, Mapping[str, Any]] | None = None
    program: Program = MODEL  # None is taken for the default too
    jit: bool = True
    n_vmap: int | str | None = None
    n_pmap: int = 1
    chunk_size: int | None = None
    max_memory: int | None = None
    client: Any = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("progress", check_bool("progress", self.progress))
        put("store", check_store(self.store))
        put("overwrite", check_bool("overwrite", self.overwrite))
        if self.overwrite and self.store is None:
            raise ValueError("overwrite=True replaces a store: give store='results.zarr' too "
                             "(results in memory have nothing to overwrite)")
        put("program", check_program(self.program))
        put("jit", check_bool("jit", self.jit))
        if isinstance(self.n_vmap, str):
            if self.n_vmap != "auto":
                fail("n_vmap", "a positive integer, None or 'auto'", self.n_vmap, TypeError)
        else:
            put("n_vmap", check_positive_int("n_vmap", self.n_vmap, allow_none=True))
        put("n_pmap", check_positive_int("n_pmap", self.n_pmap))
        if self.n_pmap > jax.device_count():
            raise ValueError(
                f"n_pmap={self.n_pmap} exceeds the {jax.device_count()} available device(s); "
                "on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=K (set before jax "
                "is imported) gives K devices"
            )
        put("chunk_size", check_positive_int("chunk_size", self.chunk_size, allow_none=True))
        n_vmap, chunk_size = integer_scalar(self.n_vmap), self.chunk_size
        if n_vmap is not None and chunk_size is not None and n_vmap > chunk_size:
            warn_user(f"n_vmap={n_vmap} is more than chunk_size={chunk_size}: chunk_size is "
                      "the combinations of one compiled call (a block), n_vmap the batch "
                      "vectorised at once inside it, so every call vectorises its whole block "
                      f"and n_vmap does nothing; did you mean n_vmap={chunk_size}, "
                      f"chunk_size={n_vmap}?")
        budget = self.max_memory  # bytes are often written 2e9: a whole float is a count too
        if isinstance(budget, (float, np.floating)) and float(budget).is_integer():
            budget = int(budget)
        if isinstance(budget, str):  # "2GB": say the unit the number is in
            fail("max_memory", "a positive integer or None, a number of bytes (2e9, "
                 "2 * 1024**3)", budget, TypeError)
        put("max_memory", check_positive_int("max_memory", budget, allow_none=True))
        if self.client is not None:
            from distributed import Client

            if not isinstance(self.client, Client):
                fail("client", "None or a distributed.Client", self.client, TypeError)


#: the names of the options, for an executor's attributes
OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(Options))


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
            f"{executor} got the keyword {name}={short_repr(value)}, which is neither one of its "
            f"options "
            f"({', '.join(options)}) nor a parameter of the model "
            f"{getattr(model, '__name__', type(model).__name__)}{hint}"
        )


def _varied(leaf: Any) -> bool:
    return isinstance(leaf, (AbstractAxis, PointKey))


def check_model_arguments(args: tuple, kwargs: Mapping[str, Any]) -> None:
    """Refuse an axis or a PointKey among the model's extra arguments.

    The extra arguments go to every combination as they are; only the
    Space's state is varied. An axis or a ``PointKey`` there would reach the
    model as the object itself and fail inside it (``unexpected PRNG key
    type``) as a ``ModelError`` at combination 0; it is a ``TypeError`` at
    construction instead, saying where it belongs.

    Raises
    ------
    TypeError
        Naming the argument (and the path inside it) and the object's class.

    Examples
    --------
    >>> from labeled_spaces import PointKey
    >>> from labeled_spaces.execution.options import check_model_arguments
    >>> check_model_arguments((1.0,), {"noise": 0.1})
    >>> check_model_arguments((), {"keys": {"trial": PointKey()}})
    Traceback (most recent call last):
    ...
    TypeError: the model's extra argument keys['trial'] is a PointKey, ... in the Space's state ...
    """
    named = [(f"args[{i}]", value) for i, value in enumerate(args)]
    named += [(str(name), value) for name, value in kwargs.items()]
    for where, value in named:
        if not any(_varied(leaf) for leaf in jax.tree.leaves(value, is_leaf=_varied)):
            continue  # key paths cost 30x a flatten: made only to name what is refused
        for path, leaf in jax.tree_util.tree_flatten_with_path(value, is_leaf=_varied)[0]:
            if _varied(leaf):
                raise TypeError(
                    f"the model's extra argument {where}{jax.tree_util.keystr(path)} is a "
                    f"{type(leaf).__name__}, which an executor hands to every combination "
                    "as the object itself; put axes and PointKey leaves in the Space's state "
                    "(Space({..., 'key': PointKey()})) and read them from the state in the "
                    "model: the extra arguments are the same for every combination")

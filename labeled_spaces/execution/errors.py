"""When a model fails: which combination to blame, and what was finished.

:class:`ModelError` names the flat index and the parameters of the failing
combination and carries the finished results (``.partial``);
:class:`Interrupted` (a ``KeyboardInterrupt``) does the same for Ctrl-C.
A failure inside a compiled block does not say which lane failed, so the
block's combinations are run one by one without ``jit`` (for a few seconds
at most) to find it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from .._format import clipped
from ..results import Results
from ..space import Space, keypath_name
from .compiled import PreparedModel, split_arrays

__all__ = [
    "Interrupted", "ModelError", "OutputError", "argument_names", "check_outputs", "failed_at",
    "block_failure", "locate_failure", "name_arguments", "point_labels", "trace_failure",
]

# how every message of check_outputs begins
_OUTPUT_PROBLEM = "model outputs must be"


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


class OutputError(ModelError, TypeError):
    """The model returned what cannot be a result: None, no arrays, a string or a key.

    A :class:`ModelError` (it names the combination) and a ``TypeError``
    (it is a wrong value, found before anything is computed where the model
    is compiled).
    """


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (SIGINT), with what was finished in ``.partial``.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C still stops.

    Attributes
    ----------
    partial : Results or None
        The finished results (``partial.done`` marks them), or None when
        nothing had started.
    """

    def __init__(self, message: str, partial: Results | None = None) -> None:
        super().__init__(message)
        self.partial = partial


def point_labels(space: Space, i: int) -> str:
    """The labels of combination ``i``, as ``sel`` takes them: ``coupling=2.0, noise=0.5``.

    The coordinates of the point (its varying parameters, by the names the
    results use), not the whole state: a fixed leaf such as a 68 x 68
    connectome is the same at every combination and would bury the labels.

    Examples
    --------
    >>> from labeled_spaces import DataAxis, GridAxis, Space
    >>> from labeled_spaces.execution.errors import point_labels
    >>> space = Space({"k": GridAxis(0.0, 1.0, 3), "w": [[1.0, 2.0]] * 2,
    ...                "subject": DataAxis([1.0, 2.0], labels=["s1", "s2"])}, mode="product")
    >>> point_labels(space, 5)
    "k=1.0, subject='s2', subject_value=2.0"
    """
    at = dict(zip(space.dims, space.layout.grid.unravel(i), strict=True))
    try:  # it builds an error: a failure here must not replace it (and its partial results)
        point = space.isel(at)
        shown = []
        for name, coord in point.coords.items():
            if coord.ndim == 0:
                value = coord.values
                text = repr(str(value)) if value.dtype.kind in "USO" else str(value)
                shown.append(f"{name}={text}")
        return ", ".join(shown)
    except Exception:  # noqa: BLE001 - the positions still name the combination
        return "isel(" + ", ".join(f"{d}={int(p)}" for d, p in at.items()) + ")"


def failed_at(space: Space, i: int, message: str, partial: Results | None = None) -> ModelError:
    """The error for combination ``i``: its index and labels, and what went wrong.

    The message names the combination by its labels (:func:`point_labels`);
    ``.params`` holds its whole state, fixed leaves included.
    """
    params = space[i]
    kind = OutputError if _OUTPUT_PROBLEM in message else ModelError
    return kind(
        f"the model failed at combination {i} with parameters {point_labels(space, i)} "
        f"(err.params holds its whole state): {message}",
        index=i, params=params, partial=partial,
    )


def check_outputs(out: Any) -> list[Any]:
    """The output's leaves, or a ``TypeError`` for one that is not an array or a number.

    The same check for every executor: None (a model that forgot its
    ``return``), a pytree without arrays (``{}``, ``()``), a string, an object
    or a PRNG key is refused wherever it comes from (compiled or plain Python
    models).

    Examples
    --------
    >>> from labeled_spaces.execution.errors import check_outputs
    >>> try:
    ...     check_outputs(None)
    ... except TypeError as err:
    ...     print(str(err).split(": ")[-1])
    does it end with a return statement?
    >>> len(check_outputs({"y": 1.0, "z": [2, 3]}))
    3
    """
    leaves = jax.tree.leaves(out)
    if out is None:
        raise TypeError(f"{_OUTPUT_PROBLEM} arrays or numbers, but the model returned None: "
                        "does it end with a return statement?")
    if not leaves:
        raise TypeError(f"{_OUTPUT_PROBLEM} arrays or numbers, but the model returned "
                        f"{clipped(repr(out))} ({type(out).__name__}), which holds none: "
                        "return an array, a number, or a pytree of them such as {'y': y}")
    for leaf in leaves:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            dtype = np.asarray(leaf).dtype
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            raise TypeError(f"{_OUTPUT_PROBLEM} arrays or numbers, got a PRNG key; return "
                            "jax.random.key_data(key) to keep its bits")
        if np.dtype(dtype).kind not in "biufcV":  # V: bfloat16 and friends
            raise TypeError(f"{_OUTPUT_PROBLEM} arrays or numbers, got {leaf!r} "
                            f"({type(leaf).__name__})")
    return leaves


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


# how JAX names what a traced value came from: the arguments of PreparedModel.call
_INTERNAL = re.compile(r"\b(lane_values|state_arrays|extra_arrays)\[(\d+)\]")
_NOT_A_JAX_TYPE = re.compile(r"returned a value of type <class '([\w.]+)'>( at output component "
                             r"\S+)?, which is not a valid JAX type")
_CALL_SITE = re.compile(r"the function call at \S+compiled\.py:\d+( for \w+)?")


class _Slot:
    """Marks where :func:`split_arrays` puts the ``index``-th array."""

    def __init__(self, index: int) -> None:
        self.index = index


def _array_paths(leaves: Sequence[Any], paths: Sequence[str]) -> list[str]:
    """The paths of the leaves that :func:`split_arrays` passes as arrays, in its order."""
    arrays, rebuild = split_arrays(leaves)
    slots = [_Slot(j) for j in range(len(arrays))]
    where = {x.index: k for k, x in enumerate(rebuild(slots)) if isinstance(x, _Slot)}
    return [paths[where[j]] for j in range(len(arrays))]


def argument_names(prepared: PreparedModel, space: Space) -> dict[str, str]:
    """What a tracing error's internal argument names (``lane_values[0]``) stand for.

    Axis values by the axis's name (and key path where it differs), the
    state's array leaves by key path, extra arguments as the model's
    positional argument or keyword.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.execution.compiled import PreparedModel
    >>> from labeled_spaces.execution.errors import argument_names
    >>> space = Space({"coupling": GridAxis(0.0, 1.0, 3)})
    >>> argument_names(PreparedModel(lambda s: s, space.layout, (), {}), space)
    {'lane_values[0]': "'coupling' (the parameter)"}
    """
    names: dict[str, str] = {}
    for a, (name, path) in enumerate(zip(space.names, space.paths, strict=True)):
        where = f" at {path!r} in the state" if path != name else ""
        names[f"lane_values[{a}]"] = f"{name!r} (the parameter{where})"
    layout = prepared.layout
    flat = jax.tree_util.tree_flatten_with_path(
        layout.treedef.unflatten(range(len(layout.leaves))))[0]
    state_paths = [f"{keypath_name(p)!r} (a fixed leaf of the state)" for p, _ in flat]
    for j, shown in enumerate(_array_paths(layout.leaves, state_paths)):
        names[f"state_arrays[{j}]"] = shown
    extra = jax.tree_util.tree_flatten_with_path(
        jax.tree.unflatten(prepared.extra_treedef, range(len(prepared.extra_leaves))))[0]
    extra_paths = []
    for keys, _ in extra:  # (args, kwargs)[0 or 1][index or keyword]...
        head = (f"args[{keys[1].idx}] (positional argument {keys[1].idx + 1} of the model "
                "after the state" if keys[0].idx == 0
                else f"{keys[1].key} (a keyword argument of the model")
        inner = f", at {keypath_name(keys[2:])!r}" if len(keys) > 2 else ""
        extra_paths.append(f"{head}{inner})")
    for j, shown in enumerate(_array_paths(prepared.extra_leaves, extra_paths)):
        names[f"extra_arrays[{j}]"] = shown
    return names


def name_arguments(message: str, prepared: PreparedModel, space: Space) -> str:
    """``message`` with JAX's names of internal arguments replaced by what the user wrote."""
    names = argument_names(prepared, space)
    model = getattr(prepared.model, "__qualname__", None) or type(prepared.model).__name__
    message = _CALL_SITE.sub(f"the model {model}", message)
    return _INTERNAL.sub(lambda m: names.get(m.group(0), m.group(0)), message)


def locate_failure(
    prepared: PreparedModel, indices: Sequence[int], seconds: float = 10.0
) -> tuple[int, Exception] | None:
    """Run combinations one by one, without jit, until one raises (for at most ``seconds``)."""
    layout = prepared.layout
    start = time.perf_counter()
    for i in indices:
        values = layout.values_at(layout.grid.unravel(i))
        try:
            check_outputs(prepared.call(values, prepared.state_arrays, prepared.extra_arrays))
        except Exception as err:  # noqa: BLE001 - any model failure is reported
            return i, err
        if time.perf_counter() - start > seconds:
            break
    return None


def trace_failure(prepared: PreparedModel, space: Space, err: Exception) -> ModelError:
    """The error for a model that fails while JAX traces it, before any combination runs.

    Tracing sees no parameter values. If the first combination, run without
    ``jit``, fails with the same error, it is named; otherwise the tracing
    error itself is reported, and ``index`` and ``params`` are None: no
    combination is to blame.
    """
    found = locate_failure(prepared, [0])
    if found is not None and (type(found[1]) is type(err) and str(found[1]) == str(err) or
                              str(found[1]).startswith(_OUTPUT_PROBLEM)):
        return failed_at(space, 0, _describe(found[1]))
    returned = _NOT_A_JAX_TYPE.search(str(err)) if isinstance(err, TypeError) else None
    if returned is not None:  # fine in Python, but jit returns arrays only (an xarray object)
        kind, at = returned.group(1).rsplit(".", 1)[-1], returned.group(2) or ""
        return failed_at(space, 0, (
            f"TypeError: {_OUTPUT_PROBLEM} arrays or numbers, got a {kind} ({returned.group(1)})"
            f"{at.replace(' component', '')}, which a compiled model cannot return: return its "
            "values as arrays (for an xarray object, .data) and name their dimensions with "
            "output_dims="))
    eager = "" if found is None else (
        f" (run without jit, the first combination fails differently: {_describe(found[1])})")
    return ModelError(
        "the model could not be compiled (is it traceable by JAX? Python control flow on a "
        "parameter is not: use jax.lax.cond or jnp.where, or run it with "
        "SequentialExecution(jit=False)); JAX failed while tracing it, before any "
        f"combination ran: {name_arguments(_describe(err) + eager, prepared, space)}"
    )


def block_failure(prepared: PreparedModel, space: Space, err: BaseException,
                  indices: Sequence[int], partial: Results | None) -> ModelError:
    """The error for a compiled block that failed: the first of its combinations that fails alone.

    ``indices`` are the flat indices the block computed (its real points, in
    flat order, including rows borrowed from the next block).
    """
    found = locate_failure(prepared, indices)
    if found is not None:
        i, cause = found
        return failed_at(space, i, _describe(cause), partial)
    first = indices[0] if len(indices) else None
    return ModelError(
        f"the compiled model failed on the block starting at combination {first}, "
        f"although each of its combinations runs alone without jit: {_describe(err)}",
        index=first, params=space[first] if first is not None else None, partial=partial,
    )

"""The Program seam: what one lane (one combination) computes, and the labels of what it returns.

A :class:`Program` is a NamedTuple of two pure functions, in the style of
optax's transformations:

``lane(call, axis_values, state_arrays, extra_arrays) -> pytree``
    One combination's computation. ``call(axis_values, state_arrays,
    extra_arrays)`` runs the model (``model(state, *args, **kwargs)``) at
    any axis values; ``axis_values`` is the list of this combination's
    values, one per axis of the Space (in the order of
    ``space.layout.axis_positions``; a KeyAxis's value is its replicate
    number, and ``call`` gives the model the key), and ``state_arrays`` and
    ``extra_arrays`` are the numeric arrays of the fixed leaves and of the
    model's extra arguments. The lane may call the model at other axis values
    (``jax.jacfwd`` of ``lambda v: call(v, s, e)`` with respect to selected
    values for gradients, an optax loop in ``lax.scan`` started from them for
    a fit), call it several times, or not at all. It must be traceable by JAX:
    the kernel vectorises (``vmap``), batches (``lax.map``), shards and
    compiles it as it does the model.
``labels(names, shapes) -> Labels``
    What the program adds to the labels of its outputs, given the output
    names (key paths of the pytree ``lane`` returns, as in
    ``results.to_xarray()``) and each one's own shape: dimensions placed in
    front of an output's own dimensions (a ``wrt`` dimension for gradients,
    ``step`` for a fit's trace), their coordinates, and attributes.
``settings``
    What the program's results depend on besides the model and its inputs:
    an analysis's own arguments (a fit's optimizer, its steps), as
    ``(name, value)`` pairs of JSON-ready values (strings, numbers, booleans,
    None, tuples of these; an object such as an optimizer as a digest). They
    are part of the run identity
    (:func:`labeled_spaces.results.identity.run_identity`): a store made with
    other settings is refused, naming the one that differs
    (``optimizer: ... -> ...``), and every Dataset and file records them. The
    setting ``"analysis"`` names the analysis that made the results (see
    :data:`labeled_spaces._schema.ANALYSES`).

The executors take a Program as ``program=`` (default :data:`MODEL`, the
model itself). The executor's ``output_dims`` name the dimensions that
follow the program's own, and ``output_coords`` and ``output_attrs`` are
added to the program's. A program is part of what the compiled programs
are cached by: build one Program object and reuse it to reuse its compiled
blocks.

Examples
--------
A program that returns the model's output and its square along a new
dimension ``power``:

>>> import jax.numpy as jnp
>>> from labeled_spaces import GridAxis, ParallelExecution, Space
>>> from labeled_spaces.execution.program import Labels, Program
>>> def powers(call, axis_values, state_arrays, extra_arrays):
...     out = call(axis_values, state_arrays, extra_arrays)
...     return {"y": jnp.stack([out, out**2])}
>>> def power_labels(names, shapes):
...     return Labels(dims={"y": ("power",)}, coords={"power": [1, 2]})
>>> space = Space({"k": GridAxis(1.0, 3.0, 3)}, mode="product")
>>> ds = ParallelExecution(lambda s: s["k"], space, program=Program(powers, power_labels),
...                        progress=False).run().to_xarray()
>>> ds["y"].dims, ds["y"].sel(power=2).values.tolist()
(('k', 'power'), [1.0, 4.0, 9.0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from .._checks import fail

__all__ = ["MODEL", "Labels", "Program", "check_program", "is_model", "merge_labels",
           "model_lane", "no_labels"]


class Labels(NamedTuple):
    """The labels a Program adds to its outputs.

    Attributes
    ----------
    dims : mapping
        ``{output name: (dim, ...)}``: dimensions in front of that output's
        own dimensions (the first ``len(dims)`` axes of each lane's output).
    coords : mapping
        ``{dim: values}`` coordinates of those dimensions (as for an
        executor's ``output_coords``).
    attrs : mapping
        ``{output name: attrs}`` added to the output's attributes.

    Examples
    --------
    >>> from labeled_spaces.execution.program import Labels
    >>> Labels(dims={"y": ("wrt",)}, coords={"wrt": ["a", "b"]}).dims
    {'y': ('wrt',)}
    """

    dims: Mapping[str, Sequence[str]] = {}
    coords: Mapping[str, Any] = {}
    attrs: Mapping[str, Mapping[str, Any]] = {}


def model_lane(call: Callable[..., Any], axis_values: Sequence[Any], state_arrays: Sequence[Any],
               extra_arrays: Sequence[Any]) -> Any:
    """The model itself: ``call(axis_values, state_arrays, extra_arrays)``.

    Examples
    --------
    >>> from labeled_spaces.execution.program import model_lane
    >>> model_lane(lambda v, s, e: v[0] + 1, [1.0], [], [])
    2.0
    """
    return call(axis_values, state_arrays, extra_arrays)


def no_labels(names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> Labels:
    """No labels added: the outputs are labelled by the executor's options alone.

    Examples
    --------
    >>> from labeled_spaces.execution.program import no_labels
    >>> no_labels(["result"], [()])
    Labels(dims={}, coords={}, attrs={})
    """
    return Labels()


class Program(NamedTuple):
    """What one lane computes and the labels of what it returns (see the module documentation).

    Attributes
    ----------
    lane : callable
        ``lane(call, axis_values, state_arrays, extra_arrays) -> pytree`` of arrays.
    labels : callable, default :func:`no_labels`
        ``labels(names, shapes) -> Labels`` for the pytree ``lane`` returns.
    settings : tuple of (str, value) pairs, default ()
        What the results depend on besides the model and its inputs (an
        analysis's own arguments), part of the run identity. Hashable, as a
        Program keys the cache of compiled programs.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces.execution.program import Program
    >>> doubled = Program(lambda call, v, s, e: 2 * call(v, s, e), settings=(("factor", 2),))
    >>> doubled.lane(lambda v, s, e: v[0], [jnp.float32(3.0)], [], [])
    Array(6., dtype=float32)
    """

    lane: Callable[[Callable[..., Any], Sequence[Any], Sequence[Any], Sequence[Any]], Any]
    labels: Callable[[Sequence[str], Sequence[tuple[int, ...]]], Labels] = no_labels
    settings: tuple[tuple[str, Any], ...] = ()


#: the default Program: the model, with the executor's output labels
MODEL = Program(model_lane, no_labels)


def check_program(program: Any) -> Program:
    """``program``, or :data:`MODEL` for None; a ``TypeError`` for anything else.

    Examples
    --------
    >>> from labeled_spaces.execution.program import MODEL, check_program
    >>> check_program(None) is MODEL
    True
    """
    if program is None:
        return MODEL
    if not isinstance(program, Program) or not callable(program.lane) or not callable(
            program.labels):
        fail("program", "a labeled_spaces Program(lane, labels) of two functions", program,
             TypeError)
    settings = program.settings
    if not isinstance(settings, tuple) or not all(
            isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
            for pair in settings):
        fail("program.settings", "a tuple of (name, value) pairs with str names", settings,
             TypeError)
    try:
        hash(settings)
    except TypeError:
        fail("program.settings", "hashable values (str, numbers, None, tuples of these)",
             settings, TypeError)
    return program


def is_model(program: Program) -> bool:
    """Whether ``program`` computes the model itself, with its own labels (settings aside).

    The executors call such a program as the model: with ``space[i]`` without
    ``jit``, sharing the model's compiled programs, and checking which of its
    inputs it reads.

    Examples
    --------
    >>> from labeled_spaces.execution.program import MODEL, Program, is_model, model_lane
    >>> is_model(MODEL), is_model(Program(model_lane, settings=(("analysis", "refine"),)))
    (True, True)
    >>> is_model(Program(lambda call, v, s, e: 2 * call(v, s, e)))
    False
    """
    return program.lane is model_lane and program.labels is no_labels


def merge_labels(labels: Labels, names: Sequence[str], shapes: Sequence[tuple[int, ...]],
                 output_dims: Any, output_coords: Any, output_attrs: Any
                 ) -> tuple[list[tuple[int, ...]], Callable[[Any], tuple[Any, Any, Any]]]:
    """The program's labels and the executor's output options, as options for the outputs.

    Returns the outputs' shapes without the program's dimensions (to name
    the rest by the executor's ``output_dims``, or by default), and a
    function that, given the own dimensions so named (``{name: dims}``),
    returns ``(output_dims, output_coords, output_attrs)`` for all of each
    output's dimensions.
    """
    added = {}
    for name, dims in labels.dims.items():
        if name not in names:
            raise ValueError(f"the program's labels name the output {name!r}, which it does "
                             f"not return; it returns {list(names)}")
        dims = (dims,) if isinstance(dims, str) else tuple(dims)
        shape = shapes[list(names).index(name)]
        if len(dims) > len(shape):
            raise ValueError(f"the program's labels give output {name!r} the dimensions "
                             f"{dims}, but it has only {len(shape)}: shape {shape}")
        added[name] = dims
    rest = [s[len(added.get(n, ())):] for n, s in zip(names, shapes, strict=True)]

    def combine(own: Mapping[str, tuple[str, ...]]) -> tuple[Any, Any, Any]:
        dims: Any = output_dims
        if added:
            dims = {n: (*added[n], *own[n]) if n in added else own[n] for n in own}
        coords, attrs = output_coords, output_attrs
        if labels.coords and (coords is None or isinstance(coords, Mapping)):
            coords = {**labels.coords, **(coords or {})}
        if labels.attrs and (attrs is None or isinstance(attrs, Mapping)):
            merged: dict[str, Any] = {n: dict(a) for n, a in labels.attrs.items()}
            for name, extra in (attrs or {}).items():
                merged[name] = {**merged.get(name, {}), **extra} if isinstance(
                    extra, Mapping) else extra
            attrs = merged
        return dims, coords, attrs

    return rest, combine

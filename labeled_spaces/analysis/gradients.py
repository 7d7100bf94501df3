"""Gradient maps: forward-mode derivatives of a model at every combination of a Space.

The analysis is a Program (:func:`derivatives`): its lane pushes one tangent
per chosen axis through the model (``jax.jvp``, vectorised over the tangents
as ``jax.jacfwd`` does) with respect to the axis values the lane receives,
and its labels put a ``wrt`` dimension, with the axis names as its
coordinate, in front of every output's own dimensions. The executors run it
with ``program=``, so blocks, ``n_vmap``, sharding, stores, resume and dask
work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._caches import ProgramCache
from ..execution import Labels, ParallelExecution, Program
from ..results import Results, output_names
from ..space import Space, check_space
from .parameters import Parameter, choose, with_leaves
from .program import UnusableOutputs, run_program

__all__ = ["WRT", "derivatives", "gradients"]

#: the dimension that the derivatives add to every output
WRT = "wrt"

# one Program per (axes, names): the executors cache compiled programs per model and
# Program, so a second gradients() call with the same model compiles nothing
_PROGRAMS = ProgramCache("gradient programs")


def _check_floating(out: Any) -> None:
    """An :class:`UnusableOutputs` for an output that is not floating (no derivative)."""
    leaves, treedef = jax.tree.flatten(out)
    for name, leaf in zip(output_names(treedef), leaves, strict=True):
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise UnusableOutputs(
                f"the model's output {name!r} is {dtype}, which has no derivative; "
                "return only floating outputs from a model given to gradients")


def derivatives(indices: Sequence[int], names: Sequence[str]) -> Program:
    """The Program of the model's derivatives w.r.t. the axis values at ``indices``.

    Its lane pushes one tangent per index through the model (``jax.jvp``,
    vectorised over the tangents as ``jax.jacfwd`` does): a tangent of ones
    over the whole value, so that for a ``shape=`` axis it is the derivative
    with respect to the scalar the value is broadcast from. Every output gets
    a leading dimension ``wrt`` of length ``len(indices)``, whose coordinate
    is ``names``; ``names`` is also the setting ``wrt`` of the run identity
    (a store made with another ``wrt`` is refused naming it). A model output
    that is not floating raises
    :class:`~labeled_spaces.analysis.program.UnusableOutputs` when the lane is
    traced.

    Parameters
    ----------
    indices : sequence of int
        Which of the lane's axis values (the space's axes, in order) to
        differentiate with respect to, in the order of ``wrt``.
    names : sequence of str
        Their names: the ``wrt`` coordinate.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, ParallelExecution, Space
    >>> space = Space({"a": GridAxis(1.0, 2.0, 2), "b": GridAxis(0.0, 3.0, 2)},
    ...               mode="product")
    >>> program = derivatives([1, 0], ["b", "a"])
    >>> ds = ParallelExecution(lambda s: s["a"] * s["b"] ** 2, space, program=program,
    ...                        progress=False).run().to_xarray()
    >>> ds["result"].dims, ds["result"].sel(a=2.0, b=3.0).values.tolist()
    (('a', 'b', 'wrt'), [12.0, 9.0])
    """
    indices, names = tuple(indices), tuple(names)

    def lane(call: Callable[..., Any], axis_values: Sequence[Any], state_arrays: Sequence[Any],
             extra_arrays: Sequence[Any]) -> Any:
        primals = tuple(jnp.asarray(axis_values[k]) for k in indices)

        def at(*values: Any) -> Any:
            return call(with_leaves(axis_values, indices, values), state_arrays, extra_arrays)

        def pushed(tangents: tuple) -> Any:
            out, derivative = jax.jvp(at, primals, tangents)
            _check_floating(out)  # at trace time: the outputs' dtypes are known
            return derivative

        n = len(indices)
        tangents = tuple(
            jnp.zeros((n, *x.shape), x.dtype).at[j].set(jnp.ones(x.shape, x.dtype))
            for j, x in enumerate(primals))
        return jax.vmap(pushed)(tangents)

    def labels(outputs: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> Labels:
        return Labels(dims={name: (WRT,) for name in outputs},
                      coords={WRT: np.array(list(names))})

    # wrt is an input of its own: a store of derivatives w.r.t. other axes (or in another
    # order) is refused naming wrt, before the output labels that follow from it
    return Program(lane, labels, (("analysis", "gradients"), ("wrt", names)))


def _check_labels(output_dims: Any, output_coords: Any) -> None:
    """Refuse output labels that name ``wrt``, which gradients adds."""
    if isinstance(output_dims, Mapping):
        for name, own in output_dims.items():
            own = (own,) if isinstance(own, str) else own
            if isinstance(own, Sequence) and WRT in own:
                raise ValueError(
                    f"output_dims[{name!r}] = {own!r} uses the name {WRT!r}, which gradients "
                    "adds as the first dimension of every output; rename that dimension")
    if isinstance(output_coords, Mapping) and WRT in output_coords:
        raise ValueError(f"output_coords names {WRT!r}, which gradients sets to the axis names")


def _differentiable(p: Parameter) -> str | None:
    if p.keys:
        return "is a KeyAxis: replicate PRNG keys, which have no derivative"
    if not p.floating:
        return f"has {p.dtype} values, which have no derivative"
    if not p.broadcast:
        return (f"has array values {p.value_shape} that no scalar label describes (a DataAxis "
                "of arrays, or draws of a sample_shape); only axes with one scalar per point "
                "can be differentiated")
    return None


def gradients(model: Callable[..., Any], space: Space, *args: Any, wrt: Any = None,
              executor: Callable[..., Any] = ParallelExecution, **options: Any) -> Results:
    """Derivatives of every output with respect to the chosen axes, at every combination.

    Forward mode (``jax.jvp``, one tangent per axis as ``jax.jacfwd`` pushes
    them) inside the executor's compiled, vectorised blocks: the executor
    runs the Program :func:`derivatives` over the model.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)`` returning a pytree of floating arrays.
    space : Space
        The combinations at which to differentiate.
    *args
        Extra positional arguments for the model.
    wrt : str or sequence of str, optional
        Axis names, in the order the ``wrt`` coordinate lists them. Default:
        every axis whose labels are floating scalars, in the order of the
        space's dimensions. A ``shape=`` axis is differentiated with respect to its scalar
        label (a tangent of ones over the value); each member of a group or a
        zip with respect to its own label.
    executor : class, default ParallelExecution
        ``SequentialExecution``, ``ParallelExecution`` or ``DaskExecution``.
    **options
        The executor's options (``n_vmap``, ``n_pmap``, ``chunk_size``,
        ``store``, ``progress``, ``output_dims``, ``output_coords``,
        ``output_attrs``, ``client``, ...) and the model's keyword arguments.
        ``output_dims`` names the model's own output dimensions; ``wrt`` is
        put before them.

    Returns
    -------
    Results
        One variable per output ``v``, named ``v``, with dims
        ``(*space.dims, "wrt", *v's own dims)``: the derivative
        ``d v / d wrt``. Only derivatives are returned, not the outputs.

    Raises
    ------
    ValueError
        ``wrt`` names an unknown axis, or one that cannot be differentiated
        (integer or key values, a ``DataAxis`` of arrays); an output is not
        floating (it has no derivative); a dimension or coordinate of the
        results is already named ``wrt``.
    TypeError
        ``wrt`` is not a name or a sequence of names; ``program=`` is given
        (gradients runs its own, :func:`derivatives`).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, Space, gradients
    >>> space = Space({"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(1.0, 2.0, 2)}, mode="product")
    >>> d = gradients(lambda s: s["a"] ** 2 * s["b"], space, progress=False).to_xarray()
    >>> d["result"].dims, d["wrt"].values.tolist()
    (('a', 'b', 'wrt'), ['a', 'b'])
    >>> float(d["result"].sel(a=0.5, b=2.0, wrt="a"))  # 2 a b
    2.0
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {model!r} ({type(model).__name__})")
    check_space(space)
    chosen = choose(space, wrt, _differentiable,
                    lambda p: p.scalar_label and p.differentiable)
    if WRT in space.coord_names:
        raise ValueError(f"the space already has a dimension or coordinate named {WRT!r}, "
                         "which gradients adds to the results; rename that axis")
    _check_labels(options.get("output_dims"), options.get("output_coords"))
    indices = tuple(p.index for p in chosen)
    names = tuple(p.name for p in chosen)
    program = _PROGRAMS.get(None, (indices, names), lambda: derivatives(indices, names))
    return run_program(executor, model, space, args, program, options)

"""Gradient maps: forward-mode derivatives of a model at every combination of a Space.

The analysis is a transformation of the model into a lane function
(:func:`derivative_lane`) plus the labels it adds (:func:`derivative_labels`:
a leading ``wrt`` dimension on every output, with the axis names as its
coordinate). Any executor runs that lane like any model, so blocks,
``n_vmap``, sharding, stores, resume and dask work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._caches import ProgramCache
from ..execution import ParallelExecution
from ..results import Results, output_names
from ..space import Space
from .parameters import Parameter, choose, with_leaves
from .program import ModelRef, first_output_shapes, like_model, model_keywords

__all__ = ["WRT", "derivative_labels", "derivative_lane", "gradients"]

#: the dimension that the derivatives add to every output
WRT = "wrt"

# one lane function per (model, structure, wrt): the executors' compiled programs are
# cached per lane function, so a second gradients() call with the same model compiles nothing
_LANES = ProgramCache("gradient lanes")


def derivative_lane(model: Callable[..., Any] | ModelRef, treedef: Any, positions: Sequence[int]
                    ) -> Callable[..., Any]:
    """``model`` as the lane function of its derivatives w.r.t. the leaves at ``positions``.

    The returned ``lane(state, *args, **kwargs)`` pushes one tangent per
    position through ``model`` (``jax.jvp``, vectorised over the tangents as
    ``jax.jacfwd`` does): a tangent of ones over the whole leaf, so that for a
    ``shape=`` axis it is the derivative with respect to the scalar the leaf
    is broadcast from. Every output leaf gets a leading dimension of length
    ``len(positions)``.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)``.
    treedef : jax tree structure
        The state's structure with the axes as leaves (``space.layout.treedef``).
    positions : sequence of int
        Flat leaf positions of the variables (``space.layout.axis_positions``).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> treedef = jax.tree.structure({"a": 0, "b": 0})
    >>> lane = derivative_lane(lambda s: s["a"] * s["b"] ** 2, treedef, [1, 0])
    >>> lane({"a": jnp.float32(2.0), "b": jnp.float32(3.0)})
    Array([12.,  9.], dtype=float32)
    """
    positions = tuple(positions)
    ref = model if isinstance(model, ModelRef) else ModelRef(model)

    def lane(state: Any, *args: Any, **kwargs: Any) -> Any:
        model = ref()
        leaves = treedef.flatten_up_to(state)
        primals = tuple(jnp.asarray(leaves[p]) for p in positions)

        def at(*values: Any) -> Any:
            return model(treedef.unflatten(with_leaves(leaves, positions, values)),
                         *args, **kwargs)

        k = len(positions)
        tangents = tuple(
            jnp.zeros((k, *x.shape), x.dtype).at[j].set(jnp.ones(x.shape, x.dtype))
            for j, x in enumerate(primals))
        return jax.vmap(lambda t: jax.jvp(at, primals, t)[1])(tangents)

    return like_model(lane, ref())


def derivative_labels(names: Sequence[str], ndims: Sequence[int], wrt: Sequence[str],
                      output_dims: Mapping[str, Any] | None,
                      output_coords: Mapping[str, Any] | None
                      ) -> tuple[dict[str, tuple[str, ...]], dict[str, Any]]:
    """The executor's ``output_dims`` and ``output_coords`` for the derivative lane.

    Every output ``names[k]`` (with ``ndims[k]`` own dimensions) gets ``wrt``
    as its first dimension; its own dimensions keep the names the user gave in
    ``output_dims`` (else ``{name}_dim_{i}``). Coordinate ``wrt`` holds the
    axis names.

    Examples
    --------
    >>> dims, coords = derivative_labels(["y", "z"], [1, 0], ["a", "b"],
    ...                                  {"y": ("time",)}, None)
    >>> dims, coords["wrt"].tolist()
    ({'y': ('wrt', 'time'), 'z': ('wrt',)}, ['a', 'b'])
    """
    if not isinstance(output_dims, Mapping | None):  # the executor says what is wrong
        return output_dims, dict(output_coords or {})
    given = dict(output_dims or {})
    dims: dict[str, tuple[str, ...]] = {}
    for name, ndim in zip(names, ndims, strict=True):
        own = given.pop(name, None)
        if own is None:
            own = tuple(f"{name}_dim_{i}" for i in range(ndim))
        elif isinstance(own, str):
            own = (own,)
        if isinstance(own, Sequence) and WRT in own:
            raise ValueError(
                f"output_dims[{name!r}] = {own!r} uses the name {WRT!r}, which gradients adds "
                "as the first dimension of every output; rename that dimension")
        dims[name] = (WRT, *own) if isinstance(own, Sequence) else own
    dims.update(given)  # names that are no output: the executor refuses them
    coords = dict(output_coords or {})
    if WRT in coords:
        raise ValueError(f"output_coords names {WRT!r}, which gradients sets to the axis names")
    coords[WRT] = np.array(list(wrt))
    return dims, coords


def _differentiable(p: Parameter) -> str | None:
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
    them) inside the executor's compiled, vectorised blocks.

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
        ``wrt`` is not a name or a sequence of names.

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
    if not isinstance(space, Space):
        raise TypeError(f"space must be a labeled_spaces.Space, got {type(space).__name__}")
    chosen = choose(space, wrt, _differentiable,
                    lambda p: p.scalar_label and p.differentiable)
    if WRT in space.coord_names:
        raise ValueError(f"the space already has a dimension or coordinate named {WRT!r}, "
                         "which gradients adds to the results; rename that axis")
    names = [p.name for p in chosen]
    positions = tuple(p.position for p in chosen)
    output_dims = options.pop("output_dims", None)
    output_coords = options.pop("output_coords", None)
    shapes = first_output_shapes(model, space, args, model_keywords(executor, options))
    leaves, treedef = jax.tree.flatten(shapes)
    outputs = output_names(treedef) if shapes is not None else []
    for name, leaf in zip(outputs, leaves, strict=True):
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise ValueError(
                f"the model's output {name!r} is {leaf.dtype}, which has no derivative; "
                "return only floating outputs from a model given to gradients")
    dims, coords = derivative_labels(outputs, [leaf.ndim for leaf in leaves], names,
                                     output_dims, output_coords)
    layout = space.layout
    lane = _LANES.get(model, ("derivatives", layout.treedef, positions),
                      lambda: derivative_lane(ModelRef(model, weak=True),
                                              layout.treedef, positions))
    return executor(lane, space, *args, output_dims=dims, output_coords=coords,
                    **options).run()

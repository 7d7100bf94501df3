"""Which axes of a Space an analysis can treat as parameters, and where their values are.

An analysis is a Program whose lane receives one combination's axis values,
one per axis of the Space in the space's axis order, and calls the model at
values of its choosing (:mod:`labeled_spaces.execution.program`). To
differentiate or optimise with respect to an axis, it replaces that axis's
entry: axis ``space.names[k]`` is ``axis_values[k]``. This module describes
each axis once (:class:`Parameter`) and resolves the ``wrt=`` that users
give (:func:`choose`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._checks import fail, name_list
from ..axes import DataAxis, KeyAxis
from ..space import Space

__all__ = ["Parameter", "choose", "parameters", "with_leaves"]


@dataclass(frozen=True)
class Parameter:
    """One axis of a Space as an analysis sees it.

    Attributes
    ----------
    name : str
        The axis's name (its coordinate in the results).
    index : int
        Its index among the space's axes: its value is a lane's
        ``axis_values[index]``.
    dtype : numpy.dtype
        Dtype of its values.
    value_shape : tuple of int
        Shape of one value (``()`` for scalar axes).
    floating : bool
        Whether its values are floating point.
    scalar_label : bool
        Whether its coordinate labels are floating scalars.
    broadcast : bool
        Whether every value is one scalar (a scalar axis, or a ``shape=``
        axis whose value is its label broadcast).
    data : bool
        Whether it is a :class:`~labeled_spaces.DataAxis` of values the user
        gave; a sub-space's DataAxis that holds the points it kept of another
        kind of axis (``Space.selected_from``: a grid, draws, a design) is not.
    keys : bool
        Whether it is a :class:`~labeled_spaces.KeyAxis` (replicate keys,
        whose int32 values are replicate numbers).
    dim : int
        The index of its dimension in ``space.dims``.
    """

    name: str
    index: int
    dtype: np.dtype
    value_shape: tuple[int, ...]
    floating: bool
    scalar_label: bool
    broadcast: bool
    data: bool
    keys: bool
    dim: int

    @property
    def differentiable(self) -> bool:
        """Floating values that are one scalar per point (the derivative's variable)."""
        return self.floating and self.broadcast


def _is_floating(dtype: Any) -> bool:
    try:
        return bool(jnp.issubdtype(dtype, jnp.floating))
    except TypeError:  # typed PRNG keys and other extended dtypes
        return False


def parameters(space: Space) -> list[Parameter]:
    """Every axis of ``space`` as a :class:`Parameter`, in the space's axis order.

    Examples
    --------
    >>> from labeled_spaces import DataAxis, GridAxis, Space
    >>> space = Space({"a": GridAxis(0.0, 1.0, 3, shape=(2,)), "n": DataAxis([1, 2])},
    ...               mode="product")
    >>> [(p.name, p.differentiable, p.data) for p in parameters(space)]
    [('a', True, False), ('n', False, True)]
    >>> [(p.name, p.data) for p in parameters(space.isel(a=[0, 2]))]  # a's points: no data
    [('a', False), ('n', True)]
    """
    layout = space.layout
    coords = space.coords
    found = []
    for a, (name, axis, table) in enumerate(zip(space.names, space.axes, layout.tables,
                                               strict=True)):
        label = np.asarray(coords[name].values) if name in coords else np.arange(len(table))
        floating = _is_floating(table.dtype)
        scalar_label = label.ndim == 1 and _is_floating(label.dtype)
        if table.ndim == 1:
            broadcast = True
        else:
            rows = table.reshape(len(table), -1)
            broadcast = scalar_label and floating and bool(np.all(rows == rows[:, :1]))
        found.append(Parameter(name, a, np.dtype(table.dtype),
                               tuple(table.shape[1:]), floating, scalar_label, broadcast,
                               isinstance(axis, DataAxis) and name not in space.selected_from,
                               isinstance(axis, KeyAxis),
                               layout.axis_dim[a]))
    return found


def choose(space: Space, wrt: Any, usable: Callable[[Parameter], str | None],
           default: Callable[[Parameter], bool]) -> list[Parameter]:
    """The parameters ``wrt`` names (a name or a sequence of names, in the order given).

    ``wrt=None`` takes every parameter for which ``default`` holds, in the
    order of the space's dimensions (axes of one dimension, a group or a
    zip, in the space's axis order). ``usable(p)`` says why ``p`` cannot be used (None if
    it can): naming such an axis is a ``ValueError`` with that reason.

    Raises
    ------
    TypeError
        ``wrt`` neither None, a string nor a sequence of strings.
    ValueError
        An unknown or repeated name, an empty sequence, an axis that cannot
        be used, or no usable axis by default.
    """
    found = parameters(space)
    by_name = {p.name: p for p in found}
    # coordinates that are no axis: dimensions a sub-space fixed (isel/sel with a scalar)
    fixed = sorted(set(space.coord_names) - set(by_name) - set(space.dims) - {space.dim})
    hint = (f"; {fixed} were fixed by isel/sel with a scalar and are no longer axes: select "
            "with a list (isel(a=[i])) to keep such a dimension of size 1") if fixed else ""
    if wrt is None:
        chosen = sorted((p for p in found if default(p)), key=lambda p: p.dim)
        if not chosen:
            raise ValueError(
                "wrt=None found no axis to use among the space's axes "
                f"{[p.name for p in found]}; name them with wrt={hint}"
            )
        return chosen
    names = name_list("wrt", wrt, "None, an axis name or a sequence of axis names")
    if not names:
        fail("wrt", "at least one axis name", wrt)
    if len(set(names)) != len(names):
        fail("wrt", "distinct axis names", wrt)
    chosen = []
    for name in names:
        if name not in by_name:
            fail("wrt", f"names of the space's axes {list(by_name)}", wrt,
                 detail=f" ({name!r} is not one{hint if name in fixed else ''})")
        problem = usable(by_name[name])
        if problem:
            fail("wrt", "axes that can be used here", wrt, detail=f": {name!r} {problem}")
        chosen.append(by_name[name])
    return chosen


def with_leaves(leaves: Sequence[Any], positions: Sequence[int], values: Sequence[Any]
                ) -> list[Any]:
    """``leaves`` with the entries at ``positions`` replaced by ``values``.

    For a lane's axis values (``positions``: the parameters' indices) as for
    a state's flat leaves.

    Examples
    --------
    >>> with_leaves([1, 2, 3], [0, 2], ["a", "c"])
    ['a', 2, 'c']
    """
    out = list(leaves)
    for position, value in zip(positions, values, strict=True):
        out[position] = value
    return out

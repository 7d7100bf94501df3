"""The labels of a model's outputs: names, own dimensions, coordinates and attributes.

:class:`Outputs` is built (and checked) once, before anything runs, from the
structure and shapes of one combination's output and the executor's
``output_dims``, ``output_coords`` and ``output_attrs``. Every view of the
results (the in-memory Dataset, the zarr store, netCDF files, DataFrames)
takes its names from it, so they agree.

Naming: a data variable is named by the output's key path (``metrics.mean``,
``result`` for a bare array, ``[0]`` for list outputs); a name that is
already a coordinate or dimension of the space, a dimension named in
``output_dims`` (or ``computed``, the mask of partial results) becomes
``result.{name}``, with ``_`` appended while that is taken too. An output's
own dimensions default to ``{name}_dim_{k}``, also with ``_`` appended where
that name is taken by anything else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import xarray as xr

from .._checks import check_label, closest, fail
from .._format import format_count
from .._schema import OUTPUT_DIMS_ATTR, OUTPUT_DTYPES_ATTR, OUTPUT_TREE_ATTR, OUTPUTS_ATTR
from ..axes.base import check_attr_values
from ..space import Space, keypath_name
from .output_tree import structure_to_json

__all__ = [
    "COMPUTED", "OutputCoord", "Outputs", "output_names", "unique_names",
]

COMPUTED = "computed"  # the data variable of partial results that marks finished combinations

def output_names(treedef: Any) -> list[str]:
    """Names of a model output's leaves by key path: ``metrics.mean``, ``[0]``, ``result``.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces.results import output_names
    >>> output_names(jax.tree.structure({"a": 1, "m": {"mean": 2}}))
    ['a', 'm.mean']
    >>> output_names(jax.tree.structure(1.0))
    ['result']
    """
    dummy = treedef.unflatten([0] * treedef.num_leaves)
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(dummy)[0]]
    return [keypath_name(p) if p else "result" for p in paths]


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``result.{name}`` (then with ``_`` appended) where that is taken."""
    if name not in taken:
        return name
    new = f"result.{name}"
    while new in taken:
        new += "_"
    return new


def unique_names(names: Sequence[str], taken: Any) -> list[str]:
    """``names`` made distinct from ``taken``, from each other and from the names after them.

    Examples
    --------
    >>> from labeled_spaces.results.names import unique_names
    >>> unique_names(["coupling", "y"], {"coupling"})
    ['result.coupling', 'y']
    """
    taken = {str(n) for n in taken}
    out: list[str] = []
    for k, name in enumerate(names):
        out.append(_unique(name, taken | set(names[k + 1:])))
        taken.add(out[-1])
    return out


def _space_names(space: Space) -> set[str]:
    return set(space.coord_names)


def _check_output_dims(output_dims: Any, names: Sequence[str], shapes: Sequence[tuple],
                       taken: set[str]) -> dict[str, tuple[str, ...]]:
    if output_dims is None:
        return {}
    if not isinstance(output_dims, Mapping):
        fail("output_dims", "a dict {output name: dimension names}", output_dims, TypeError)
    lengths: dict[str, tuple[int, str]] = {}  # dim -> (length, the output that set it)
    checked: dict[str, tuple[str, ...]] = {}
    for name, dims in output_dims.items():
        if name not in names:
            raise ValueError(
                f"output_dims names {name!r}, which is not an output of the model; "
                f"expected one of {list(names)}"
            )
        if isinstance(dims, str):
            dims = (dims,)
        elif not isinstance(dims, Sequence):
            fail(f"output_dims[{name!r}]", "a tuple of dimension names", dims, TypeError)
        dims = tuple(dims)
        shape = shapes[list(names).index(name)]
        if len(dims) != len(shape) or not all(isinstance(d, str) and d for d in dims):
            raise ValueError(
                f"output_dims[{name!r}] must name the {len(shape)} dimension(s) of that "
                f"output (shape {shape}) with non-empty strings, got {dims!r}"
            )
        if len(set(dims)) != len(dims):
            raise ValueError(f"output_dims[{name!r}] names a dimension twice: {dims!r}")
        clash = [d for d in dims if d in taken]
        if clash:
            raise ValueError(
                f"output_dims[{name!r}] = {dims!r} reuses the space's dimension or "
                f"coordinate name(s) {clash}"
            )
        for d, length in zip(dims, shape, strict=True):
            if d in lengths and lengths[d][0] != length:
                other, first = lengths[d][1], lengths[d][0]
                raise ValueError(
                    f"output_dims gives dimension {d!r} length {first} (output {other!r}) "
                    f"and length {length} (output {name!r}); one name, one length"
                )
            lengths.setdefault(d, (length, name))
        checked[name] = dims
    return checked


@dataclass(frozen=True)
class OutputCoord:
    """A coordinate of the outputs' own dimensions: dims, values and attrs (no xarray yet)."""

    dims: tuple[str, ...]
    values: np.ndarray
    attrs: dict[str, Any]

    def variable(self) -> xr.Variable:
        """As an ``xarray.Variable``."""
        return xr.Variable(self.dims, self.values, self.attrs)


def _unnamed_hint(dim: str, length: int, lengths: Mapping[str, int]) -> str:
    """How to put a coordinate on a dimension: its nearest name, or an unnamed one to name.

    An output's own dimensions are ``{output}_dim_{k}`` until ``output_dims``
    names them; a coordinate given for ``time`` alone lies along nothing.
    """
    hint = closest(dim, [d for d in lengths if lengths[d] == length])
    if hint:
        return hint
    unnamed = [d for d, n in lengths.items() if n == length and "_dim_" in d]
    if not unnamed:
        return ""
    output, k = unnamed[0].rsplit("_dim_", 1)
    ndim = sum(1 for d in lengths if d.rsplit("_dim_", 1)[0] == output and "_dim_" in d)
    named = tuple(dim if str(i) == k else f"{output}_dim_{i}" for i in range(ndim))
    return (f"; to give {unnamed[0]!r} this coordinate, name it in output_dims: "
            f"output_dims={{{output!r}: {named!r}}}")


def _coord_variable(name: str, value: Any, lengths: Mapping[str, int]) -> OutputCoord:
    """An output coordinate from an array, ``(values, attrs)`` or a DataArray, checked."""
    attrs: Mapping[str, Any] = {}
    if isinstance(value, OutputCoord):
        dims, data, attrs = value.dims, value.values, value.attrs
    elif isinstance(value, (xr.DataArray, xr.Variable)):
        dims, data, attrs = tuple(str(d) for d in value.dims), value.values, value.attrs
    else:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Mapping):
            value, attrs = value
        data = np.asarray(value)
        dims = (name,) if data.ndim == 1 else ()
        if data.ndim != 1:
            fail(f"output_coords[{name!r}]", "1-D values, (values, attrs) or an xarray "
                 "DataArray", value, ValueError, f" of shape {data.shape}")
    if data.dtype == object:
        fail(f"output_coords[{name!r}]", "numbers, strings or dates", value, TypeError)
    check_attr_values(f"the attrs of output_coords[{name!r}]", attrs)
    unknown = [d for d in dims if d not in lengths]
    if unknown:
        raise ValueError(
            f"output_coords[{name!r}] lies along {list(unknown)}, which are not dimensions of "
            f"any output; the outputs' dimensions are {dict(lengths)}"
            f"{_unnamed_hint(unknown[0], data.shape[dims.index(unknown[0])], lengths)}"
        )
    for d, n in zip(dims, data.shape, strict=True):
        if n != lengths[d]:
            raise ValueError(
                f"output_coords[{name!r}] has {format_count(n, 'value')} along {d!r}, but "
                f"the outputs have {format_count(lengths[d], 'point')} there"
            )
    return OutputCoord(tuple(dims), np.asarray(data), dict(attrs))


@dataclass(frozen=True, eq=False)
class Outputs:
    """The checked labels of a model's outputs over a Space.

    Attributes
    ----------
    treedef : jax tree structure
        Structure of one combination's output.
    names : tuple of str
        Key path of every output leaf.
    var_names : tuple of str
        Data variable names (collision-free, see the module docs).
    shapes, dtypes : tuples
        Each output's own shape and dtype.
    dims : tuple of tuple of str
        Each output's own dimension names.
    coords : dict
        ``{name: OutputCoord}`` coordinates of the outputs' dimensions.
    attrs : tuple of dict
        Each output's attributes.
    output_dims : dict
        The ``output_dims`` given (checked), as recorded in files.
    taken : frozenset
        The names the variable names were kept apart from.
    fingerprint : str
        A digest of the traced model that makes the outputs ("" where unknown).
    arguments : dict or None
        The model's extra arguments as ``{"args": [...], "kwargs": {...}}``
        (see :func:`labeled_spaces.results.identity.describe_arguments`).
    settings : dict or None
        The settings of the Program that made the outputs (an analysis's own
        arguments, ``Program.settings``), None for the model itself.
    """

    treedef: Any
    names: tuple[str, ...]
    var_names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]
    dims: tuple[tuple[str, ...], ...]
    coords: dict[str, OutputCoord]
    attrs: tuple[dict[str, Any], ...]
    output_dims: dict[str, tuple[str, ...]]
    taken: frozenset[str] = frozenset()  # names the variables were kept apart from
    fingerprint: str = ""  # of the traced model that makes these outputs ("" if unknown)
    arguments: dict[str, Any] | None = None  # the model's extra arguments, described
    settings: dict[str, Any] | None = None  # the Program's settings (an analysis's arguments)

    @classmethod
    def build(
        cls,
        space: Space,
        treedef: Any,
        shapes: Sequence[tuple[int, ...]],
        dtypes: Sequence[Any],
        output_dims: Any = None,
        output_coords: Any = None,
        output_attrs: Any = None,
        partial: bool = False,
    ) -> Outputs:
        """Check the output options against one combination's output and name everything.

        Raises ``TypeError``/``ValueError`` naming the option and the value.
        """
        names = output_names(treedef)
        shapes = [tuple(int(n) for n in s) for s in shapes]
        space_names = _space_names(space)
        checked_dims = _check_output_dims(output_dims, names, shapes, space_names)
        named_dims = {d for dims in checked_dims.values() for d in dims}
        taken = space_names | named_dims | ({COMPUTED} if partial else set())
        var_names = unique_names(names, taken)
        # default own dims never collide with variables, space names or other dims
        used = taken | set(var_names)
        dims_per_output = []
        for name, var, shape in zip(names, var_names, shapes, strict=True):
            if name in checked_dims:
                dims_per_output.append(checked_dims[name])
                continue
            own = []
            for k in range(len(shape)):
                dim = f"{var}_dim_{k}"
                while dim in used:
                    dim += "_"
                used.add(dim)
                own.append(dim)
            dims_per_output.append(tuple(own))
        lengths: dict[str, int] = {}
        for dims, shape in zip(dims_per_output, shapes, strict=True):
            lengths.update(zip(dims, shape, strict=True))
        coords = cls._coords(output_coords, lengths, space_names | set(var_names))
        attrs = cls._attrs(output_attrs, names, var_names)
        return cls(treedef, tuple(names), tuple(var_names), tuple(shapes),
                   tuple(np.dtype(d) for d in dtypes), tuple(dims_per_output), coords, attrs,
                   checked_dims, frozenset(taken))

    @staticmethod
    def _coords(output_coords: Any, lengths: Mapping[str, int], taken: set[str]
                ) -> dict[str, OutputCoord]:
        if output_coords is None:
            return {}
        if not isinstance(output_coords, Mapping):
            fail("output_coords", "a dict {dimension: values}", output_coords, TypeError)
        coords = {}
        for name, value in output_coords.items():
            check_label("output_coords key", name)
            if name in taken:
                raise ValueError(f"output_coords[{name!r}] reuses a name of the space or of "
                                 "an output")
            coords[name] = _coord_variable(name, value, lengths)
        return coords

    @staticmethod
    def _attrs(output_attrs: Any, names: Sequence[str], var_names: Sequence[str]
               ) -> tuple[dict[str, Any], ...]:
        out: list[dict[str, Any]] = [{} for _ in names]
        if output_attrs is None:
            return tuple(out)
        if not isinstance(output_attrs, Mapping):
            fail("output_attrs", "a dict {output name: attrs}", output_attrs, TypeError)
        for name, attrs in output_attrs.items():
            if name in names:
                k = list(names).index(name)
            elif name in var_names:
                k = list(var_names).index(name)
            else:
                raise ValueError(f"output_attrs names {name!r}, which is not an output of the "
                                 f"model; expected one of {list(names)}")
            if not isinstance(attrs, Mapping):
                fail(f"output_attrs[{name!r}]", "a mapping", attrs, TypeError)
            check_attr_values(f"output_attrs[{name!r}]", attrs)
            out[k] = dict(attrs)
        return tuple(out)

    @property
    def lengths(self) -> dict[str, int]:
        """``{own dim: length}`` over all outputs."""
        out: dict[str, int] = {}
        for dims, shape in zip(self.dims, self.shapes, strict=True):
            out.update(zip(dims, shape, strict=True))
        return out

    def lane_bytes(self) -> int:
        """Bytes of one combination's outputs."""
        return sum(int(np.prod(s)) * d.itemsize for s, d in zip(self.shapes, self.dtypes,
                                                                  strict=True))

    def var_name(self, name: str) -> str:
        """The data variable of output ``name`` (a key path or a variable name)."""
        if name in self.var_names:
            return name
        if name in self.names:
            return self.var_names[self.names.index(name)]
        raise KeyError(f"{name!r} is not an output; the outputs are {list(self.var_names)}")

    def file_attrs(self) -> dict[str, str]:
        """The ``labeled_spaces:output*`` attrs that describe the outputs in a file."""
        attrs = {
            OUTPUTS_ATTR: json.dumps(list(self.names)),
            OUTPUT_DIMS_ATTR: json.dumps(self.output_dims),
            OUTPUT_DTYPES_ATTR: json.dumps([str(d) for d in self.dtypes]),
        }
        tree = structure_to_json(self.treedef)
        if tree is not None:
            attrs[OUTPUT_TREE_ATTR] = json.dumps(tree)
        return attrs

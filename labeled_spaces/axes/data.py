"""DataAxis: predefined values (numbers, vectors, connectivity matrices) with optional labels."""

from __future__ import annotations

import datetime
import numbers
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import fail
from .._codec import decode_array, encode_array
from .._format import call_repr, clipped, elided, format_count, short_repr
from ..grid import MAX_SIZE
from .base import AbstractAxis, NotRebuildable

__all__ = ["DataAxis", "check_fits", "check_labels"]

_DEFAULT = object()  # value_coordinate not given


def check_fits(values: np.ndarray, device: jax.Array) -> None:
    """Refuse data that JAX's default dtypes cannot hold (they would wrap or overflow).

    Parameters
    ----------
    values : numpy.ndarray
        The data as given.
    device : jax.Array
        The same data as JAX holds it.
    """
    if np.issubdtype(values.dtype, np.integer):
        if device.dtype != values.dtype and not np.array_equal(
            np.asarray(device).astype(values.dtype), values
        ):
            info = np.iinfo(device.dtype)
            raise ValueError(
                f"values must fit in {device.dtype} (JAX's integer without x64: "
                f"{info.min}..{info.max}), got values from {values.min()} to {values.max()}; "
                "enable jax_enable_x64 or give floats"
            )
    elif np.issubdtype(values.dtype, np.inexact):
        lost = np.isfinite(values) & ~np.isfinite(np.asarray(device))
        if lost.any():
            raise ValueError(
                f"values must fit in {device.dtype} (the dtype the model receives), got "
                f"{values[lost].ravel()[0].item()!r} which overflows to infinity; enable "
                "jax_enable_x64 or rescale the values"
            )


def _kind(label: Any) -> str:
    if isinstance(label, (str, np.str_)):
        return "strings"
    if isinstance(label, (bytes, np.bytes_)):
        return "bytes"
    if isinstance(label, (bool, np.bool_)):
        return "booleans"
    if isinstance(label, (numbers.Number, np.number)):
        return "numbers"
    if isinstance(label, (datetime.date, datetime.timedelta, np.datetime64, np.timedelta64)):
        return "dates"
    return type(label).__name__


def check_labels(labels: Any, size: int) -> np.ndarray:
    """Labels as a read-only 1-D array of one kind, one per point (a copy of what was given).

    Examples
    --------
    >>> from labeled_spaces.axes.data import check_labels
    >>> check_labels(["a", "b"], 2)
    array(['a', 'b'], dtype='<U1')
    >>> check_labels(["a", 1], 2)
    Traceback (most recent call last):
    ...
    TypeError: labels must be all of one kind (strings, numbers, bytes or dates), got ['a', 1] ...
    """
    if not isinstance(labels, np.ndarray) and isinstance(labels, Sequence):
        kinds = sorted({_kind(x) for x in labels})
        if len(kinds) > 1:
            fail("labels", "all of one kind (strings, numbers, bytes or dates)", labels,
                 TypeError, f" mixing {' and '.join(kinds)}")
    array = np.array(labels, copy=True)
    if array.dtype == object:
        fail("labels", "strings, numbers, bytes or dates", labels, TypeError)
    if array.ndim != 1 or len(array) != size:
        raise ValueError(
            f"labels must be 1-D with one label per value ({size}), "
            f"got {short_repr(labels)} of shape {array.shape}"
        )
    array.flags.writeable = False
    return array


class DataAxis(AbstractAxis):
    """Predefined values; the first dimension of ``values`` is the axis.

    Parameters
    ----------
    values : array-like
        At least one point; points may be arrays (e.g. connectivity matrices).
        Numbers, booleans or complex numbers. The axis keeps its own copy.
    labels : sequence, optional
        One label per point (strings, numbers, bytes or dates, all of one
        kind); becomes the coordinate. The axis keeps its own copy.
    name, group, attrs
        See :class:`AbstractAxis`.
    value_coordinate : array-like or None, optional
        The values a Space keeps as the non-index coordinate ``{name}_value``.
        Default: the values, where the coordinate does not show them
        (``labels`` given, or array points); None keeps none.

    Notes
    -----
    The model receives ``jnp.asarray(values)``. The coordinate is ``labels``
    if given; else the values themselves in the precision they were given
    (for scalar points); else ``0..size-1``.

    Examples
    --------
    >>> from labeled_spaces import DataAxis
    >>> axis = DataAxis([0.01, 0.02, 0.05])
    >>> axis.size, axis.coordinate().dtype
    (3, dtype('float64'))
    >>> DataAxis([[1.0, 0.5], [0.5, 1.0]], labels=["a", "b"]).coordinate()
    array(['a', 'b'], dtype='<U1')
    """

    spec_fields = ("values", "labels")

    def __init__(
        self,
        values: Any,
        labels: Sequence[Any] | None = None,
        *,
        name: str | None = None,
        group: Hashable | None = None,
        attrs: Mapping[str, Any] | None = None,
        value_coordinate: Any = _DEFAULT,
    ) -> None:
        super().__init__(name=name, group=group, attrs=attrs)
        try:
            data = np.array(values, copy=True)
        except (TypeError, ValueError) as err:
            raise TypeError(f"values must be a numeric array-like, got {values!r}: {err}") from None
        if data.dtype == object or not (
            np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.bool_)
        ):
            names, shown = "", repr(values)
            if data.dtype.kind in "US" and data.ndim == 1:  # conditions by name
                short = len(shown) <= 120  # the hint repeats a short list, as it is written
                names = (f"; to sweep named conditions, give the model numbers and the names "
                         f"as labels: DataAxis(np.arange({data.size}), "
                         f"labels={shown if short else 'names'})")
                if not short:  # 300 subjects' names, twice, would be 9000 characters
                    shown = f"{clipped(shown, 80)} ({data.size} names)"
            raise TypeError(f"values must be numeric, got dtype {data.dtype} from {shown}"
                            f"{names}")
        if data.ndim == 0:
            raise ValueError(
                f"values must have a first dimension (the axis), got a scalar {values!r}"
            )
        if data.size == 0:
            raise ValueError(f"values must hold at least one value, got {values!r}")
        if len(data) >= MAX_SIZE:
            fail("values", "fewer than 2**30 points", f"<{len(data)} points>")
        with warnings.catch_warnings():  # the check below says what a silent cast would lose
            warnings.simplefilter("ignore")
            self.values = values if isinstance(values, jax.Array) else jnp.asarray(data)
        check_fits(data, self.values)
        data.flags.writeable = False
        self._data = data
        self.labels: np.ndarray | None = (
            None if labels is None else check_labels(labels, len(data))
        )
        if value_coordinate is _DEFAULT:
            keep = self.labels is not None or data.ndim > 1
            self._value_coordinate = data if keep else None
        elif value_coordinate is None:
            self._value_coordinate = None
        else:
            self._value_coordinate = np.array(value_coordinate, copy=True)
            if len(self._value_coordinate) != len(data):
                fail("value_coordinate", f"one entry per value ({len(data)})",
                     f"<shape {self._value_coordinate.shape}>")
        self._explicit_value_coordinate = value_coordinate is not _DEFAULT

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def data(self) -> np.ndarray:
        """The values as given (a read-only NumPy array in their own dtype)."""
        return self._data

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        return self.values

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        if self.labels is not None:
            return self.labels
        if self._data.ndim == 1:
            return self._data
        return np.arange(self.size)

    def value_coordinate(self, key: jax.Array | None = None) -> np.ndarray | None:
        return self._value_coordinate

    def spec_values(self, references: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The values, labels and value coordinate, as JSON-ready lists.

        Parameters
        ----------
        references : mapping, optional
            ``{"values" or "value_coordinate": coordinate name}``: fields that a
            coordinate of the same file holds exactly (in its own dtype, cast to
            this axis's); they are written as ``{"coordinate": name, "dtype",
            "shape"}`` instead of their values, and never encoded (a Space of
            200 connectomes of 68 x 68 saves them once, as its coordinate).

        Returns
        -------
        dict

        Examples
        --------
        >>> from labeled_spaces import DataAxis
        >>> DataAxis([1.0, 2.0]).spec_values()
        {'values': [1.0, 2.0], 'dtype': 'float64'}
        >>> DataAxis([1.0, 2.0]).spec_values({"values": "x"})
        {'values': {'coordinate': 'x', 'dtype': 'float64', 'shape': [2]}, 'dtype': 'float64'}
        """
        references = references or {}

        def reference(name: str, array: np.ndarray) -> dict[str, Any]:
            return {"coordinate": name, "dtype": str(array.dtype), "shape": list(array.shape)}

        spec: dict[str, Any]
        if "values" in references:
            spec = {"values": reference(references["values"], self._data),
                    "dtype": str(self._data.dtype)}
        else:
            encoded = encode_array(self._data)
            spec = {"values": encoded["values"], "dtype": encoded["dtype"]}
        if self.labels is not None:
            labels = encode_array(self.labels)
            spec["labels"], spec["labels_dtype"] = labels["values"], labels["dtype"]
        if self._explicit_value_coordinate:  # a sub-space's axis keeps its value coordinate
            override = self._value_coordinate
            if override is None:
                spec["value_coordinate"] = None
            elif "value_coordinate" in references:
                spec["value_coordinate"] = reference(references["value_coordinate"], override)
            else:
                spec["value_coordinate"] = encode_array(override)
        return spec

    def spec_with_references(self, references: Mapping[str, str]) -> dict[str, Any]:
        """:meth:`spec`, with fields a coordinate holds referred to it (see :meth:`spec_values`).

        Rebuild it with ``axis_from_spec`` after replacing each reference by the
        coordinate's values (``Space.from_attrs(attrs, data=dataset)`` does).
        """
        spec = self._base_spec()
        spec.update(self.spec_values(references))
        return spec

    @classmethod
    def from_spec_values(cls, values: Mapping[str, Any], common: Mapping[str, Any]
                         ) -> DataAxis:
        for field in ("values", "value_coordinate"):
            held = values.get(field)
            if isinstance(held, Mapping) and "coordinate" in held:
                raise NotRebuildable(
                    f"the {field} of this DataAxis are held by the coordinate "
                    f"{held['coordinate']!r} of the file, not by the spec; open the file with "
                    "labeled_spaces.open_results(path), or give Space.from_attrs(attrs, "
                    "data=the Dataset)"
                )
        data = decode_array({"values": values["values"], "dtype": values["dtype"]}) \
            if "dtype" in values else np.asarray(values["values"])
        labels = values.get("labels")
        if labels is not None and values.get("labels_dtype") is not None:
            labels = decode_array({"values": labels, "dtype": values["labels_dtype"]})
        extra: dict[str, Any] = {}
        if "value_coordinate" in values:
            override = values["value_coordinate"]
            extra["value_coordinate"] = None if override is None else decode_array(override)
        return cls(data, labels=labels, **common, **extra)

    def __repr__(self) -> str:
        # one line, whatever the size: long value and label lists are elided
        if self._data.ndim == 1:
            values = np.array2string(self._data, threshold=6, separator=", ")
        else:
            values = (f"<{format_count(self.size, 'point')} of shape {self._data.shape[1:]}, "
                      f"{self._data.dtype}>")
        labels = []
        if self.labels is not None:
            # dates as dates (tolist() gives nanosecond dates as bare integers)
            shown = [repr(str(x)) for x in self.labels] if self.labels.dtype.kind in "mM" \
                else [repr(x) for x in self.labels.tolist()]
            labels = [f"labels={elided(shown)}"]
        return call_repr("DataAxis", values, *labels, **self._repr_fields())

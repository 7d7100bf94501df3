"""The axis contract, and the registry that rebuilds axes from their specifications.

An axis replaces a leaf of a parameter pytree. It knows how many points it
has (``size``), how to produce their values (``generate_values(key)``) and
how to label them (``coordinate(key)``). Axes know nothing about spaces or
execution.

An axis class that declares ``spec_fields`` in its own body is registered
under its class name: :meth:`AbstractAxis.spec` describes an axis by those
fields and :func:`axis_from_spec` calls that class with them. Nothing else
is ever rebuilt from a specification, so a file naming any other class is
refused: what a file holds is data, never code.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import jax
import numpy as np

from .._checks import check_label, fail
from .._codec import jsonable

__all__ = ["AbstractAxis", "AXIS_TYPES", "NotRebuildable", "axis_from_spec", "check_attr_values",
           "value_dims"]

# registered axis classes by qualified name, module.qualname (filled by
# AbstractAxis.__init_subclass__): a user's own class that shares the name of
# one of ours (GridAxis) is another entry, never a replacement
AXIS_TYPES: dict[str, type[AbstractAxis]] = {}
_PACKAGE = __name__.split(".")[0]


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _own(cls: type) -> bool:
    """Whether ``cls`` is one of the package's own classes."""
    return cls.__module__ == _PACKAGE or cls.__module__.startswith(_PACKAGE + ".")


def _registered(kind: Any, qualified: Any) -> type[AbstractAxis] | None:
    """The registered class a spec names, never any other (nothing is imported).

    By ``qualified`` (the spec's ``"class"``, ``module.qualname``) where the
    spec gives it; else ``kind`` (its ``"type"``, a bare name) names one of
    the package's own classes, as every file has named them.
    """
    if qualified is not None:
        return AXIS_TYPES.get(qualified) if isinstance(qualified, str) else None
    if not isinstance(kind, str):
        return None
    return next((c for c in AXIS_TYPES.values() if _own(c) and c.__name__ == kind), None)


COMMON_FIELDS = ("name", "group", "attrs")


class NotRebuildable(ValueError):
    """A specification describes an axis that cannot be rebuilt from it alone.

    Rebuild the Space with the original state (``Space.from_attrs(attrs,
    state=...)``), from which such axes are taken.
    """


def check_attr_values(name: str, attrs: Mapping[str, Any]) -> None:
    """Refuse a value that a file's attrs (JSON) cannot hold, naming it ``name[key]``.

    Strings, numbers, booleans, None, arrays, and lists or dicts of these pass.

    Examples
    --------
    >>> from labeled_spaces.axes.base import check_attr_values
    >>> check_attr_values("attrs", {"units": "ms", "tags": {1, 2}})
    Traceback (most recent call last):
    ...
    TypeError: attrs['tags'] must be a string, number, array, or a list or dict of ... (set)
    """
    for key, value in attrs.items():
        try:
            json.dumps(jsonable(value))
        except (TypeError, ValueError):
            fail(f"{name}[{key!r}]", "a string, number, array, or a list or dict of these",
                 value, TypeError, f" ({type(value).__name__})")


class AbstractAxis(ABC):
    """One varying leaf of a parameter pytree.

    Parameters
    ----------
    name : str, optional
        Name of the axis's coordinate (and of its dimension when the axis has
        one of its own). Default: the axis's key path in the state (see
        :class:`labeled_spaces.Space`).
    group : hashable, optional
        Axes sharing a group label are zipped into one dimension named
        ``str(group)`` before the Space's mode applies (TVB-Optim semantics).
    attrs : mapping, optional
        Attributes of the coordinate, e.g. ``{"units": "ms"}``.

    Notes
    -----
    Subclasses implement :meth:`generate_values` and :attr:`size`; they may
    override :meth:`coordinate` to give better labels than ``0..size-1``.
    A subclass that lists the constructor arguments describing it in a
    class attribute ``spec_fields`` is registered (by module and qualified
    name, so a class of the same name elsewhere is another one): a saved
    Space holding it is rebuilt from the file by calling the class with
    those arguments, once its module is imported (a file never imports
    anything). Other axes are taken from the state given to
    ``Space.from_attrs``.

    Examples
    --------
    >>> from labeled_spaces import GridAxis
    >>> axis = GridAxis(0.0, 1.0, 3, name="coupling", attrs={"units": "a.u."})
    >>> axis.size, axis.name, axis.attrs["units"]
    (3, 'coupling', 'a.u.')
    """

    #: constructor arguments that describe the axis (declared by registered classes)
    spec_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec_fields" in cls.__dict__:
            AXIS_TYPES[_qualified(cls)] = cls

    def __init__(
        self,
        name: str | None = None,
        group: Hashable | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        if name is not None:
            check_label("name", name, "a non-empty string or None")
        if group is not None:
            try:
                hash(group)
            except TypeError:
                fail("group", "hashable", group, TypeError)
        if attrs is not None and not isinstance(attrs, Mapping):
            fail("attrs", "a mapping or None", attrs, TypeError)
        check_attr_values("attrs", attrs or {})
        self.name = name
        self.group = group
        self.attrs = dict(attrs) if attrs is not None else {}

    @abstractmethod
    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        """All values of the axis, shape ``(size, *value_shape)``.

        Parameters
        ----------
        key : jax.Array, optional
            Random key; ignored by deterministic axes.

        Returns
        -------
        jax.Array
        """

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of points on the axis."""

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        """The 1-D coordinate labels of the axis (length :attr:`size`).

        The values themselves for scalar axes, the broadcast scalar for
        ``shape=`` axes, and ``0..size-1`` where no scalar describes a point.

        Parameters
        ----------
        key : jax.Array, optional
            The key the axis samples with (stochastic axes label by their draws).

        Returns
        -------
        numpy.ndarray

        Examples
        --------
        >>> from labeled_spaces import GridAxis
        >>> GridAxis(0.0, 0.3, 4).coordinate()
        array([0. , 0.1, 0.2, 0.3])
        """
        return np.arange(self.size)

    def value_coordinate(self, key: jax.Array | None = None) -> np.ndarray | None:
        """The values, where :meth:`coordinate` does not already show them; else None.

        A Space keeps them as the non-index coordinate ``{name}_value`` (with
        the point's own dimensions ``{name}_dim_k``), so that labels such as
        ``0..size-1`` or ``"subject-01"`` do not hide what the model received.
        By default: the values where :meth:`coordinate` is the default
        ``0..size-1``, else None.
        """
        if type(self).coordinate is AbstractAxis.coordinate:
            return np.asarray(self.generate_values(key))
        return None

    def check_values(self, values: np.ndarray) -> str | None:
        """What is wrong with the generated ``values`` (e.g. overflow), or None.

        A Space calls it once with the values it generated, and refuses the
        axis with this description.
        """
        return None

    # -- specification ----------------------------------------------------
    def _base_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": type(self).__name__}
        if self.name is not None:
            spec["name"] = self.name
        if self.group is not None:
            spec["group"] = self.group if isinstance(self.group, (str, int)) else str(self.group)
        if self.attrs:
            spec["attrs"] = jsonable(self.attrs)
        return spec

    def spec_values(self) -> dict[str, Any]:
        """The declared fields as JSON-ready values (registered classes may override).

        Returns
        -------
        dict
        """
        return {f: jsonable(getattr(self, f)) for f in self.spec_fields}

    @classmethod
    def from_spec_values(cls, values: Mapping[str, Any], common: Mapping[str, Any]
                         ) -> AbstractAxis:
        """The axis of :meth:`spec_values` (registered classes may override).

        Parameters
        ----------
        values : mapping
            The declared fields, as :meth:`spec_values` gave them.
        common : mapping
            ``name``, ``group`` and ``attrs`` where given.

        Returns
        -------
        AbstractAxis
        """
        return cls(**values, **common)

    def spec(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :func:`axis_from_spec` rebuilds the axis.

        A registered axis (one whose class declares ``spec_fields``) is
        described by those fields. Any other axis is described by its class
        and common arguments only: a saved Space holding it is rebuilt by
        ``Space.from_attrs(attrs, state=...)``, which takes the axis from the
        given state.

        Returns
        -------
        dict

        Examples
        --------
        >>> from labeled_spaces import GridAxis
        >>> GridAxis(0.0, 1.0, 3, name="g").spec()
        {'type': 'GridAxis', 'name': 'g', 'low': 0.0, 'high': 1.0, 'n': 3}
        """
        cls = type(self)
        spec = self._base_spec()
        if self.rebuildable:
            spec.update(self.spec_values())
        if not (self.rebuildable and _own(cls)):  # ours are known by their bare name
            spec["class"] = _qualified(cls)
        return spec

    @property
    def rebuildable(self) -> bool:
        """Whether :func:`axis_from_spec` rebuilds this axis from its :meth:`spec`."""
        return AXIS_TYPES.get(_qualified(type(self))) is type(self)

    def _repr_fields(self) -> dict[str, Any]:
        """``name``, ``group`` and ``attrs`` where set: the fields every axis's repr ends with."""
        shown = {"name": self.name, "group": self.group, "attrs": self.attrs or None}
        return {k: v for k, v in shown.items() if v is not None}

    def _kw_repr(self) -> str:
        """:meth:`_repr_fields` as the tail of a repr: ``", name='k', group='g'"``."""
        return "".join(f", {k}={v!r}" for k, v in self._repr_fields().items())


def axis_from_spec(spec: Mapping[str, Any]) -> AbstractAxis:
    """Rebuild an axis from :meth:`AbstractAxis.spec` (e.g. read from a saved file).

    Only registered axis classes are ever called (see :class:`AbstractAxis`);
    a spec naming anything else is a ``ValueError``.

    Parameters
    ----------
    spec : mapping
        What ``axis.spec()`` returned (after a JSON round trip).

    Returns
    -------
    AbstractAxis

    Examples
    --------
    >>> import json
    >>> from labeled_spaces import GridAxis, axis_from_spec
    >>> axis = GridAxis(0.0, 1.0, 3, name="g")
    >>> axis_from_spec(json.loads(json.dumps(axis.spec())))
    GridAxis(low=0.0, high=1.0, n=3, name='g')
    """
    if not isinstance(spec, Mapping):
        fail("spec", "a mapping (an axis specification)", spec, TypeError)
    spec = dict(spec)
    kind = spec.pop("type", None)
    cls = _registered(kind, spec.get("class"))
    if cls is None:
        known = sorted(c.__name__ if _own(c) else _qualified(c) for c in AXIS_TYPES.values())
        raise NotRebuildable(
            f"spec['type'] must name a registered axis class ({known}), "
            f"got {kind!r}; a custom axis is rebuilt from the state that holds it "
            "(Space.from_attrs(attrs, state=...))"
        )
    common = {k: spec.pop(k) for k in COMMON_FIELDS if k in spec}
    spec.pop("class", None)
    spec.pop("path", None)
    try:
        return cls.from_spec_values(spec, common)
    except KeyError as err:
        raise ValueError(f"spec of a {kind} lacks the entry {err}, got {sorted(spec)}") from None
    except TypeError as err:  # a value of the wrong kind in a file is a bad value of the file
        raise ValueError(f"spec of a {kind} is not valid: {err}") from None


def value_dims(name: str, ndim: int) -> tuple[str, ...]:
    """Names ``{name}_dim_k`` of the own dimensions of an axis's ``ndim``-D points.

    Examples
    --------
    >>> from labeled_spaces.axes import value_dims
    >>> value_dims("w", 2)
    ('w_dim_0', 'w_dim_1')
    """
    return tuple(f"{name}_dim_{k}" for k in range(ndim))

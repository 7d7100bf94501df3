"""How a NumPyro distribution is described in a file, rebuilt from it, and shown.

A distribution is described by its class (``module.qualname``) and the
arguments of its constructor, read back from the attributes of the same
name: numbers, strings, arrays, shapes and nested distributions
(``Normal(...).expand(...)``, ``TruncatedNormal``, ``MixtureSameFamily``).
Argument sets are tried largest first (``MultivariateNormal`` takes one of
three matrices). A description is kept only if rebuilding it gives an
identical distribution: same class and shapes, and the same stored fields
(arrays bit for bit, in their dtypes; where a field cannot be compared, the
same draws for a fixed key). Otherwise (transforms, callables, parameters
the constructor does not expose) it is marked as not rebuildable, and a
Space read from the file needs the original state. Rebuilding never imports
anything: the class is looked up among the subclasses of
``numpyro.distributions.Distribution`` already loaded, and called only with
the keyword arguments its constructor declares.
"""

from __future__ import annotations

import inspect
import itertools
import numbers
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from .._checks import fail
from .._codec import decode_array, encode_array
from .base import NotRebuildable
from .distribution_identity import distribution_base, is_distribution, same_distribution

__all__ = [
    "describe_distribution",
    "distribution_from_spec",
    "distribution_spec",
]


def _known_classes() -> dict[str, type[Any]]:
    """Every loaded subclass of numpyro's Distribution, by ``module.qualname``."""
    found: dict[str, type] = {}
    todo = [distribution_base()]
    while todo:
        cls = todo.pop()
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        todo.extend(cls.__subclasses__())
    return found


def _encode_param(value: Any) -> Any:
    """A constructor argument as JSON, or raise TypeError for what cannot be described."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, np.generic):
        if isinstance(value, complex):
            raise TypeError("complex scalar")
        return value
    if is_distribution(value):
        return {"distribution": _describe(value)}
    if isinstance(value, tuple) and all(isinstance(v, (int, np.integer)) for v in value):
        return {"shape": [int(v) for v in value]}
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        return {"array": encode_array(value)}
    raise TypeError(type(value).__name__)


def _decode_param(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "distribution" in value:
            return distribution_from_spec(value["distribution"])
        if "shape" in value:
            shape = value["shape"]
            if not isinstance(shape, list) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in shape):
                raise ValueError(f"a distribution's shape parameter must be a list of "
                                 f"integers, got {shape!r}")
            return tuple(shape)
        if "array" in value:
            return decode_array(value["array"])
        raise ValueError(f"a distribution parameter must be a number, array, shape or "
                         f"distribution, got {value!r}")
    return value


# constructor arguments stored under another attribute name
_ALIASES = {"base_distribution": "base_dist"}
# beyond this many optional arguments, only all, one at a time and none are tried
_MAX_SUBSET_SEARCH = 6


def _attribute(dist: Any, name: str) -> Any:
    """The attribute holding constructor argument ``name``, or ``_MISSING``."""
    for attr in (name, _ALIASES.get(name)):
        if attr is not None and hasattr(dist, attr):
            return getattr(dist, attr)
    return _MISSING


_MISSING = object()


def _candidates(cls: type[Any], dist: Any) -> list[dict[str, Any]]:
    """Argument sets to try: the readable required ones with subsets of the optional ones.

    Largest subsets first (the most faithful description), so that a constructor
    taking mutually exclusive arguments (``MultivariateNormal``: one of
    ``covariance_matrix``, ``precision_matrix``, ``scale_tril``) finds a set it
    accepts.
    """
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return []
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for name, p in parameters.items():
        if name in ("self", "validate_args") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = _attribute(dist, name)
        if value is _MISSING or callable(value) and not is_distribution(value):
            if p.default is p.empty:
                return []  # a required argument the object does not expose
            continue
        try:
            encoded = _encode_param(value)
        except TypeError:
            if p.default is p.empty:
                return []
            continue
        (required if p.default is p.empty else optional)[name] = encoded
    names = list(optional)
    if len(names) <= _MAX_SUBSET_SEARCH:
        subsets = [c for k in range(len(names), -1, -1)
                   for c in itertools.combinations(names, k)]
    else:
        subsets = [tuple(names), *((n,) for n in names), ()]
    unique: list[dict[str, Any]] = []
    for subset in subsets:
        s = {**required, **{n: optional[n] for n in subset}}
        if s not in unique:
            unique.append(s)
    return unique


def _describe(dist: Any) -> dict[str, Any]:
    cls = type(dist)
    path = f"{cls.__module__}.{cls.__qualname__}"
    for params in _candidates(cls, dist):
        spec = {"class": path, "params": params}
        try:
            rebuilt = distribution_from_spec(spec)
        except Exception:  # noqa: BLE001 - any failure means: not this argument set
            continue
        if same_distribution(rebuilt, dist):
            return spec
    return {"class": path, "rebuildable": False, "repr": describe_distribution(dist)}


def distribution_spec(dist: Any) -> dict[str, Any]:
    """A JSON-ready description of a NumPyro distribution.

    ``{"class": "module.qualname", "params": {...}}`` when rebuilding it gives
    an identical distribution, else ``{"class", "rebuildable": False, "repr"}``.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces.axes.distribution_spec import distribution_spec
    >>> distribution_spec(dist.Normal(0.0, 2.0))["params"]
    {'loc': 0.0, 'scale': 2.0}
    >>> distribution_spec(dist.GaussianRandomWalk(num_steps=5))["params"]
    {'scale': 1.0, 'num_steps': 5}
    """
    if not is_distribution(dist):
        fail("distribution", "a numpyro.distributions.Distribution instance", dist, TypeError)
    return _describe(dist)


def distribution_from_spec(spec: Mapping[str, Any]) -> Any:
    """The distribution :func:`distribution_spec` described.

    Only subclasses of ``numpyro.distributions.Distribution`` that are already
    loaded are called, with the keyword arguments their constructor declares;
    anything else named is a ``ValueError``. Nothing is imported.

    Raises
    ------
    NotRebuildable
        For a description marked as not rebuildable.
    ValueError
        For a class that is not a loaded NumPyro distribution, or arguments
        its constructor does not take.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces.axes.distribution_spec import distribution_from_spec, distribution_spec
    >>> distribution_from_spec(distribution_spec(dist.Beta(2.0, 3.0)))
    <numpyro.distributions.continuous.Beta object at ...>
    >>> distribution_from_spec({"class": "os.system", "params": {"command": "ls"}})
    Traceback (most recent call last):
    ...
    ValueError: a distribution spec must name a loaded subclass of ..., got 'os.system'
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("class"), str):
        raise ValueError(f"a distribution spec must name its class, got {spec!r}")
    name = spec["class"]
    if spec.get("rebuildable") is False:
        raise NotRebuildable(
            f"the distribution {spec.get('repr', name)} cannot be rebuilt from its "
            "description in the file"
        )
    cls = _known_classes().get(name)
    if cls is None or cls is distribution_base() or inspect.isabstract(cls):
        raise ValueError(
            "a distribution spec must name a loaded subclass of "
            f"numpyro.distributions.Distribution, got {name!r}"
        )
    params = spec.get("params", {})
    if not isinstance(params, Mapping):
        raise ValueError(f"a distribution spec's params must be a mapping, got {params!r}")
    try:
        declared: Mapping[str, inspect.Parameter] = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        declared = {}
    # only the keyword arguments the constructor declares (never self, *args or **kwargs)
    accepted = {n for n, p in declared.items() if n != "self" and p.kind in (
        p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = [k for k in params if k not in accepted]
    if unknown:
        raise ValueError(
            f"a spec of {name} must give arguments its constructor takes "
            f"({sorted(accepted)}), got {unknown}"
        )
    arguments = {k: _decode_param(v) for k, v in params.items()}
    try:
        return cls(**arguments)
    except NotRebuildable:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the constructor refuses, say so
        raise ValueError(f"the spec of {name} does not give a distribution ({params!r}): "
                         f"{type(err).__name__}: {err}") from None


def _short(value: Any, depth: int = 0) -> str:
    if is_distribution(value):
        return _describe_fields(value, depth + 1)
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        array = np.asarray(value)
        if array.ndim == 0:
            return repr(array.item())
        if array.size <= 4:
            return repr(array.tolist())
        return f"<{array.dtype}{list(array.shape)}>"
    if isinstance(value, (list, tuple)):
        if len(value) > 4:
            return f"<{len(value)} items>"
        if isinstance(value, tuple) and all(isinstance(v, (int, np.integer)) for v in value):
            return repr(tuple(int(v) for v in value))  # a shape
        inner = ", ".join(_short(v, depth + 1) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' * (len(value) == 1)})"
    if type(value).__repr__ is object.__repr__:
        # an object without a repr of its own (a transform): its class and public fields,
        # never "<... object at 0x...>"
        fields = [] if depth > 3 else [
            f"{k}={_short(v, depth + 1)}" for k, v in vars(value).items()
            if not k.startswith("_") and not callable(v)
        ]
        return f"{type(value).__name__}({', '.join(fields)})"
    return repr(value)


def describe_distribution(dist: Any) -> str:
    """A short repr of a distribution with its parameters: ``LogNormal(loc=0.0, scale=0.5)``.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> from numpyro.distributions.transforms import AffineTransform
    >>> from labeled_spaces.axes.distribution_spec import describe_distribution
    >>> describe_distribution(dist.LogNormal(0.0, 0.5))
    'LogNormal(loc=0.0, scale=0.5)'
    >>> print(describe_distribution(
    ...     dist.TransformedDistribution(dist.Normal(0.0, 1.0), AffineTransform(1.0, 2.0))))
    TransformedDistribution(base_distribution=Normal(loc=0.0, scale=1.0), transforms=[Affine...])
    """
    return _describe_fields(dist, 0)


def _describe_fields(dist: Any, depth: int) -> str:
    cls = type(dist)
    try:
        parameters: Mapping[str, inspect.Parameter] = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        parameters = {}
    shown = []
    for name, p in parameters.items():
        if name in ("self", "validate_args") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = _attribute(dist, name)
        if value is _MISSING or value is None or callable(value) and not is_distribution(value):
            continue
        shown.append(f"{name}={_short(value, depth)}")
    return f"{cls.__name__}({', '.join(shown)})"

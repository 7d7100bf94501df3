"""What a run records of a value: a readable description, and a digest of any array.

Small values are kept as they are and arrays by dtype, shape and either
their values (when small) or a digest of all their bytes, read in chunks
so that a big table is never copied whole. The run identity
(:mod:`labeled_spaces.results.identity`) describes everything with these.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from .._codec import key_data

__all__ = ["array_summary", "class_name", "describe_arguments", "digest_array", "plain",
           "program_fingerprint", "same_values", "summarise"]

#: arrays up to this many elements are shown by value in descriptions, larger ones by digest
SHOWN_VALUES = 16
_CHUNK_BYTES = 1 << 24  # arrays are hashed 16 MB at a time: no full copy of a big table
_MAX_DEPTH = 12


def digest_array(value: Any) -> str:
    """A digest of an array's dtype, shape and bytes, read in chunks (no copy of a big array).

    Typed PRNG keys are digested by their key data; object arrays by the
    ``repr`` of their elements (their bytes are addresses).

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.results.values import digest_array
    >>> digest_array(np.zeros(3)) == digest_array(np.zeros(3)), len(digest_array(np.zeros(3)))
    (True, 16)
    >>> digest_array(np.zeros(3)) == digest_array(np.zeros(3, np.float32))
    False
    """
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    array = np.asarray(value)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype.kind == "O":
        digest.update(repr(array.tolist()).encode())
        return digest.hexdigest()[:16]
    if array.ndim == 0 or array.nbytes <= _CHUNK_BYTES:
        digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]
    rows = max(1, _CHUNK_BYTES // max(1, array[0].nbytes))
    for start in range(0, array.shape[0], rows):
        digest.update(np.ascontiguousarray(array[start:start + rows]).tobytes())
    return digest.hexdigest()[:16]


def array_summary(value: Any) -> dict[str, Any]:
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        return {"key": key_data(value) if value.ndim == 0 else digest_array(value),
                "impl": str(jax.random.key_impl(value))}
    array = np.asarray(value)
    out: dict[str, Any] = {"array": str(array.dtype), "shape": list(array.shape)}
    if array.size <= SHOWN_VALUES and array.dtype.kind in "biufcUSb":
        out["values"] = plain(array.tolist())
    else:
        out["digest"] = digest_array(array)
    return out


def plain(value: Any) -> Any:
    """JSON-ready values with NaN and infinities as strings (JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, complex):
        return repr(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def summarise(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """A readable, JSON-ready description of any value: what a run records of it.

    Numbers, strings and None as they are; arrays as dtype and shape with
    their values when small (at most 16 elements) or a digest of all their
    bytes; lists, tuples and dicts element by element; any other object
    (an axis, a NumPyro distribution, a config dataclass) as its class and
    its public fields (``__slots__`` ones too); functions by their qualified
    name, and a ``functools.partial`` also by the arguments it binds.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.results.values import summarise
    >>> summarise({"n_steps": 20, "w": np.ones(2)})
    {'n_steps': 20, 'w': {'array': 'float64', 'shape': [2], 'values': [1.0, 1.0]}}
    >>> sorted(summarise(np.zeros((100, 100))))
    ['array', 'digest', 'shape']
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return plain(value)
    if isinstance(value, (complex, bytes)):
        return plain(value)
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        return array_summary(value)
    if _depth > _MAX_DEPTH or id(value) in _seen:
        return {"class": class_name(value), "nested": "too deep to describe"}
    seen = _seen | {id(value)}
    if isinstance(value, (list, tuple)):
        return [summarise(v, _depth + 1, seen) for v in value]
    if isinstance(value, Mapping):
        return {str(k): summarise(v, _depth + 1, seen) for k, v in value.items()}
    if isinstance(value, functools.partial):  # its bound arguments are inputs too
        return {"function": class_name(value.func),
                "args": summarise(list(value.args), _depth + 1, seen),
                "kwargs": summarise(dict(value.keywords), _depth + 1, seen)}
    if callable(value) and not hasattr(value, "__dict__") and not _slots(value) \
            or isinstance(value, type):
        return {"function": class_name(value)}
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    else:
        fields = {k: getattr(value, k) for k in _slots(value) if hasattr(value, k)}
        fields.update({k: v for k, v in getattr(value, "__dict__", {}).items()
                       if not k.startswith("_")})
    if callable(value) and (hasattr(value, "__code__") or not fields and isinstance(
            getattr(value, "__name__", None), str)):  # a function: its name, not its code
        return {"function": class_name(value)}
    return {"class": class_name(value),
            **({"fields": summarise(fields, _depth + 1, seen)} if fields else {})}


def _slots(value: Any) -> list[str]:
    """The public ``__slots__`` fields of the class of ``value`` and its bases (no ``__dict__``)."""
    names: list[str] = []
    for kind in type(value).__mro__:
        declared = kind.__dict__.get("__slots__", ())
        for name in [declared] if isinstance(declared, str) else declared:
            if not name.startswith("_") and name not in names:
                names.append(name)
    return names


def class_name(value: Any) -> str:
    # a function, or a builtin one (math.sin, a NumPy ufunc): itself, not its type
    named = hasattr(value, "__code__") or callable(value) and isinstance(
        getattr(value, "__name__", None), str)
    kind = value if isinstance(value, type) or named else type(value)
    module = getattr(kind, "__module__", "") or ""
    name = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", None) or repr(kind)
    return f"{module}.{name}" if module else name


def describe_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The model's extra arguments, readable: ``{"args": [...], "kwargs": {...}}``.

    Examples
    --------
    >>> from labeled_spaces.results.values import describe_arguments
    >>> describe_arguments((), {"n_steps": 20})
    {'args': [], 'kwargs': {'n_steps': 20}}
    """
    return {"args": [summarise(a) for a in args],
            "kwargs": {str(k): summarise(v) for k, v in sorted(kwargs.items())}}


def program_fingerprint(program: Any, arrays: Sequence[Any] = ()) -> str:
    """A short digest of what the model computes: a traced program and the values it holds.

    The text of ``program`` (a ``ClosedJaxpr``, lowered text, or an earlier
    fingerprint) shows the operations and the Python scalars the model
    closes over but not the values of arrays: those of the program's
    closed-over constants (``program.consts``) and of ``arrays`` are digested
    too.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces.results.values import program_fingerprint
    >>> one = program_fingerprint(jax.make_jaxpr(lambda x: x + 1.0)(0.0))
    >>> one == program_fingerprint(jax.make_jaxpr(lambda x: x + 1.0)(0.0)), len(one)
    (True, 16)
    >>> one == program_fingerprint(jax.make_jaxpr(lambda x: x - 1.0)(0.0))
    False
    >>> program_fingerprint(one, [np.ones(3)]) == program_fingerprint(one, [np.full(3, 5.0)])
    False
    """
    digest = hashlib.sha256(str(program).encode())
    for array in [*getattr(program, "consts", ()), *arrays]:
        digest.update(digest_array(array).encode())
    return digest.hexdigest()[:16]


def same_values(stored: Any, now: Any) -> bool:
    """``stored == now`` for two descriptions, but exact for numbers: ``-0.0`` is not ``0.0``.

    Small arrays are described by their values as JSON numbers, which Python
    compares by value; a run's inputs compare bit for bit (as the digest of a
    larger array does), so a zero's sign is a difference.

    Examples
    --------
    >>> from labeled_spaces.results.values import same_values
    >>> same_values({"values": [0.0, 1.0]}, {"values": [0.0, 1.0]})
    True
    >>> same_values([0.0], [-0.0])
    False
    """
    if isinstance(stored, float) and isinstance(now, float):
        return stored == now and math.copysign(1.0, stored) == math.copysign(1.0, now)
    if isinstance(stored, dict) and isinstance(now, dict):
        return stored.keys() == now.keys() and all(same_values(v, now[k])
                                                   for k, v in stored.items())
    if isinstance(stored, list) and isinstance(now, list):
        return len(stored) == len(now) and all(map(same_values, stored, now))
    return bool(stored == now)

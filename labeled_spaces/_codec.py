"""JSON-safe values for attrs: arrays with their dtype, PRNG keys, package versions.

netCDF and zarr attributes hold strings and numbers only, so a Space is described by
JSON strings. Arrays are written as ``{"values", "dtype"}`` (dates and durations as
int64 counts, complex numbers as ``[real, imag]``, bytes as latin-1 strings) and read
back with the same dtype. Nothing read here is ever imported or called: it is data.

What a file's attrs claim is bounded by the file: :func:`read_json` refuses nesting
deeper than :data:`MAX_JSON_DEPTH`, and within :func:`decode_budget` every array
decoded (and every axis a reader builds, :func:`charge`) draws on one budget set from
the file's size: a 5 kB file cannot make a reader allocate gigabytes (a ``ValueError``
says what claimed too much).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._format import clipped, format_bytes
from ._memory import available_memory

__all__ = [
    "BYTES_PER_FILE_BYTE",
    "MAX_JSON_DEPTH",
    "MIN_DECODE_BUDGET",
    "charge",
    "decode_array",
    "decode_budget",
    "encode_array",
    "jsonable",
    "key_data",
    "key_from_data",
    "key_impl",
    "read_json",
    "versions",
]

# JSON read from a file nests at most this deep (a state or output tree of 64 levels)
MAX_JSON_DEPTH = 64
# what a file's contents may make a reader build: this many bytes per byte of the file ...
BYTES_PER_FILE_BYTE = 1000
# ... and at least this much, whatever the file's size
MIN_DECODE_BUDGET = 2**28

# the decode budget in force: [bytes left, bytes in all, what sets it]
_BUDGET: ContextVar[list[Any] | None] = ContextVar("labeled_spaces_decode_budget", default=None)


@contextmanager
def decode_budget(file_bytes: int | None, source: str) -> Iterator[None]:
    """Bound what is decoded inside the block by a file of ``file_bytes`` (see :func:`charge`).

    The budget is ``max(MIN_DECODE_BUDGET, BYTES_PER_FILE_BYTE * file_bytes)``
    bytes; ``file_bytes=None`` (attrs that come from no file) bounds by the
    memory available. An enclosing budget stays in force (the smaller wins).

    Examples
    --------
    >>> from labeled_spaces._codec import decode_array, decode_budget
    >>> with decode_budget(5_000, "a 5 kB file"):
    ...     decode_array({"values": ["a", "b"], "dtype": "S2000000000"})
    Traceback (most recent call last):
    ...
    ValueError: an array of 2 elements of dtype S2000000000 claims 4 GB, more than ...
    """
    total = (available_memory() if file_bytes is None
             else max(MIN_DECODE_BUDGET, BYTES_PER_FILE_BYTE * int(file_bytes)))
    outer = _BUDGET.get()
    if outer is not None and outer[0] <= total:
        yield
        return
    size = "attrs" if file_bytes is None else f"a {format_bytes(file_bytes)} file"
    token = _BUDGET.set([total, total, size])
    try:
        yield
    finally:
        _BUDGET.reset(token)


def charge(nbytes: float, what: str) -> None:
    """Draw ``nbytes`` that ``what`` would build from the decode budget in force: a
    ``ValueError`` naming ``what`` when it does not cover it (outside
    :func:`decode_budget`, only what exceeds the available memory)."""
    budget = _BUDGET.get()
    if budget is None:
        left, total, source = available_memory(), available_memory(), "memory"
    else:
        left, total, source = budget
    if nbytes > left:
        raise ValueError(
            f"{what} claims {format_bytes(nbytes)}, more than {source} warrants (at most "
            f"{format_bytes(total)} in all, {format_bytes(left)} left); the file is damaged "
            "or not results"
        )
    if budget is not None:
        budget[0] = left - nbytes


def _depth(node: Any) -> int:
    """How deep lists and dicts nest in ``node`` (iteratively: no recursion to overflow)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children
                     if isinstance(child, (dict, list)))
    return deepest


def read_json(raw: Any, what: str) -> Any:
    """The JSON text ``raw`` of the attrs entry ``what``, parsed and checked.

    Not text, not JSON, or nested deeper than :data:`MAX_JSON_DEPTH`: a
    ``ValueError`` naming ``what``.

    Examples
    --------
    >>> from labeled_spaces._codec import read_json
    >>> read_json('{"a": [1, 2]}', "labeled_spaces:x")
    {'a': [1, 2]}
    >>> read_json("[" * 100_000, "labeled_spaces:x")
    Traceback (most recent call last):
    ...
    ValueError: attrs entry 'labeled_spaces:x' nests deeper than 64 levels; not a description ...
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, (dict, list, int, float, bool)) or raw is None:  # parsed (zarr attrs)
        value, deep = raw, _depth(raw) > MAX_JSON_DEPTH
    elif not isinstance(raw, str):
        raise ValueError(f"attrs entry {what!r} must be JSON text, got {clipped(repr(raw))}")
    else:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"attrs entry {what!r} is not valid JSON: {err}") from None
        except RecursionError:
            value, deep = None, True
        else:
            deep = _depth(value) > MAX_JSON_DEPTH
    if deep:
        raise ValueError(f"attrs entry {what!r} nests deeper than {MAX_JSON_DEPTH} levels; "
                         "not a description this package writes")
    return value


# extended number types JAX knows by name (NumPy dtypes via ml_dtypes), looked up in this
# fixed table only: a dtype read from a file is never a lookup of an arbitrary attribute
_EXTENDED = {
    name: np.dtype(getattr(jnp, name))
    for name in (
        "bfloat16", "float4_e2m1fn", "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz",
        "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
        "int2", "int4", "uint2", "uint4",
    )
    if hasattr(jnp, name)
}
# kinds an array read back may have: booleans, numbers, dates, durations, strings, bytes
_KINDS = "biufcmMUS"


def _dtype(name: Any) -> np.dtype:
    """The dtype named ``name`` in a file; only number, date, string and bytes dtypes."""
    if not isinstance(name, str):
        raise ValueError(f"dtype must be the name of a dtype, got {name!r}")
    if name in _EXTENDED:
        return _EXTENDED[name]
    try:
        dtype = np.dtype(name)
    except TypeError:
        raise ValueError(f"dtype must be the name of a NumPy or JAX dtype, got {name!r}"
                         ) from None
    if dtype.kind not in _KINDS or dtype.names is not None:
        raise ValueError(f"dtype must be a number, date, string or bytes dtype, got {name!r}")
    return dtype


def encode_array(array: Any) -> dict[str, Any]:
    """An array as JSON-ready ``{"values", "dtype"}``.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces._codec import decode_array, encode_array
    >>> encode_array(np.array([1.5, 2.0], np.float32))
    {'values': [1.5, 2.0], 'dtype': 'float32'}
    >>> decode_array(encode_array(np.array([1 + 2j]))).tolist()
    [(1+2j)]
    """
    array = np.asarray(array)
    dtype = array.dtype
    if dtype.kind in "mM":
        values: Any = array.view(np.int64).tolist()
    elif dtype.kind == "c":
        values = np.stack([array.real, array.imag], axis=-1).tolist()
    elif dtype.kind == "S":
        values = np.vectorize(lambda b: b.decode("latin-1"), otypes=[object])(array).tolist() \
            if array.size else array.tolist()
    elif dtype.kind == "O" or dtype.kind == "V" and dtype.names is not None:
        raise TypeError(f"array must hold numbers, strings or dates, got dtype {dtype}")
    elif dtype.kind == "f" and dtype.itemsize < 4 or str(dtype) == "bfloat16":
        values = array.astype(np.float32).tolist()
    else:
        values = array.tolist()
    return {"values": values, "dtype": str(dtype)}


def decode_array(encoded: Mapping[str, Any]) -> np.ndarray:
    """The array that :func:`encode_array` described.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces._codec import decode_array, encode_array
    >>> dates = np.array(["2020-01-01"], dtype="datetime64[D]")
    >>> decode_array(encode_array(dates))
    array(['2020-01-01'], dtype='datetime64[D]')
    """
    if not isinstance(encoded, Mapping) or "values" not in encoded or "dtype" not in encoded:
        raise ValueError(f"an encoded array must be a mapping with 'values' and 'dtype', "
                         f"got {encoded!r}")
    dtype = _dtype(encoded["dtype"])
    values = encoded["values"]
    if isinstance(values, np.ndarray):  # already an array (read from a file's coordinate)
        _charge_array(values.size, dtype)
        return values.astype(dtype, copy=False)
    try:
        count = _count(values, dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"encoded array values must match dtype {encoded['dtype']!r}, got "
                         f"{clipped(repr(values))}: {err}") from None
    _charge_array(count, dtype)
    try:
        return _decode_values(values, dtype)
    except (TypeError, ValueError, IndexError, OverflowError, AttributeError) as err:
        raise ValueError(f"encoded array values must match dtype {encoded['dtype']!r}, got "
                         f"{clipped(repr(values))}: {err}") from None


def _count(values: Any, dtype: np.dtype) -> int:
    """How many elements of ``dtype`` the JSON ``values`` hold (before any allocation)."""
    count = 1
    node = values
    while isinstance(node, list):  # the shape along the first elements; ragged lists fail later
        count *= len(node)
        if not node:
            break
        node = node[0]
    if dtype.kind == "c" and isinstance(values, list):  # [real, imag] pairs
        count //= 2
    return count


def _charge_array(count: int, dtype: np.dtype) -> None:
    name = dtype.str[1:] if dtype.kind in "SU" else str(dtype)  # no byte order: U5, S2
    charge(count * max(dtype.itemsize, 1), f"an array of {count:,} elements of dtype {name}")


def _decode_values(values: Any, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "mM":
        return np.asarray(values, dtype=np.int64).view(dtype)
    if dtype.kind == "c":
        pairs = np.asarray(values, dtype=np.float64)
        if pairs.ndim == 0 or pairs.shape[-1] != 2:
            raise ValueError("complex numbers are [real, imag] pairs")
        return (pairs[..., 0] + 1j * pairs[..., 1]).astype(dtype)
    if dtype.kind == "S":
        return np.asarray(
            np.vectorize(lambda s: s.encode("latin-1"), otypes=[object])(
                np.asarray(values, dtype=object)) if np.size(values) else values,
            dtype=dtype,
        )
    if str(dtype) == "bfloat16" or dtype.kind == "f" and dtype.itemsize < 4:
        return np.asarray(values, dtype=np.float32).astype(dtype)
    return np.asarray(values, dtype=dtype)


def jsonable(value: Any) -> Any:
    """``value`` with arrays and NumPy scalars turned into lists and Python numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces._codec import jsonable
    >>> jsonable({"units": "ms", "range": np.array([0, 1])})
    {'units': 'ms', 'range': [0, 1]}
    """
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def key_data(key: jax.Array) -> list[int]:
    """The integers of a PRNG key (typed, or a raw ``uint32[2]``).

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces._codec import key_data, key_from_data, key_impl
    >>> key = jax.random.key(3)
    >>> key_data(key), key_impl(key)
    ([0, 3], 'threefry2x32')
    >>> key_data(key_from_data([0, 3], "threefry2x32"))
    [0, 3]
    """
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).ravel().tolist()


def key_impl(key: jax.Array) -> str:
    """Name of the PRNG implementation of a key (raw ``uint32[2]`` keys are threefry)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return str(jax.random.key_impl(key))
    return "threefry2x32"


def key_from_data(data: Any, impl: Any = "threefry2x32") -> jax.Array:
    """The typed key of :func:`key_data` and :func:`key_impl`; bad entries are a ValueError:
    ``data`` uint32 integers ending in ``impl``'s key shape, ``impl`` a name looked up in
    JAX's registry of PRNG implementations, never imported.

    Examples
    --------
    >>> from labeled_spaces._codec import key_from_data
    >>> key_from_data([0, 2**40])
    Traceback (most recent call last):
    ...
    ValueError: key must be the data of a JAX PRNG key (unsigned 32-bit integers), got [0, ...
    """
    try:  # a short identifier, then only JAX's registry: nothing is imported
        if not (isinstance(impl, str) and impl.isidentifier() and len(impl) <= 64):
            raise ValueError
        expected = jax.random.key_data(jax.random.key(0, impl=impl)).shape
    except (TypeError, ValueError):
        raise ValueError("key impl must be the name of a JAX PRNG implementation (such as "
                         f"'threefry2x32'), got {clipped(repr(impl))}") from None
    try:  # integers in range only: 2**40 or -1 overflow uint32, and 0.5 would become 0
        array = np.asarray(data)
    except (TypeError, ValueError, OverflowError):
        array = np.asarray(None)
    if (array.dtype.kind not in "iu" or array.size == 0
            or not (array.min() >= 0 and array.max() < 2**32)):
        raise ValueError("key must be the data of a JAX PRNG key (unsigned 32-bit integers), "
                         f"got {clipped(repr(data))}")
    if array.shape[array.ndim - len(expected):] != expected:
        raise ValueError(f"key must be the data of a JAX PRNG key of implementation {impl!r} "
                         f"(shape {expected}), got shape {array.shape}")
    return jax.random.wrap_key_data(jnp.asarray(array, dtype=jnp.uint32), impl=impl)


def versions() -> dict[str, str]:
    """Versions of the packages that make results reproducible.

    Examples
    --------
    >>> from labeled_spaces._codec import versions
    >>> sorted(versions())
    ['jax', 'labeled_spaces', 'numpy', 'numpyro', 'xarray']
    """
    from importlib.metadata import PackageNotFoundError, version

    import numpyro
    import xarray

    try:
        own = version("labeled_spaces")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        own = "0.0.0+unknown"
    return {
        "labeled_spaces": own,
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "xarray": xarray.__version__,
        "numpy": np.__version__,
    }

"""JSON-safe values for attrs: arrays with their dtype, PRNG keys, package versions.

netCDF and zarr attributes hold strings and numbers only, so a Space is
described by JSON strings. Arrays are written as ``{"values", "dtype"}``
(dates and durations as their int64 counts, complex numbers as
``[real, imag]`` pairs, bytes as latin-1 strings) and read back with the
same dtype. Nothing read here is ever imported or called: it is data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "decode_array",
    "encode_array",
    "jsonable",
    "key_data",
    "key_from_data",
    "key_impl",
    "versions",
]


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
        return values.astype(dtype, copy=False)
    try:
        return _decode_values(values, dtype)
    except (TypeError, ValueError, IndexError, OverflowError, AttributeError) as err:
        raise ValueError(f"encoded array values must match dtype {encoded['dtype']!r}, got "
                         f"{_clip(values)}: {err}") from None


def _clip(values: Any) -> str:
    text = repr(values)
    return text if len(text) <= 80 else text[:77] + "..."


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
    """The typed key of :func:`key_data` and :func:`key_impl`; bad entries are a ValueError."""
    if not isinstance(impl, str):
        raise ValueError(f"key impl must be a string, got {impl!r}")
    try:
        return jax.random.wrap_key_data(jnp.asarray(data, dtype=jnp.uint32), impl=impl)
    except (TypeError, ValueError) as err:
        raise ValueError(f"key must be the data of a JAX PRNG key, got {data!r} "
                         f"({impl}): {err}") from None


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

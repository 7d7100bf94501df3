"""Random keys that belong to a combination: KeyAxis (replicates) and PointKey (one per point).

A stochastic model needs a PRNG key per combination that does not depend on
how the sweep is run. Both kinds are made *inside* the compiled block from
the combination's position (``jax.random.fold_in``), never from a host
table of one key per combination:

- :class:`KeyAxis` is an axis of ``n`` replicate keys: key ``r`` is
  ``fold_in(axis_key, r)``, where ``axis_key`` is the key the axis gets from
  the Space's split like any random axis. The other dimensions share them
  (common random numbers).
- :class:`PointKey` is a state leaf with no dimension of its own: the
  Space's key folded in with the combination's position along each
  dimension, in order.

A sub-space (``isel``, ``sel``, a flat slice) keeps each combination's
original position: its KeyAxis keeps the replicate numbers and the axis key
it was selected from, its PointKey the original positions along every
dimension of the space it was first made in. Both are described by data
only (numbers and key bits), so a saved Space rebuilds them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import fail, integer_scalar
from .._codec import decode_array, encode_array, key_data, key_from_data, key_impl
from .._format import call_repr, elided
from ..grid import MAX_SIZE
from .base import AbstractAxis
from .bounded import check_size

__all__ = ["KeyAxis", "PointKey", "check_fold_key", "check_prng_key", "typed_key"]

#: The one PRNG implementation whose ``fold_in`` and draws JAX batches exactly.
FOLDED_IMPL = "threefry2x32"


def check_prng_key(name: str, key: Any) -> jax.Array:
    """A single PRNG key, typed (``jax.random.key``) or raw (``jax.random.PRNGKey``).

    Examples
    --------
    >>> from labeled_spaces.axes.keys import check_prng_key
    >>> check_prng_key("key", 3)
    Traceback (most recent call last):
    ...
    TypeError: key must be a jax.random.key(...) or jax.random.PRNGKey(...), got 3
    """
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return key
    fail("key", "a jax.random.key(...) or jax.random.PRNGKey(...)", key, TypeError)


def check_fold_key(name: str, key: jax.Array) -> jax.Array:
    """A key that per-combination keys may be folded from: a Threefry key.

    JAX batches an ``rbg`` key's draws, and an ``unsafe_rbg`` key's
    ``fold_in`` too, inside ``vmap`` differently from one key at a time
    (its ``rng_bit_generator`` batching rule draws one batch from one of the
    keys), so a combination's key or noise would depend on ``n_vmap``,
    ``chunk_size`` and the executor. Only ``threefry2x32`` keys (typed or
    raw ``PRNGKey``) keep the promise that how a sweep runs changes nothing.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces.axes.keys import check_fold_key
    >>> check_fold_key("key", jax.random.key(0, impl="rbg"))
    Traceback (most recent call last):
    ...
    ValueError: key must be a threefry2x32 key ... got a key of implementation 'rbg': ...
    """
    impl = key_impl(key)
    if impl != FOLDED_IMPL:
        raise ValueError(
            f"{name} must be a {FOLDED_IMPL} key (jax.random.key(seed) or "
            "jax.random.PRNGKey(seed)) where a state has KeyAxis or PointKey leaves, got a key "
            f"of implementation {impl!r}: JAX draws from {impl} keys inside vmap differently "
            "from one key at a time, so each combination's keys would depend on n_vmap, "
            "chunk_size and the executor")
    return key


def typed_key(key: jax.Array) -> bool:
    """Whether ``key`` is a typed key (``jax.random.key``) rather than raw ``uint32`` data."""
    return bool(jnp.issubdtype(key.dtype, jax.dtypes.prng_key))


def _positions(name: str, value: Any, bound: int | None = None) -> np.ndarray:
    """A read-only, non-empty 1-D int64 array of positions in ``[0, bound)``."""
    try:
        array = np.array(value, copy=True)
    except (TypeError, ValueError):
        fail(name, "a 1-D array of non-negative integers", value, TypeError)
    if array.dtype.kind not in "iu" and not (array.size == 0 and array.dtype.kind == "f"):
        fail(name, "a 1-D array of non-negative integers", value, TypeError)
    if array.ndim != 1 or array.size == 0:
        fail(name, "a non-empty 1-D array of non-negative integers", value)
    array = array.astype(np.int64)
    if array.min() < 0 or (bound is not None and array.max() >= bound):
        where = f"in [0, {bound})" if bound is not None else "non-negative"
        fail(name, f"positions {where}", value)
    array.flags.writeable = False
    return array


def _elided(array: np.ndarray) -> str:
    return elided([str(int(x)) for x in np.asarray(array).reshape(-1)])


class KeyAxis(AbstractAxis):
    """A dimension of ``n`` replicate PRNG keys, shared by the other dimensions' combinations.

    Parameters
    ----------
    n : int
        Number of replicates, ``1 <= n < 2**30``.
    name : str, optional
        The dimension's name (default: the key path in the state).
    group, attrs
        See :class:`~labeled_spaces.AbstractAxis`.
    replicates, key : optional
        Which of the ``n`` keys, and the axis key they are folded from. A
        sub-space sets them, so that a selection keeps each replicate's key;
        leave them None.

    Notes
    -----
    Key ``r`` is ``jax.random.fold_in(axis_key, r)``: ``axis_key`` is the key
    the axis gets from the Space's split like any random axis
    (``jax.random.split(space_key, n_axes + 1)[i + 1]``), so replicate ``r``
    does not depend on ``n``. The model receives a key of the Space key's
    kind (typed for ``jax.random.key``, raw ``uint32[2]`` for ``PRNGKey``),
    computed inside the compiled block from ``r``. The coordinate is
    ``0..n-1``; the values this axis hands a Space (``generate_values``,
    ``to_xarray``) are those replicate numbers, and :meth:`keys` gives the
    keys themselves.
    The Space's key must be a Threefry one (:func:`check_fold_key`).

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces import GridAxis, KeyAxis, Space
    >>> space = Space({"k": GridAxis(0.0, 1.0, 2), "seed": KeyAxis(3)}, mode="product")
    >>> space.sizes, space.coords["seed"].values.tolist()
    ({'k': 2, 'seed': 3}, [0, 1, 2])
    >>> axis_key = jax.random.split(jax.random.key(0), 3)[2]
    >>> bool(space[4]["seed"] == jax.random.fold_in(axis_key, 1))
    True
    """

    spec_fields = ("n", "replicates", "key")

    def __init__(
        self,
        n: int,
        name: str | None = None,
        *,
        group: Hashable | None = None,
        attrs: Mapping[str, Any] | None = None,
        replicates: Sequence[int] | np.ndarray | None = None,
        key: jax.Array | None = None,
    ) -> None:
        super().__init__(name=name, group=group, attrs=attrs)
        self.n = check_size("n", n)
        self.replicates = None if replicates is None else _positions(
            "replicates", replicates, self.n)
        self.key = None if key is None else check_fold_key("key", check_prng_key("key", key))

    @property
    def size(self) -> int:
        return self.n if self.replicates is None else len(self.replicates)

    def _numbers(self) -> np.ndarray:
        return np.arange(self.n) if self.replicates is None else self.replicates

    def axis_key(self, key: jax.Array | None = None) -> jax.Array:
        """The key the replicates are folded from: :attr:`key` if set, else ``key``.

        ``key`` is what the Space's split gives the axis (None: ``jax.random.key(0)``).
        """
        if self.key is not None:
            return self.key
        if key is None:
            return jax.random.key(0)
        return check_fold_key("key", check_prng_key("key", key))

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        """The replicate numbers ``r`` (int32); the model receives ``fold_in(axis_key, r)``."""
        return jnp.asarray(self._numbers(), dtype=jnp.int32)

    def keys(self, key: jax.Array | None = None) -> jax.Array:
        """The keys themselves, one per point: ``fold_in(axis_key(key), r)``.

        Examples
        --------
        >>> import jax
        >>> from labeled_spaces import KeyAxis
        >>> KeyAxis(4).keys(jax.random.key(1)).shape
        (4,)
        """
        base = self.axis_key(key)
        return jax.vmap(lambda r: jax.random.fold_in(base, r))(self.generate_values())

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        return np.asarray(self._numbers(), dtype=np.int64)

    def value_coordinate(self, key: jax.Array | None = None) -> np.ndarray | None:
        return None

    def spec_values(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"n": self.n}
        if self.replicates is not None:
            spec["replicates"] = self.replicates.tolist()
        if self.key is not None:
            spec["key"] = {"data": key_data(self.key), "impl": key_impl(self.key),
                           "typed": typed_key(self.key)}
        return spec

    @classmethod
    def from_spec_values(cls, values: Mapping[str, Any], common: Mapping[str, Any]
                         ) -> KeyAxis:
        held = values.get("key")
        key = None
        if held is not None:
            if not isinstance(held, Mapping) or not isinstance(held.get("data"), list) \
                    or held.get("typed", True) not in (True, False):
                fail("spec['key']", "a mapping with the key's 'data', 'impl' and 'typed' (a "
                     "bool)", held)
            key = key_from_data(held["data"], held.get("impl", "threefry2x32"))
            if held.get("typed") is False:
                key = jax.random.key_data(key)
        return cls(values["n"], replicates=values.get("replicates"), key=key, **common)

    def __repr__(self) -> str:
        shown = [f"n={self.n}"]
        if self.replicates is not None:
            shown.append(f"replicates={_elided(self.replicates)}")
        return call_repr("KeyAxis", *shown, **self._repr_fields())


class PointKey:
    """A state leaf that becomes a different PRNG key for every combination.

    Parameters
    ----------
    positions : sequence, optional
        Set by sub-spaces: per dimension of the space the key was first made
        in (in order), the position it is fixed at (an int), or the name of
        the dimension of this space that holds it and its original position
        at each point there (``(dim, positions)``). Leave it None.

    Notes
    -----
    The key of a combination is the Space's key (``key=``, None meaning
    ``jax.random.key(0)``) folded in with its position along each dimension
    in order: ``fold_in(fold_in(key, i0), i1)`` for two dimensions,
    ``fold_in(key, i)`` for one. It is computed inside the compiled block
    from the combination's position, never looked up in a table of one key
    per combination, so it does not depend on the executor, ``n_vmap``,
    ``chunk_size``, ``n_pmap``, dask or resuming; a sub-space keeps each
    combination's original positions. The Space's key must be a Threefry
    one (``rbg`` keys are refused: :func:`check_fold_key`). Every PointKey
    of a state gives the same key (a Space warns of a second one: derive
    streams in the model with ``jax.random.split`` or ``fold_in``), and
    since JAX's partitionable Threefry makes ``split(key, n)[i]`` equal
    ``fold_in(key, i)``, it may equal a key a random axis or a KeyAxis got
    from the same Space key: where a model needs independent streams, fold
    in a constant of its own per use (``jax.random.fold_in(state["noise"], 1)``).

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces import GridAxis, PointKey, Space
    >>> space = Space({"k": GridAxis(0.0, 1.0, 4), "noise": PointKey()}, key=jax.random.key(7))
    >>> bool(space[2]["noise"] == jax.random.fold_in(jax.random.key(7), 2))
    True
    >>> bool(space[1:3][1]["noise"] == space[2]["noise"])  # a slice keeps the position
    True
    """

    def __init__(self, *, positions: Sequence[Any] | None = None) -> None:
        self.positions: tuple[int | tuple[str, np.ndarray], ...] | None = None
        if positions is None:
            return
        if isinstance(positions, (str, bytes)) or not isinstance(positions, Sequence):
            fail("positions", "a sequence of positions (int or (dim, positions)) or None",
                 positions, TypeError)
        entries: list[int | tuple[str, np.ndarray]] = []
        for k, entry in enumerate(positions):
            where = f"positions[{k}]"
            fixed = integer_scalar(entry)
            if fixed is not None:
                if fixed < 0:
                    fail(where, "a non-negative position", entry)
                if fixed >= MAX_SIZE:  # fold_in takes uint32; no dimension is this long
                    fail(where, "a position below 2**30 (the largest dimension a grid holds)",
                         entry)
                entries.append(fixed)
                continue
            if not (isinstance(entry, Sequence) and len(entry) == 2
                    and isinstance(entry[0], str) and entry[0]):
                fail(where, "an int or a (dimension name, positions) pair", entry, TypeError)
            # bounded: the position tables are int32, a larger one would alias a smaller
            entries.append((entry[0], _positions(f"{where}[1]", entry[1], MAX_SIZE)))
        if not entries:
            fail("positions", "a non-empty sequence or None", positions)
        self.positions = tuple(entries)

    def __eq__(self, other: object) -> bool:
        return type(other) is PointKey and _token(self) == _token(other)

    def __hash__(self) -> int:
        return hash(("PointKey", _token(self)))

    def spec(self) -> dict[str, Any]:
        """A JSON-ready description (:meth:`from_spec` rebuilds the PointKey from it).

        Examples
        --------
        >>> from labeled_spaces import PointKey
        >>> PointKey(positions=[2, ("sample", [0, 5])]).spec()
        {'positions': [2, {'dim': 'sample', 'positions': {'values': [0, 5], 'dtype': 'int64'}}]}
        """
        if self.positions is None:
            return {"positions": None}
        return {"positions": [e if isinstance(e, int) else
                              {"dim": e[0], "positions": encode_array(e[1])}
                              for e in self.positions]}

    @classmethod
    def from_spec(cls, spec: Any) -> PointKey:
        """The PointKey of :meth:`spec` (read from a file: data only, checked)."""
        if not isinstance(spec, Mapping) or "positions" not in spec:
            fail("spec", "a mapping holding 'positions' (a PointKey's spec)", spec)
        held = spec["positions"]
        if held is None:
            return cls()
        if not isinstance(held, list):
            fail("spec['positions']", "a list or None", held)
        entries: list[Any] = []
        for entry in held:
            if isinstance(entry, Mapping):
                if not isinstance(entry.get("positions"), Mapping):
                    fail("spec['positions']", "entries of a dim and its positions", entry)
                entries.append((entry.get("dim"), decode_array(entry["positions"])))
            else:
                entries.append(entry)
        try:
            return cls(positions=entries)
        except TypeError as err:  # a value of the wrong kind in a file is a bad value
            raise ValueError(f"spec of a PointKey is not valid: {err}") from None

    def __repr__(self) -> str:
        if self.positions is None:
            return call_repr("PointKey")
        shown = [repr(e) if isinstance(e, int) else f"({e[0]!r}, {_elided(e[1])})"
                 for e in self.positions]
        return call_repr("PointKey", f"positions=[{', '.join(shown)}]")


def _token(key: PointKey) -> Hashable:
    """What tells PointKeys apart: their positions, by value."""
    if key.positions is None:
        return None
    return tuple(e if isinstance(e, int) else (e[0], e[1].tobytes()) for e in key.positions)

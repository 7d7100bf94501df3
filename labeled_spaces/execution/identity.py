"""The run's fingerprint: a digest of the traced program and the arrays it is given.

A store compares it to tell a run by another model from a resumed one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ..results import Outputs
from .compiled import PreparedModel

__all__ = ["fingerprint", "with_fingerprint"]


def with_fingerprint(executor: Any, outputs: Outputs, prepared: PreparedModel,
                     print_: str) -> Outputs:
    """``outputs`` carrying the run's fingerprint, for a store to tell another model apart.

    ``print_`` is the traced program's (see :func:`traced`); the arrays the
    run gives the model are digested with it. Without a store nothing
    compares fingerprints, and none is computed.
    """
    if executor.store is None:
        return outputs
    arrays = jax.tree.leaves((prepared.state_arrays, prepared.extra_arrays))
    return dataclasses.replace(outputs, fingerprint=fingerprint(print_, arrays))


def fingerprint(program: Any, arrays: Sequence[Any] = ()) -> str:
    """A short digest of what the model computes: a traced program and the values it is given.

    The text of ``program`` (a ``ClosedJaxpr``, lowered text, or an earlier
    fingerprint) shows the operations and the Python scalars the model
    closes over, but not the values of arrays: those of the program's
    closed-over constants (``program.consts``) and of ``arrays`` (the fixed
    leaves and extra arguments of a run) are digested too.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces.execution.identity import fingerprint
    >>> one = fingerprint(jax.make_jaxpr(lambda x: x + 1.0)(0.0))
    >>> one == fingerprint(jax.make_jaxpr(lambda x: x + 1.0)(0.0)), len(one)
    (True, 16)
    >>> one == fingerprint(jax.make_jaxpr(lambda x: x - 1.0)(0.0))
    False
    >>> fingerprint(one, [np.ones(3)]) == fingerprint(one, [np.full(3, 5.0)])
    False
    """
    digest = hashlib.sha256(str(program).encode())
    for array in [*getattr(program, "consts", ()), *arrays]:
        if isinstance(array, jax.Array) and jax.dtypes.issubdtype(array.dtype,
                                                                 jax.dtypes.prng_key):
            array = jax.random.key_data(array)
        value = np.asarray(array)
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        if value.dtype.kind == "O":  # the bytes of an object array are addresses
            digest.update(repr(value.tolist()).encode())
        else:
            digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:16]

"""The model as a function of arrays, and the cache of its compiled programs.

A state (and the extra arguments) may mix arrays with Python values that a
model uses as constants (``dt=0.1``, ``n_steps=2000``, a string). Arrays are
passed to the compiled function as arguments, so that large fixed data (a
connectome) is not baked into the program as a constant; everything else is
closed over, as the model would see it without ``jit``. The token of the
closed-over part keys the cache of compiled programs, so the same model over
a space of the same structure reuses one program.

A closed-over value that cannot be hashed (a plain dataclass config, a list)
has no content to key on, so a model run with one is compiled afresh each
time rather than risking another value's program.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import jax
import numpy as np

try:
    from jax.extend.core import Var
except ImportError:  # JAX before jax.extend.core.Var; pyproject allows jax>=0.4.30
    from jax.core import Var  # type: ignore[no-redef,attr-defined]

from .._caches import ProgramCache
from ..space import Layout
from .program import MODEL, Program, is_model

__all__ = ["PROGRAMS", "PreparedModel", "dead_inputs", "signature", "split_arrays",
           "static_token"]

# compiled programs per model: blocks, single points, output shapes and block plans
PROGRAMS = ProgramCache("executor programs")


def _is_array(x: Any) -> bool:
    """Whether ``x`` is passed to compiled programs: JAX arrays and numeric NumPy arrays."""
    if isinstance(x, jax.Array):
        return True
    # kind "V": bfloat16 and the other extended floats of ml_dtypes
    return isinstance(x, np.ndarray) and x.dtype.kind in "biufcV"


def dead_inputs(program: Any, count: int) -> list[int]:
    """Which of the first ``count`` inputs of a traced program no output depends on.

    A backward pass over the top-level equations of ``program`` (a
    ``ClosedJaxpr``): an equation is live when an output or an effect needs
    it, and then all its inputs are (a loop or call that uses an input
    anywhere counts as using it: no input is ever called dead wrongly).

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces.execution.compiled import dead_inputs
    >>> dead_inputs(jax.make_jaxpr(lambda a, b, c: a * 2 + jax.numpy.sin(c))(1.0, 2.0, 3.0), 3)
    [1]
    """
    jaxpr = program.jaxpr
    live = {v for v in jaxpr.outvars if isinstance(v, Var)}
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(v in live for v in eqn.outvars):
            live.update(v for v in eqn.invars if isinstance(v, Var))
    return [k for k, v in enumerate(jaxpr.invars[:count]) if v not in live]


def split_arrays(leaves: Sequence[Any]) -> tuple[list[Any], Callable[[Sequence[Any]], list[Any]]]:
    """Separate numeric array leaves from the rest.

    Returns the arrays and a function that, given replacement arrays (traced
    or not), rebuilds the full leaf list with the other leaves as they were.
    Non-numeric NumPy arrays (region names, dates) stay constants: JAX cannot
    take them as arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.execution.compiled import split_arrays
    >>> arrays, rebuild = split_arrays([np.ones(2), 0.1, "euler", np.array(["a", "b"])])
    >>> len(arrays), rebuild([np.zeros(2)])[1:3]
    (1, [0.1, 'euler'])
    """
    leaves = list(leaves)
    where = [k for k, x in enumerate(leaves) if _is_array(x)]

    def rebuild(arrays: Sequence[Any]) -> list[Any]:
        out = list(leaves)
        for k, a in zip(where, arrays, strict=True):
            out[k] = a
        return out

    return [leaves[k] for k in where], rebuild


def static_token(leaves: Sequence[Any]) -> tuple[Hashable, ...] | None:
    """A hashable token of leaves (arrays by type, the rest by value); None if one is unhashable.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.execution.compiled import static_token
    >>> static_token([0.1, "euler"]) == static_token([0.1, "euler"])
    True
    >>> static_token([[1, 2]]) is None  # a list has no hash: no reuse
    True
    """
    token: list[Hashable] = []
    for x in leaves:
        if _is_array(x):
            # shape, dtype and weak type: a weakly typed scalar promotes differently
            token.append(("array", jax.typeof(x)))
        elif isinstance(x, np.ndarray) and x.dtype.kind in "USmM":  # names, dates: by content
            token.append(("constant", x.dtype.str, x.shape, x.tobytes()))
        elif isinstance(x, (float, complex, np.inexact)):
            # by repr: 0.0 and -0.0 are equal but not the same constant, and NaN != NaN
            token.append(("float", type(x).__name__, repr(x)))
        else:
            try:
                hash(x)
            except TypeError:
                return None
            token.append(("value", type(x).__name__, x))
    return tuple(token)


def signature(leaves: Sequence[Any]) -> tuple[Hashable, ...]:
    """What a compiled executable was built for: each argument's type and placement.

    Examples
    --------
    >>> import jax.numpy as jnp, numpy as np
    >>> from labeled_spaces.execution.compiled import signature
    >>> signature([np.zeros(2, np.float32)])[0][0]
    ShapedArray(float32[2])
    >>> signature([jnp.asarray(1.0)]) == signature([jnp.float32(1.0)])  # weak vs strong
    False
    """
    return tuple((jax.typeof(x), getattr(x, "sharding", None)) for x in leaves)


class PreparedModel:
    """A Program over ``model(state, *args, **kwargs)``, as a function of axis values and arrays.

    Parameters
    ----------
    model : callable
        The user's model.
    layout : Layout
        The Space's layout.
    args, kwargs
        Extra arguments of the model.
    program : Program, default the model
        What one lane computes (:mod:`labeled_spaces.execution.program`).

    Attributes
    ----------
    state_arrays, extra_arrays : list
        The numeric arrays among the state's and the extra arguments' leaves.
    extra_leaves : list
        All leaves of ``(args, kwargs)``.
    token : tuple or None
        What the program depends on besides the arrays' types; None where a
        closed-over value cannot be hashed (then nothing is reused).
    """

    def __init__(self, model: Callable, layout: Layout, args: tuple, kwargs: dict,
                 program: Program = MODEL) -> None:
        extra_leaves, self.extra_treedef = jax.tree.flatten((args, kwargs))
        self.extra_leaves = extra_leaves
        self.state_arrays, self._rebuild_state = split_arrays(layout.leaves)
        self.extra_arrays, self._rebuild_extra = split_arrays(extra_leaves)
        self.model = model
        self.layout = layout
        self.program = program
        static = static_token(layout.fixed_leaves)
        extra = static_token(extra_leaves)
        # the model itself adds nothing to the key, whatever its settings: the cache keeps
        # the model's entries; key leaves' base keys and fixed positions are constants of the
        # program: keyed too
        self.token = None if static is None or extra is None else (
            layout.treedef, layout.axis_positions, static, self.extra_treedef, extra,
            *(() if is_model(program) else (program,)),
            *(() if layout.keys is None else (layout.keys,)))

    def model_call(self, axis_values: Sequence[Any], state_arrays: Sequence[Any],
                   extra_arrays: Sequence[Any], positions: Sequence[Any] = ()) -> Any:
        """``model(state, *args, **kwargs)`` for one combination's axis values.

        ``positions`` are the lane's key positions (the values of the layout's
        lane tables after the axes'), from which its key leaves are made.
        """
        leaves = self._rebuild_state(state_arrays)
        state = self.layout.state([*axis_values, *positions], leaves)
        args, kwargs = jax.tree.unflatten(self.extra_treedef, self._rebuild_extra(extra_arrays))
        return self.model(state, *args, **kwargs)

    def call(self, lane_values: Sequence[Any], state_arrays: Sequence[Any],
             extra_arrays: Sequence[Any]) -> Any:
        """One lane of the program: its lane function over :meth:`model_call`.

        ``lane_values`` are the values of the layout's lane tables: the
        program's lane gets the axes' values, the model also the key positions.
        """
        n = len(self.layout.axis_positions)
        axis_values, positions = list(lane_values[:n]), list(lane_values[n:])
        keys, own = self.layout.keys, len(self.layout.lane_tables) - n
        if keys is not None and len(positions) > own and not is_model(self.program):
            # keys folded before the lanes ran (Layout.block_values) follow the block's axis
            # values; a Program may call the model at others
            positions = [*positions[:own], *keys.for_other_values(positions[own:], n)]
        if not positions:
            return self.program.lane(self.model_call, axis_values, state_arrays, extra_arrays)

        def model_call(values: Sequence[Any], state: Sequence[Any], extra: Sequence[Any]
                       ) -> Any:
            return self.model_call(values, state, extra, positions)

        return self.program.lane(model_call, axis_values, state_arrays, extra_arrays)

    def cached(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """What ``build()`` made for this model and ``key``, reused while the model lives."""
        if self.token is None:
            return build()
        return PROGRAMS.get(self.model, (self.token, key), build)

"""An analysis as a Program on the executors, and the model errors its lane finds.

``gradients`` and ``fit`` each build an
:class:`~labeled_spaces.execution.program.Program`: a lane that calls the
model (``call(axis_values, state_arrays, extra_arrays)``) at axis values of
its choosing, and the labels it adds. The executors run it with
``program=`` like the model itself: blocks, ``n_vmap``, sharding, stores,
resume and dask work unchanged, and the model is traced once, inside the
lane. So a lane is also where an analysis learns what the model returns:
one that cannot be used (an integer output has no derivative, a loss must be
a scalar) raises :class:`UnusableOutputs` while JAX traces it, before any
combination runs, and :func:`run_program` hands that error to the user as
the ``ValueError`` it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._checks import check_callable, fail
from ..execution import ModelError, Program
from ..results import Results

__all__ = ["UnusableOutputs", "check_output", "run_program"]


class UnusableOutputs(ModelError, ValueError):
    """The model's outputs do not suit the analysis (found when its Program is traced).

    A ``ValueError`` (the wrong model for this analysis, found before
    anything runs) and a :class:`~labeled_spaces.ModelError` (the executors
    let it through as it is raised inside their run; no combination is to
    blame, so ``index`` is None).

    Examples
    --------
    >>> err = UnusableOutputs("the model's output 'n' is int32, which has no derivative")
    >>> isinstance(err, ValueError), err.index
    (True, None)
    """


def check_output(output: Any) -> None:
    """Refuse an ``output=`` that is neither None nor a name, before anything runs.

    Examples
    --------
    >>> from labeled_spaces.analysis.program import check_output
    >>> check_output("order")
    >>> check_output(1)
    Traceback (most recent call last):
    ...
    TypeError: output must be None or the key path of one of the model's outputs (a str), got 1
    """
    if output is not None and not isinstance(output, str):
        fail("output", "None or the key path of one of the model's outputs (a str)", output,
             TypeError)


def run_program(executor: Callable[..., Any], model: Callable[..., Any], space: Any,
                args: tuple, program: Program, options: Mapping[str, Any]) -> Results:
    """``executor(model, space, *args, program=program, **options).run()``.

    An :class:`UnusableOutputs` that a lane raised is re-raised as is, also
    where the executor reported it as the failure of a combination run
    without ``jit`` (``SequentialExecution(jit=False)`` runs the first one
    to learn the outputs).

    Raises
    ------
    TypeError
        ``executor`` is not callable; ``options`` holds a ``program``: the
        analysis is one.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, ParallelExecution, Space
    >>> from labeled_spaces.execution.program import MODEL
    >>> space = Space({"a": GridAxis(0.0, 1.0, 3)})
    >>> results = run_program(ParallelExecution, lambda s: s["a"] + 1, space, (), MODEL,
    ...                       {"progress": False})
    >>> results.to_xarray()["result"].values.tolist()
    [1.0, 1.5, 2.0]
    """
    check_callable("executor", executor)
    if "program" in options:
        fail("program", "left out: the analysis runs its own Program", options["program"],
             TypeError)
    try:
        return executor(model, space, *args, program=program, **options).run()
    except ModelError as err:
        cause = err.__cause__
        if not isinstance(err, UnusableOutputs) and isinstance(cause, UnusableOutputs):
            raise cause from None
        raise

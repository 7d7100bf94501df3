"""The execution core: the one run sequence of every executor.

:class:`Executor` holds what every executor is given (the model, the space,
the extra arguments and the checked :class:`~labeled_spaces.execution.options.Options`)
and :meth:`Executor.run` is the sequence, the same for all:

1. bind the Program to the model (:class:`~labeled_spaces.execution.compiled.PreparedModel`)
   and trace one lane for the output structure (nothing runs);
2. label the outputs (the executor's options and the Program's labels);
3. make the sink from ``store=`` (:func:`~labeled_spaces.results.sink.make_sink`)
   and, for an existing store, open it at its block shape (a complete store
   returns at once, nothing compiled);
4. plan the blocks (one block-size policy, :mod:`labeled_spaces.execution.plan`)
   and open the sink, which says which blocks are done already;
5. compute the others and write each to the sink
   (:func:`~labeled_spaces.execution.loop.run_blocks`), then close it.

Failures are handled here once: a model that cannot be traced or compiled
is a :class:`~labeled_spaces.execution.errors.ModelError` before anything
runs, one that fails on a block is blamed by the executor's runner, and
Ctrl-C at any moment of the sequence (tracing, compiling, the loop) is an
:class:`~labeled_spaces.execution.errors.Interrupted` with what finished.

Executors differ only in how a block is computed: each gives the core a
:class:`Computation` (``SequentialExecution`` one combination at a time,
``ParallelExecution`` vectorised compiled blocks, ``DaskExecution`` block
tasks on a cluster).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

import jax
import numpy as np
from tqdm import tqdm

from .._checks import check_callable, warn_user
from .._format import clipped, elided, format_count, format_sizes
from ..axes import KeyAxis
from ..grid import Block, Blocks
from ..results import Outputs, ParallelResult, Results, Sink, output_names
from ..results.identity import describe_arguments, program_fingerprint
from ..results.sink import make_sink, persistent, preferred_step
from ..space import check_space
from .compiled import PreparedModel, dead_inputs
from .errors import Interrupted, ModelError, check_outputs, failed_at, trace_failure
from .loop import Runner, interrupts, run_blocks
from .options import OPTION_NAMES, Options, check_model_arguments, check_model_kwargs
from .program import Labels, is_model, merge_labels

if TYPE_CHECKING:
    from ..space import Space
    from .explain import Explanation

__all__ = ["Computation", "Executor", "Started", "interrupted", "output_labels", "progress_bar",
           "traced", "warn_unread_keys"]


class Started(NamedTuple):
    """A computation under way: its runner, the blocks in the order they finish, the sink."""

    runner: Runner
    blocks: Iterable[Block]
    sink: Sink


class Computation(Protocol):
    """How an executor computes blocks: the one thing executors differ in.

    ``structure()`` traces one lane: its output (a pytree of leaves with
    ``shape`` and ``dtype``) and the traced program's text for the run's
    fingerprint (None where nothing was traced). ``plan(outputs,
    persistent, step)`` tiles the grid (``step``: the sink's block shape)
    and compiles. ``start(blocks, todo, sink, bar)`` is a context manager
    that computes the blocks ``todo`` (see :class:`Started`).
    ``one_at_a_time`` says whether progress is counted per combination.
    """

    one_at_a_time: bool

    def structure(self) -> tuple[Any, str | None]: ...

    def plan(self, outputs: Outputs, persistent: bool, step: tuple[int, ...] | None
             ) -> Blocks: ...

    def start(self, blocks: Blocks, todo: Iterable[Block], sink: Sink, bar: tqdm
              ) -> contextlib.AbstractContextManager[Started]: ...


class Executor:
    """What every executor shares: its arguments, its options and :meth:`run`.

    A subclass names itself (``name``), the options it takes (``OPTIONS``),
    the class of its results (``result_type``), and gives its
    :class:`Computation` (:meth:`computation`). The options are also read as
    attributes (``executor.n_vmap``).
    """

    name: ClassVar[str] = "Executor"
    OPTIONS: ClassVar[tuple[str, ...]] = ()
    result_type: ClassVar[type[Results]] = ParallelResult

    def __init__(self, model: Callable[..., Any], space: Any, args: tuple,
                 kwargs: dict[str, Any], space_name: str = "space", **options: Any) -> None:
        self.model = check_callable("model", model)
        self.space = check_space(space, space_name)
        check_model_kwargs(self.name, model, kwargs, self.OPTIONS)
        check_model_arguments(args, kwargs)
        self.args = args
        self.kwargs = kwargs
        self.options = Options(**options)

    def __getattr__(self, name: str) -> Any:
        options = self.__dict__.get("options")
        if options is not None and name in OPTION_NAMES:
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        """The model, the space's combinations and sizes, then what differs from the defaults.

        Options at their default values are left out; the model's extra
        arguments follow. Long values are cut (``...``).

        Examples
        --------
        >>> from labeled_spaces import GridAxis, ParallelExecution, Space
        >>> def model(state, n_steps=10):
        ...     return state["k"] * n_steps
        >>> space = Space({"k": GridAxis(0.0, 1.0, 4)}, mode="product")
        >>> ParallelExecution(model, space, n_vmap=2, progress=False, n_steps=20)
        <labeled_spaces.ParallelExecution> model over 4 combinations (k: 4)
        Options:    n_vmap=2, progress=False
        Arguments:  n_steps=20
        """
        model = getattr(self.model, "__name__", None) or type(self.model).__name__
        space = self.space
        lines = [f"<labeled_spaces.{self.name}> {model} over "
                 f"{format_count(space.N, 'combination')} ({format_sizes(space.sizes)})"]
        defaults = {f.name: f.default for f in dataclasses.fields(Options)}
        changed = []
        for name in self.OPTIONS:
            if name not in defaults:  # not an option kept (SequentialExecution's collect=)
                continue
            value, default = getattr(self.options, name), defaults[name]
            if value is default or (default is not None and type(value) is type(default)
                                    and value == default):
                continue
            changed.append(f"{name}={_shown(value)}")
        if changed:
            lines.append(f"Options:    {', '.join(changed)}")
        given = [_shown(a) for a in self.args]
        given += [f"{k}={_shown(v)}" for k, v in self.kwargs.items()]
        if given:
            lines.append(f"Arguments:  {', '.join(given)}")
        return "\n".join(lines)

    def computation(self, prepared: PreparedModel) -> Computation:
        """How this executor computes the blocks of ``prepared`` (the bound Program)."""
        raise NotImplementedError

    def run(self) -> Results:
        """Run every combination (see the executor's documentation)."""
        space, options = self.space, self.options
        sink: Sink | None = None
        with interrupts() as seen:
            try:
                prepared = PreparedModel(self.model, space.layout, self.args, self.kwargs,
                                         options.program)
                computation = self.computation(prepared)
                outputs = self.outputs_of(prepared, computation)
                sink = make_sink(options.store, space, self.result_type,
                                 overwrite=options.overwrite)
                step = preferred_step(sink, outputs)
                done: set[int] = set()
                if step is not None:  # a store being resumed: nothing to compile if complete
                    blocks = Blocks(space.shape, step)
                    done = sink.open(outputs, blocks)
                    if len(done) == len(blocks):
                        return sink.close()
                try:
                    blocks = computation.plan(outputs, persistent(sink), step)
                except ModelError:
                    raise
                except Exception as err:
                    raise trace_failure(prepared, space, err) from err
                if step is None:
                    done = sink.open(outputs, blocks)
                    if len(done) == len(blocks):
                        return sink.close()
                todo = [b for b in blocks if b.index not in done] if done else blocks
                shown = space.N > 1 if computation.one_at_a_time else len(blocks) > 1
                with progress_bar(options.progress and shown, space.N, done, blocks) as bar, \
                        computation.start(blocks, todo, sink, bar) as started:
                    return run_blocks(started.runner, started.blocks, started.sink, seen)
            except Interrupted:
                raise
            except KeyboardInterrupt:
                raise interrupted(None if sink is None else sink.partial()) from None

    def explain(self, time: bool = False) -> Explanation:
        """What a run would do and cost, before anything runs (it compiles one block).

        Parameters
        ----------
        time : bool, default False
            Also run one block (one combination for ``SequentialExecution``)
            and estimate the run's wall time from it.

        Returns
        -------
        Explanation
            Combinations, dims, blocks, ``n_vmap``/``n_pmap``, XLA's memory
            analysis of one compiled block, the results' bytes, the store's
            state (see :mod:`labeled_spaces.execution.explain`); its repr
            is a short table.

        Raises
        ------
        ValueError
            Where the run would be refused (a store made by another run).

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from labeled_spaces import GridAxis, ParallelExecution, Space
        >>> space = Space({"k": GridAxis(0.0, 1.0, 100)}, mode="product")
        >>> plan = ParallelExecution(lambda p: jnp.sin(p["k"]), space).explain()
        >>> plan.combinations, plan.blocks, plan.bytes_per_block
        (100, 1, 400)
        """
        from .explain import explain  # the body lives with the Explanation

        return explain(self, time=time)

    def outputs_of(self, prepared: PreparedModel, computation: Computation) -> Outputs:
        """The labelled outputs of the run: one lane traced by ``computation``.

        A model that cannot be traced is a :class:`ModelError` naming the
        first combination where it fails without ``jit``.
        """
        try:
            one, print_ = computation.structure()
        except (ModelError, Warning):  # a warning made an error by the user's filters
            raise
        except Exception as err:
            raise trace_failure(prepared, self.space, err) from err
        return self._outputs(prepared, one, print_)

    def _outputs(self, prepared: PreparedModel, one: Any, print_: str | None) -> Outputs:
        """The labels of the outputs of one lane ``one``, with what the run identity needs.

        The model's extra arguments, described
        (:func:`~labeled_spaces.results.identity.describe_arguments`), the
        Program's settings, and the
        traced program's fingerprint ``print_`` (None where nothing was
        traced: ``jit=False``, so a store cannot tell whether the model
        changed). The run identity itself is
        :func:`labeled_spaces.results.identity.run_identity`.
        """
        try:
            leaves = check_outputs(one)
        except TypeError as err:
            raise failed_at(self.space, 0, f"TypeError: {err}") from err
        treedef = jax.tree.structure(one)
        outputs = output_labels(self.space, self.options, treedef, [x.shape for x in leaves],
                                [x.dtype for x in leaves])
        return dataclasses.replace(outputs, fingerprint=print_ or "",
                                   arguments=describe_arguments(self.args, self.kwargs),
                                   settings=dict(self.options.program.settings) or None)


def _shown(value: Any) -> str:
    """``value`` on one short line: an array by its dtype and shape, anything else by its repr."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and shape and dtype is not None:
        return f"<{dtype} array of shape {shape}>"
    return clipped(" ".join(repr(value).split()), 60)


def interrupted(partial: Results | None) -> Interrupted:
    """The :class:`Interrupted` of a run stopped by Ctrl-C, with what finished in ``partial``.

    Examples
    --------
    >>> from labeled_spaces.execution.core import interrupted
    >>> err = interrupted(None)
    >>> isinstance(err, KeyboardInterrupt), err.partial is None
    (True, True)
    """
    if partial is None:
        return Interrupted(
            "interrupted by the user before any combination finished (while the model was "
            "traced or compiled, or the run set up); .partial is None, and a store keeps "
            "what it held", partial=None)
    finished = 0 if partial.done is None else int(np.sum(partial.done))
    return Interrupted(f"interrupted by the user; {finished} finished combinations are in "
                       ".partial", partial=partial)


def output_labels(space: Any, options: Options, treedef: Any, shapes: Sequence[tuple],
                  dtypes: Sequence[Any]) -> Outputs:
    """:class:`Outputs` from the executor's output options and the Program's labels."""
    dtypes = [np.dtype(d) for d in dtypes]
    shapes = [tuple(s) for s in shapes]
    labels = options.program.labels(tuple(output_names(treedef)), tuple(shapes))
    if labels == Labels():
        return Outputs.build(space, treedef, shapes, dtypes, options.output_dims,
                             options.output_coords, options.output_attrs)
    names = output_names(treedef)
    rest, combine = merge_labels(labels, names, shapes, options.output_dims,
                                 options.output_coords, options.output_attrs)
    # the outputs' own dimensions, after the program's: named as the model's would be
    own = Outputs.build(space, treedef, rest, dtypes, options.output_dims)
    dims, coords, attrs = combine(dict(zip(own.names, own.dims, strict=True)))
    return Outputs.build(space, treedef, shapes, dtypes, dims, coords, attrs)


def traced(prepared: PreparedModel, tables: Sequence[Any], state_arrays: Any,
           extra_arrays: Any, space: Space | None = None) -> tuple[Any, str, Any]:
    """One lane's output shapes, the traced lane's fingerprint, and its program.

    The lane is traced once per structure: shapes and fingerprint are
    cached with the compiled programs. The program (a ``ClosedJaxpr``) is
    returned only when it was traced by this call (else None); it is not
    kept, so the cache holds nothing that could keep the model alive. Given
    the ``space``, a ``KeyAxis`` whose key no output of the model depends on
    is warned about when traced (:func:`warn_unread_keys`); only for the
    model's own outputs: a Program's (``gradients``: derivatives) may rightly
    not depend on a key the model reads (additive noise).
    """
    lane = [jax.ShapeDtypeStruct(np.shape(t)[1:], t.dtype) for t in tables]
    key = ("output", tuple((a.shape, str(a.dtype)) for a in lane))
    made: dict[str, Any] = {}

    def trace() -> tuple[Any, str]:
        program, shapes = jax.make_jaxpr(prepared.call, return_shape=True)(
            lane, state_arrays, extra_arrays)
        made["program"] = program
        if space is not None and is_model(prepared.program):
            made["dead"] = dead_inputs(program, len(lane))
        return shapes, program_fingerprint(program)

    shapes, print_ = prepared.cached(key, trace)
    if space is not None and "dead" in made:  # warned once, when first traced
        warn_unread_keys(space, made["dead"], len(lane))
    return shapes, print_, made.get("program")


def warn_unread_keys(space: Space, dead: Sequence[int], inputs: int) -> None:
    """Warn of a ``KeyAxis`` whose replicates all get the same results.

    ``dead`` are the lane inputs no output depends on, of ``inputs``: the
    axes' values, then the key positions. A KeyAxis's replicates are all
    equal when its key is dead, so is every axis on its dimension, and no
    ``PointKey`` (a key position) is read. Such a key (put at another path
    than the one the model reads, say ``state["seed"]`` for a model reading
    ``state["key"]``) makes a sweep that looks finished.
    """
    n = len(space.axes)
    if any(k not in dead for k in range(n, inputs)):  # a PointKey varies along every dim
        return
    on_dim = space.layout.axis_dim
    for a in (a for a in dead if a < n):
        if isinstance(space.axes[a], KeyAxis) and all(
                b in dead for b in range(n) if on_dim[b] == on_dim[a]):
            path, name = space.paths[a], space.names[a]
            warn_user(f"no output of the model depends on the KeyAxis at {path!r} in the state: "
                      f"every replicate along {name!r} gets the same results. Put it where the "
                      f"model reads its key (the state holds {_top_level(space.state)})")


def _top_level(state: Any) -> str:
    if isinstance(state, dict):
        return f"the keys {elided([repr(k) for k in state], edge=6)}"
    return f"a {type(state).__name__}"


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, done: set[int] | None, blocks: Blocks
                 ) -> Iterator[tqdm]:
    """A tqdm bar over combinations, starting at those already done (a resumed store)."""
    initial = sum(blocks[k].size for k in done) if done else 0
    bar = tqdm(total=total, initial=initial, disable=not enabled, unit="combination")
    try:
        yield bar
    finally:
        bar.close()

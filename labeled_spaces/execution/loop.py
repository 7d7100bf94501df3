"""The one executor loop: blocks in, finished blocks to the sink, failures with what finished.

Every executor runs its blocks through :func:`run_blocks` with a
:class:`Runner` that knows how to start a block (``dispatch``), wait for it
and bring it to the host (``fetch``), and whom to blame when it fails
(``blame``). The loop dispatches block ``k + 1`` before fetching block
``k``, so the copy of one block hides behind the computation of the next,
writes every finished block to the sink, and on a failure or Ctrl-C keeps
everything finished: the error carries ``sink.partial()`` (Ctrl-C is turned
into :class:`~labeled_spaces.execution.errors.Interrupted` by the core,
whose whole run sequence sits inside one :func:`interrupts`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from ..grid import Block
from ..results import Results, Sink
from .errors import ModelError

__all__ = ["BlockFailure", "Runner", "interrupts", "run_blocks"]


class BlockFailure(Exception):
    """A block that failed part-way: its first ``count`` points are finished.

    Raised by a runner's ``dispatch`` (one combination at a time) so that the
    loop keeps those points; ``cause`` is the model's error and ``index`` the
    flat index of the combination that failed.
    """

    def __init__(self, cause: BaseException, index: int, count: int,
                 leaves: Sequence[np.ndarray] | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.index = index
        self.count = count
        self.leaves = leaves


class Runner(Protocol):
    """What an executor tells the loop (see the module documentation).

    ``ready(handle)`` says whether a dispatched block has finished computing
    (a finished block is kept on Ctrl-C; a running one is not waited for).
    ``blame`` returns the exception to raise: a ``ModelError``, or another
    error that is not the model's (a worker that cannot write its block: an
    ``OSError``).
    """

    def dispatch(self, block: Block) -> Any: ...

    def fetch(self, block: Block, handle: Any) -> list[np.ndarray]: ...

    def blame(self, err: BaseException, block: Block, partial: Results | None
              ) -> Exception: ...

    def ready(self, handle: Any) -> bool: ...


@contextlib.contextmanager
def interrupts() -> Iterator[threading.Event]:
    """An event set by Ctrl-C during a run, with Ctrl-C still raising KeyboardInterrupt.

    A model that calls back into Python (``pure_callback``) turns the
    interrupt into an error of the compiled call; the event tells it apart
    from a failure of the model.
    """
    seen = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        seen.set()
        if callable(previous) and previous not in (signal.SIG_IGN, signal.SIG_DFL):
            previous(signum, frame)
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main interpreter
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _is_interrupt(err: BaseException, seen: threading.Event) -> bool:
    return seen.is_set() or isinstance(err, KeyboardInterrupt) or (
        "KeyboardInterrupt" in str(err) and not isinstance(err, ModelError))


def run_blocks(runner: Runner, blocks: Iterable[Block], sink: Sink,
               seen: threading.Event | None = None) -> Results:
    """Run ``blocks`` through ``runner`` into ``sink``; the sink's Results at the end.

    ``seen`` is the event of the run's :func:`interrupts` (Ctrl-C that a
    model's callback turned into an error of its own).

    Raises
    ------
    ModelError
        From ``runner.blame``, with the finished results in ``.partial``.
    KeyboardInterrupt
        On Ctrl-C, after writing a block already computed to ``sink``.
    """
    pending: tuple[Block, Any] | None = None
    seen = threading.Event() if seen is None else seen

    def write(entry: tuple[Block, Any]) -> None:
        block, handle = entry
        # an accelerator may report a failure only when the block is copied out
        try:
            leaves = runner.fetch(block, handle)
        except Exception as err:
            if _is_interrupt(err, seen):
                raise KeyboardInterrupt from err
            raise runner.blame(err, block, sink.partial()) from err
        sink.write(block, leaves)

    try:
        for block in blocks:
            try:
                handle = runner.dispatch(block)
            except Exception as err:
                if pending is not None:  # keep the block before the failing one
                    with contextlib.suppress(Exception):
                        write(pending)
                    pending = None
                cause: BaseException = err
                if isinstance(err, BlockFailure):
                    if err.count and err.leaves is not None:
                        sink.write(block, err.leaves, err.count)
                    cause = err.cause
                if _is_interrupt(cause, seen):
                    raise KeyboardInterrupt from err
                raise runner.blame(err, block, sink.partial()) from cause
            if pending is not None:
                write(pending)
            pending = (block, handle)
        if pending is not None:
            write(pending)
    except KeyboardInterrupt:
        # a block already computed is kept; one still running is not waited for
        if pending is not None and getattr(runner, "ready", lambda h: False)(pending[1]):
            with contextlib.suppress(BaseException):
                write(pending)
        raise
    return sink.close()

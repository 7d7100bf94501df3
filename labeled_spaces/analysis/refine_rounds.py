"""refine's rounds: checking its store, and one dask cluster for all of them.

Split from :mod:`labeled_spaces.analysis.refine`, which runs the rounds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._checks import fail, warn_user
from ..execution import DaskExecution, Interrupted, ModelError, cluster
from ..results.refine_store import StoredRoot, holds_rounds, stored_root
from ..results.refined import Refinement

__all__ = ["check_refine_store", "one_cluster", "set_aside", "set_aside_leftovers"]

logger = logging.getLogger("labeled_spaces")


@contextlib.contextmanager
def one_cluster(executor: Any, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``options``, with the client of one local dask cluster kept for all rounds.

    Only for a ``DaskExecution`` given no client, which would otherwise
    start and close a cluster in every round.
    """
    if not (isinstance(executor, type) and issubclass(executor, DaskExecution)) or \
            options.get("client") is not None:
        yield options
        return
    import dask
    from distributed import Client

    # as DaskExecution starts its own: restarted workers are spawned too
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}), \
            cluster.local_cluster() as local, Client(local, set_as_default=False) as client:
        logger.info("refine: started a local dask cluster of %d workers for every round",
                    len(local.workers))
        yield {**options, "client": client}


def check_refine_store(store: Any, asked: Refinement, overwrite: bool
                       ) -> tuple[Path | None, StoredRoot | None]:
    """The refine store's path and its root, after refusing one made for another refinement.

    A store refused is left untouched. A new store's path ends in ``.zarr``,
    as every store's does; a folder of rounds made by an earlier version
    keeps its name. A larger ``n`` is not a difference (the store grows),
    nor is ``output`` left out where it names the store's only output. The
    root is None for a new store, a folder of rounds only, or with
    ``overwrite`` (the store is replaced).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from labeled_spaces.analysis.refine_rounds import check_refine_store
    >>> check_refine_store(Path(tempfile.mkdtemp()) / "run.nc", None, False)
    Traceback (most recent call last):
    ...
    ValueError: store must be None or the path of refine's store (a .zarr directory), got ...
    """
    if store is None:
        return None, None
    expected = "None or the path of refine's store (a .zarr directory)"
    try:
        path = Path(os.fspath(store))
    except TypeError:
        fail("store", expected, store, TypeError)
    if path.is_symlink():  # the store is where the link points: overwrite moves that
        path = path.resolve()
    if path.exists() and not path.is_dir():
        fail("store", expected, store)
    for left in set_aside_leftovers(path):
        warn_user(f"{str(left)!r} is a store that refine(overwrite=True) set aside and never "
                  f"put back (its run was stopped): the store at {str(path)!r} replaced it. "
                  "Remove it, or rename it back to restore it")
    held = stored_root(path) if path.is_dir() else None  # a store of another kind: refused
    rounds = held is None and holds_rounds(path)
    if held is None and not rounds:
        if path.suffix != ".zarr":
            fail("store", expected, store)
        if path.is_dir() and any(path.iterdir()):
            raise ValueError(f"store={str(path)!r} is a folder that refine did not make (no "
                             "results over its points, no rounds); refusing to write into it: "
                             "give a new path")
    if held is not None and not overwrite:
        found = _differences(held, asked)
        if found:
            raise ValueError(
                f"store={str(path)!r} holds a refinement asked for otherwise "
                f"({'; '.join(found)}); it is left as it is: give a new path, or pass "
                "overwrite=True to replace it")
    elif rounds:
        logger.info("refine: %s holds rounds but not the results over all points (made by an "
                    "earlier version); they are written as the rounds are read back", path)
    return path, None if overwrite else held


def _differences(held: StoredRoot, asked: Refinement) -> list[str]:
    """What ``asked`` asks for otherwise than the store: a larger ``n`` grows it."""
    stored = held.refinement
    if asked.n > stored.n:
        asked = dataclasses.replace(asked, n=stored.n)
    if len(held.outputs) == 1 and {stored.output, asked.output} - {None} <= {held.outputs[0]}:
        asked = dataclasses.replace(asked, output=stored.output)  # None names the only one
    return stored.differences(asked)


@contextlib.contextmanager
def set_aside(path: Path | None, overwrite: bool) -> Iterator[Callable[[], None]]:
    """With ``overwrite``, the store at ``path`` moved aside while a new one is made there.

    Yields ``commit``, which the caller calls once the new store is whole:
    from then on the old store is removed, whatever happens. Before it, a
    run that fails with its points in the error's ``partial``
    (``ModelError``, ``Interrupted``) puts the old store back and removes
    the new one's rounds; any other failure keeps both, the old one beside
    it under the name a note on the error gives. Nothing stored is lost.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from labeled_spaces.analysis.refine_rounds import set_aside
    >>> path = Path(tempfile.mkdtemp()) / "refined.zarr"
    >>> (path / "round_000.zarr").mkdir(parents=True)
    >>> with set_aside(path, overwrite=True) as commit:
    ...     print(path.exists())
    ...     commit()
    False
    >>> [p.name for p in path.parent.iterdir()]  # the old store is gone
    []
    """
    if path is None or not overwrite or not path.exists():
        yield lambda: None
        return
    aside = path.parent / f".{path.name}.replaced-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.rename(path, aside)
    committed = False

    def commit() -> None:
        nonlocal committed
        committed = True

    try:
        yield commit
    except BaseException as err:
        if committed:
            shutil.rmtree(aside, ignore_errors=True)
        elif isinstance(err, (ModelError, Interrupted)) and err.partial is not None:
            try:  # the new points are in err.partial: the old store comes back
                shutil.rmtree(path)
                os.rename(aside, path)
            except OSError as failed:
                err.add_note(f"refine: the store replaced by overwrite=True is kept at "
                             f"{str(aside)!r} (putting it back failed: {failed})")
        else:
            err.add_note(f"refine: the store replaced by overwrite=True is kept at "
                         f"{str(aside)!r}; the new one's rounds are at {str(path)!r}")
        raise
    shutil.rmtree(aside, ignore_errors=True)


def set_aside_leftovers(path: Path) -> list[Path]:
    """Stores an overwrite of ``path`` set aside and never put back (its run was killed).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from labeled_spaces.analysis.refine_rounds import set_aside_leftovers
    >>> set_aside_leftovers(Path(tempfile.mkdtemp()) / "refined.zarr")
    []
    """
    try:
        return sorted(path.parent.glob(f".{glob.escape(path.name)}.replaced-*"))
    except OSError:
        return []

"""refine's rounds: what each round's run records, its store, and one dask cluster for all.

Split from :mod:`labeled_spaces.analysis.refine`, which runs the rounds.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._checks import fail
from ..execution import DaskExecution, cluster
from ..execution.program import Program, model_lane
from ..results.refine_store import holds_rounds, stored_root
from ..results.refined import Box, Refinement

__all__ = ["check_refine_store", "one_cluster", "round_program"]

logger = logging.getLogger("labeled_spaces")


def round_program(box: Box, k: int, batch: int, output: str) -> Program:
    """The model, with what round ``k``'s points follow from as settings of its run identity.

    Every round records the box (the axes' bounds and scales); rounds after
    the first also ``batch`` and the driving ``output`` (resolved: the name
    of the output the first round found), so that a store made with others
    is refused naming them, also where a round's store is met without the
    root's record (:func:`check_refine_store` compares that one first).
    """
    bounds = tuple(f"{name}: {float(low)!r}..{float(high)!r}{' log' if log else ''}"
                   for name, low, high, log in zip(box.names, box.low, box.high, box.log,
                                                   strict=True))
    settings: tuple[tuple[str, Any], ...] = (("analysis", "refine"), ("box", bounds))
    if k > 0:
        settings += (("batch", batch), ("output", output))
    return Program(model_lane, settings=settings)


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


def check_refine_store(store: Any, asked: Refinement, overwrite: bool) -> Path | None:
    """The refine store's path, after refusing one made for another refinement (untouched)."""
    if store is None:
        return None
    try:
        path = Path(os.fspath(store))
    except TypeError:
        fail("store", "None or the path of refine's store (a directory)", store, TypeError)
    if path.exists() and not path.is_dir():
        fail("store", "None or the path of refine's store (a directory)", store)
    held = stored_root(path) if path.is_dir() else None  # a store of another kind: refused
    if held is not None and not overwrite:
        found = held.refinement.differences(asked)
        if asked.n > held.refinement.n:  # more points: only the rounds (or the part) it adds run
            found = [f for f in found if not f.startswith("n: ")]
        if found:
            raise ValueError(
                f"store={str(path)!r} holds a refinement asked for otherwise "
                f"({'; '.join(found)}); it is left as it is: give a new path, or pass "
                "overwrite=True to replace it")
    elif held is None and holds_rounds(path):
        logger.info("refine: %s holds rounds but not the results over all points (made by an "
                    "earlier version); they are written as the rounds are read back", path)
    return path

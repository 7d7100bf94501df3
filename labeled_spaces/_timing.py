"""Timing one unit of work for an estimate (``explain(time=True)``): the median of its later runs.

The first run of a unit pays for warming up: a compiled program's buffers and
XLA:CPU's threads, a scratch store's folders, memory touched for the first
time. With blocks of a few milliseconds, one first run timed gave estimates
4.7-5.3x the real run, the median of the later runs 0.7-0.9x
(``benchmarks/grow_explain.py --quick``). So a quick unit is run again,
within :data:`BUDGET_S`; a slow one (where the estimate matters) once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["BUDGET_S", "MOST_RUNS", "median_seconds"]

#: a unit is run again while all its runs took less than this, at most MOST_RUNS times more
BUDGET_S = 0.25
MOST_RUNS = 10


def median_seconds(run: Callable[[], Any], at_least: int = 1) -> float:
    """Seconds one call of ``run()`` takes: the median of the calls after the first.

    ``run`` is called at least ``at_least`` times, then again while all calls
    took less than :data:`BUDGET_S` (at most ``MOST_RUNS + 1`` calls). A unit
    called once is timed by that call.

    Examples
    --------
    >>> from labeled_spaces._timing import median_seconds
    >>> calls = []
    >>> median_seconds(lambda: calls.append(1), at_least=2) >= 0, len(calls) > 2
    (True, True)
    """
    times: list[float] = []
    while True:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        if len(times) >= at_least and (sum(times) >= BUDGET_S or len(times) > MOST_RUNS):
            break
    later = sorted(times[1:]) or times
    return later[len(later) // 2]

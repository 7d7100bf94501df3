"""refine against python-adaptive's Learner2D on adaptive's ring function.

The ring of adaptive's tutorial, ``f(x, y) = x + exp(-(x^2 + y^2 - 0.75^2)^2 / a^4)``
with ``a = 0.2`` on ``[-1, 1]^2``, sampled at ``n = 4096`` points by

- ``refine`` (ours): a 16 x 16 grid, then rounds of 256 points, each one
  compiled call of ``ParallelExecution``;
- adaptive 1.5.2 ``Learner2D`` one point at a time (``adaptive.runner.simple``
  with a jitted per-point function);
- adaptive's own batches: ``learner.ask(256)`` then ``tell`` each point, until
  ``n``.

Each sample is scored by the RMS error of its linear interpolation
(``LinearNDInterpolator`` of the points, the same for all three) against the
function on a 300 x 300 grid. Ours is timed end to end, including the
compilations (the model is traced and compiled afresh: caches are cleared
first), as the median of ``--repeats`` runs (they give the same points).
adaptive's jitted point function is compiled before its timing. Targets, as
ratios measured in one run: our RMS <= 1.1x ``runner.simple``'s and <= 1.0x
``ask(256)``'s; our wall time <= 0.1x ``runner.simple``'s. Exit status 1 when
a target fails.

Needs ``pip install adaptive==1.5.2`` (not a dependency of the package).

Run from the repository root: ``python benchmarks/refine.py [--n 4096] [--batch 256]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy.interpolate import LinearNDInterpolator

import labeled_spaces as ls

A = 0.2


def ring(x, y):
    return x + jnp.exp(-((x**2 + y**2 - 0.75**2) ** 2) / A**4)


def ring_model(state):
    return ring(state["x"], state["y"])


def rms(points: np.ndarray, values: np.ndarray, side: int = 300) -> float:
    ticks = np.linspace(-1.0, 1.0, side)
    x, y = np.meshgrid(ticks, ticks, indexing="ij")
    truth = np.asarray(ring(jnp.asarray(x, jnp.float64) if jax.config.jax_enable_x64 else x,
                            y), dtype=np.float64)
    guess = LinearNDInterpolator(points, values)(x, y)
    return float(np.sqrt(np.mean((guess - truth) ** 2)))


def ours(n: int, batch: int, side: int) -> tuple[float, float]:
    ls.clear_caches()
    space = ls.Space({"x": ls.GridAxis(-1.0, 1.0, side), "y": ls.GridAxis(-1.0, 1.0, side)},
                     mode="product")
    start = time.perf_counter()
    results = ls.refine(ring_model, space, n=n, batch=batch)
    wall = time.perf_counter() - start
    ds = results.to_xarray()
    points = np.stack([ds["x"].values, ds["y"].values], axis=1)
    assert len(points) == n
    return wall, rms(points, ds["result"].values.astype(np.float64))


def adaptive_runs(n: int, batch: int) -> tuple[float, float, float, float]:
    import adaptive

    point = jax.jit(lambda xy: ring(xy[0], xy[1]))

    def f(xy):
        return float(point(jnp.asarray(xy)))

    f((0.1, 0.2))  # compile outside the timing

    def scored(learner):
        points = np.array(list(learner.data.keys()))
        values = np.array(list(learner.data.values()))
        return rms(points, values)

    learner = adaptive.Learner2D(f, bounds=[(-1, 1), (-1, 1)])
    start = time.perf_counter()
    adaptive.runner.simple(learner, npoints_goal=n)
    simple_wall = time.perf_counter() - start
    simple_rms = scored(learner)

    learner = adaptive.Learner2D(f, bounds=[(-1, 1), (-1, 1)])
    start = time.perf_counter()
    while learner.npoints < n:
        asked, _ = learner.ask(min(batch, n - learner.npoints))
        for xy in asked:
            learner.tell(xy, f(xy))
    batched_wall = time.perf_counter() - start
    return simple_wall, simple_rms, batched_wall, scored(learner)


#: what the section says when python-adaptive is missing
MISSING = ("python-adaptive is not installed (the anchor; not a dependency of "
           "labeled_spaces): pip install adaptive==1.5.2")


def adaptive_version() -> str | None:
    """adaptive's version, or None when it is not installed."""
    try:
        import adaptive
    except ImportError:
        return None
    return str(adaptive.__version__)


def measure(n: int, batch: int, side: int, repeats: int
            ) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
    """Rows ``(method, wall s, RMS)`` and targets ``(name, ratio, limit)`` of one run.

    Needs python-adaptive (see :func:`adaptive_version`).
    """
    simple_wall, simple_rms, batched_wall, batched_rms = adaptive_runs(n, batch)
    runs = [ours(n, batch, side) for _ in range(repeats)]
    wall, error = float(np.median([w for w, _ in runs])), runs[0][1]
    rows = [
        (f"refine (ours), batch {batch}", wall, error),
        (f"adaptive {adaptive_version()} runner.simple", simple_wall, simple_rms),
        (f"adaptive ask({batch})", batched_wall, batched_rms),
    ]
    targets = [
        ("RMS ours / runner.simple", error / simple_rms, 1.1),
        (f"RMS ours / ask({batch})", error / batched_rms, 1.0),
        ("wall ours / runner.simple", wall / simple_wall, 0.1),
    ]
    return rows, targets


def show(n: int, rows: list[tuple[str, float, float]],
         targets: list[tuple[str, float, float]]) -> bool:
    """Print the rows and the targets with PASS/FAIL; whether all passed."""
    print(f"ring a={A}, n={n}: RMS of linear interpolation on a 300x300 grid "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'method':<36} {'wall s':>8} {'RMS':>9}")
    for name, seconds, value in rows:
        print(f"{name:<36} {seconds:8.3f} {value:9.5f}")
    passed = True
    for name, ratio, limit in targets:
        ok = ratio <= limit
        passed &= ok
        print(f"{name:<36} {ratio:8.3f}  (target <= {limit})  {'PASS' if ok else 'FAIL'}")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--side", type=int, default=16, help="first round: side x side grid")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (median)")
    args = parser.parse_args()
    if adaptive_version() is None:
        print(MISSING, file=sys.stderr)
        return 2
    rows, targets = measure(args.n, args.batch, args.side, args.repeats)
    return 0 if show(args.n, rows, targets) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Quasi-random spaces against a zip space of UniformAxis, and their discrepancy.

Two measurements, in one run:

1. Building a Space of ``--n`` points over 8 ``UniformAxis`` in each design
   mode (``sobol``, ``halton``, ``lhs``) and in ``zip`` mode (the anchor), and
   ``space[i]`` at random indices. After one warm-up build of each mode
   (one-off costs: compiling, loading scipy's Sobol direction numbers), builds
   alternate between the modes and the median of ``--repeats`` is kept;
   ``space[i]`` is the median of 2,000 calls after a warm-up call. Ratios are design / zip.
2. The centered L2 discrepancy (``scipy.stats.qmc.discrepancy``) of each
   design's unit points at n = 4096 in 8 dimensions, the mean over ``--keys``
   design keys, against the mean over ``--seeds`` sets of uniform random
   draws (a design is random too: one key's discrepancy varies by about 8%
   for a Latin hypercube, and random draws' by about 17%). Ratios are
   design / random; the largest single key's ratio is printed beside.

Targets: building and ``space[i]`` at most 2x the zip space; discrepancy at
most 0.5x that of random draws.

Usage::

    python benchmarks/designs.py                # n = 2**20 (about 1e6), 8 axes
    python benchmarks/designs.py --n 1000000    # Sobol warns: not a power of two
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import jax
import numpy as np
from scipy.stats import qmc

from labeled_spaces import Space, UniformAxis
from labeled_spaces.space.design import DESIGNS, unit_design

TARGET_BUILD = 2.0
TARGET_INDEX = 2.0
TARGET_DISCREPANCY = 0.5


def _state(n: int, d: int) -> dict:
    return {f"p{k}": UniformAxis(0.0, 1.0, n) for k in range(d)}


def _build(mode: str, n: int, d: int) -> tuple[float, Space]:
    state = _state(n, d)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Sobol at n not a power of two
        space = Space(state, mode=mode, key=jax.random.key(1))
    return time.perf_counter() - start, space


def _index_time(space: Space, calls: int) -> float:
    rng = np.random.default_rng(0)
    indices = rng.integers(0, len(space), calls).tolist()
    jax.block_until_ready(space[indices[0]])
    times = []
    for i in indices:
        start = time.perf_counter()
        jax.block_until_ready(space[i])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2**20)
    parser.add_argument("--axes", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--keys", type=int, default=10)
    args = parser.parse_args(argv)
    modes = ("zip", *DESIGNS)

    for mode in modes:  # one-off costs (compiling, scipy's Sobol direction numbers) first
        _build(mode, args.n, args.axes)
    builds: dict[str, list[float]] = {m: [] for m in modes}
    spaces: dict[str, Space] = {}
    for _ in range(args.repeats):
        for mode in modes:
            elapsed, spaces[mode] = _build(mode, args.n, args.axes)
            builds[mode].append(elapsed)
    build = {m: statistics.median(t) for m, t in builds.items()}
    index = {m: _index_time(spaces[m], args.calls) for m in modes}

    ok = True
    print(f"# {args.n:,} points x {args.axes} UniformAxis; medians of {args.repeats} builds, "
          f"{args.calls} space[i] calls")
    print("| mode | build | ratio | space[i] | ratio |")
    print("|---|---|---|---|---|")
    for mode in modes:
        rb, ri = build[mode] / build["zip"], index[mode] / index["zip"]
        print(f"| {mode} | {build[mode] * 1e3:.1f} ms | {rb:.2f}x | {index[mode] * 1e6:.1f} µs "
              f"| {ri:.2f}x |")
        if mode != "zip":
            ok &= rb <= TARGET_BUILD and ri <= TARGET_INDEX

    n, d = 4096, args.axes
    random = statistics.mean(qmc.discrepancy(np.random.default_rng(s).random((n, d)))
                             for s in range(args.seeds))
    print(f"\n# centered L2 discrepancy at n = {n}, d = {d}: mean of {args.keys} design keys; "
          f"random: mean of {args.seeds} seeds")
    print(f"| design | discrepancy | ratio to random ({random:.3e}) | largest key's ratio |")
    print("|---|---|---|---|")
    for mode in DESIGNS:
        values = [qmc.discrepancy(unit_design(mode, n, d, jax.random.key(k)))
                  for k in range(args.keys)]
        value = statistics.mean(values)
        print(f"| {mode} | {value:.3e} | {value / random:.3f}x | {max(values) / random:.3f}x |")
        ok &= value / random <= TARGET_DISCREPANCY
    print(f"\ntargets: build and space[i] <= {TARGET_BUILD}x zip, discrepancy <= "
          f"{TARGET_DISCREPANCY}x random: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

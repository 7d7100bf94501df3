"""Analyses against their anchors, ratios measured in one run.

Sensitivity (``labeled_spaces.sensitivity``):

1. Time: Sobol indices of a JAX network model (the Kuramoto network of
   ``labeled_spaces.examples`` on ``--nodes`` nodes, ``--steps`` Euler steps;
   3 factors: coupling, noise, frequency spread; output: the time-averaged
   order parameter), n = 1024 base samples, 200 bootstrap resamples included.
   Anchor: SALib 1.6 (``pip install SALib``) driving the same hand-written
   ``jax.jit(jax.vmap(model))`` in one call on all ``n (d + 2)`` points
   (``SALib.sample.sobol.sample`` then ``SALib.analyze.sobol.analyze``). Both
   are warmed up once (compilation excluded); the median of ``--repeats``
   alternating runs is kept (the ratio of the fastest runs is printed too).
   Target: ours at most 1.1x SALib.
2. Accuracy: the Ishigami function (a = 7, b = 0.1, U(-pi, pi)^3) at n = 4096,
   mean absolute error of S1 and ST against the analytic values, averaged over
   ``--seeds`` seeds. Anchor: ``scipy.stats.sobol_indices`` with the same n.
   Target: ours at most scipy's + 0.005.

Usage::

    pip install SALib   # the anchor; not a dependency of labeled_spaces
    python benchmarks/analysis.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from labeled_spaces import UniformAxis, sensitivity
from labeled_spaces.examples import kuramoto, make_state

TARGET_TIME = 1.1
TARGET_ERROR = 0.005
BOUNDS = {"coupling": (0.0, 4.0), "noise": (0.0, 0.5), "spread": (0.5, 2.0)}
ISHIGAMI_S1 = np.array([0.3139, 0.4424, 0.0])
ISHIGAMI_ST = np.array([0.5576, 0.4424, 0.2437])


def _network(nodes: int, steps: int):
    def model(s):
        state = {"coupling": s["coupling"], "noise": s["noise"], "weights": s["weights"],
                 "omega": s["spread"] * s["omega"]}
        return kuramoto(state, n_steps=steps, n_record=steps // 10)["order"]

    fixed = make_state(n_nodes=nodes)
    state = {"weights": fixed["weights"], "omega": fixed["omega"],
             **{name: UniformAxis(lo, hi, 2) for name, (lo, hi) in BOUNDS.items()}}
    return model, state


def _ours(model, state, n: int) -> np.ndarray:
    indices = sensitivity(model, state, n=n, n_resamples=200, progress=False)
    return indices["S1"].values


def _salib(model, state, n: int) -> np.ndarray:
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    problem = {"num_vars": 3, "names": list(BOUNDS), "bounds": [list(b) for b in BOUNDS.values()]}
    x = sample.sample(problem, n, calc_second_order=False, seed=0)
    fixed = {"weights": state["weights"], "omega": state["omega"]}
    y = np.asarray(_SALIB_FN(fixed, jnp.asarray(x, dtype=jnp.float32)))
    result = analyze.analyze(problem, y.astype(np.float64), calc_second_order=False,
                             num_resamples=200, conf_level=0.95)
    return np.asarray(result["S1"])


_SALIB_FN = None


def _timing(args: argparse.Namespace) -> bool:
    global _SALIB_FN
    model, state = _network(args.nodes, args.steps)

    def lane(fixed, x):
        return model({**fixed, "coupling": x[0], "noise": x[1], "spread": x[2]})

    _SALIB_FN = jax.jit(jax.vmap(lane, in_axes=(None, 0)))
    ours_s1, salib_s1 = _ours(model, state, args.n), _salib(model, state, args.n)  # warm-up
    times: dict[str, list[float]] = {"ours": [], "SALib": []}
    for _ in range(args.repeats):
        for name, fn in (("ours", _ours), ("SALib", _salib)):
            start = time.perf_counter()
            fn(model, state, args.n)
            times[name].append(time.perf_counter() - start)
    ours, salib = (statistics.median(times[k]) for k in ("ours", "SALib"))
    ratio = ours / salib
    best = min(times["ours"]) / min(times["SALib"])  # the least disturbed runs, on a busy machine
    print(f"# sensitivity of the Kuramoto network ({args.nodes} nodes, {args.steps} steps), "
          f"n = {args.n}, 3 factors, {args.n * 5:,} evaluations, 200 resamples; "
          f"median of {args.repeats}")
    print("| implementation | time | ratio |")
    print("|---|---|---|")
    print(f"| SALib 1.6 + jit(vmap(model)) | {salib:.3f} s | 1.00x |")
    print(f"| labeled_spaces.sensitivity | {ours:.3f} s | {ratio:.2f}x (fastest runs: "
          f"{best:.2f}x) |")
    print(f"S1 ours {np.round(ours_s1, 3).tolist()}, SALib {np.round(salib_s1, 3).tolist()}")
    return ratio <= TARGET_TIME


def _ishigami_jax(s, a=7.0, b=0.1):
    return jnp.sin(s["x1"]) + a * jnp.sin(s["x2"]) ** 2 + b * s["x3"] ** 4 * jnp.sin(s["x1"])


def _ishigami_np(x, a=7.0, b=0.1):
    return np.sin(x[0]) + a * np.sin(x[1]) ** 2 + b * x[2] ** 4 * np.sin(x[0])


def _accuracy(args: argparse.Namespace) -> bool:
    from scipy.stats import sobol_indices, uniform

    state = {f"x{i}": UniformAxis(-np.pi, np.pi, 2) for i in (1, 2, 3)}
    ours, scipy = [], []
    for seed in range(args.seeds):
        ind = sensitivity(_ishigami_jax, state, n=4096, key=jax.random.key(seed), progress=False)
        ours.append(np.mean(np.abs(np.concatenate([ind["S1"].values - ISHIGAMI_S1,
                                                   ind["ST"].values - ISHIGAMI_ST]))))
        ref = sobol_indices(func=_ishigami_np, n=4096, rng=np.random.default_rng(seed),
                            dists=[uniform(loc=-np.pi, scale=2 * np.pi)] * 3)
        scipy.append(np.mean(np.abs(np.concatenate([ref.first_order - ISHIGAMI_S1,
                                                    ref.total_order - ISHIGAMI_ST]))))
    mine, theirs = float(np.mean(ours)), float(np.mean(scipy))
    print(f"\n# Ishigami, n = 4096, mean |error| of S1 and ST over {args.seeds} seeds")
    print("| implementation | mean abs error |")
    print("|---|---|")
    print(f"| scipy.stats.sobol_indices | {theirs:.4f} |")
    print(f"| labeled_spaces.sensitivity | {mine:.4f} (scipy + {mine - theirs:+.4f}) |")
    return mine <= theirs + TARGET_ERROR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    timed = _timing(args)
    accurate = _accuracy(args)
    print(f"\nsensitivity targets: time <= {TARGET_TIME}x SALib: {'PASS' if timed else 'FAIL'}; "
          f"Ishigami error <= scipy + {TARGET_ERROR}: {'PASS' if accurate else 'FAIL'}")
    return 0 if timed and accurate else 1


if __name__ == "__main__":
    sys.exit(main())

"""Every analysis target of issues 19 and 20 against its anchor, ratios measured in one run.

Sections (``--only`` picks some, comma-separated; default: all four):

``sensitivity`` (issue 19), measured here:

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

``gradients`` (issue 19) and ``fit`` (issue 20): ``gradients_fit.py`` parts
(a) and (b), run from here: gradients of the 1,024-point Kuramoto sweep at
most 1.2x a hand-written ``jit(vmap(jacfwd))``; 1,024 starts x 500 optax steps
at most 1.1x a hand-written ``jit(vmap(scan(optax)))`` (warm, median of
``--repeats``).

``refine`` (issue 20): ``refine.py``, run from here: python-adaptive's
``Learner2D`` on its ring function, n = 4096; RMS at most 1.1x
``runner.simple``'s and 1.0x ``ask(256)``'s, wall time at most 0.1x
``runner.simple``'s.

The anchors SALib and python-adaptive are not dependencies of labeled_spaces.
Where one is missing, its section says so and how to install it, and its
targets are reported as NOT MEASURED, which is not a pass. Exit status: 0 when
every target measured passes and none is missing, 1 when one fails, 2 when
none fails but one could not be measured. ``--quick`` runs tiny sizes whose
verdicts mean nothing and are not enforced.

Usage::

    pip install SALib adaptive==1.5.2   # the anchors; not dependencies of labeled_spaces
    python benchmarks/analysis.py                        # all four sections
    python benchmarks/analysis.py --only gradients,fit   # some of them
    python benchmarks/analysis.py --quick                # smoke run

The separate scripts ``gradients_fit.py`` and ``refine.py`` still run their
part alone.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import gradients_fit
import jax
import jax.numpy as jnp
import numpy as np
import refine

from labeled_spaces import UniformAxis, sensitivity
from labeled_spaces.examples import kuramoto, make_state

SECTIONS = ("sensitivity", "gradients", "fit", "refine")
TARGET_TIME = 1.1
TARGET_ERROR = 0.005
BOUNDS = {"coupling": (0.0, 4.0), "noise": (0.0, 0.5), "spread": (0.5, 2.0)}
ISHIGAMI_S1 = np.array([0.3139, 0.4424, 0.0])
ISHIGAMI_ST = np.array([0.5576, 0.4424, 0.2437])
SALIB_MISSING = ("SALib is not installed (the timing anchor; not a dependency of "
                 "labeled_spaces): pip install SALib==1.6.0")


@dataclass
class Target:
    """One target: what was measured against what limit, and the verdict."""

    section: str
    name: str
    value: float | None  # None: not measured
    limit: float
    unit: str = "x"  # "x": a ratio; "+": a difference

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "NOT MEASURED"
        return "PASS" if self.value <= self.limit else "FAIL"

    def row(self, enforced: bool = True) -> str:
        measured = "—" if self.value is None else (
            f"{self.value:.3f}x" if self.unit == "x" else f"{self.value:+.4f}")
        limit = f"<= {self.limit}x" if self.unit == "x" else f"<= +{self.limit}"
        verdict = self.verdict + ("" if enforced or self.value is None else " (not enforced)")
        return f"| {self.section} | {self.name} | {measured} | {limit} | {verdict} |"


def salib_version() -> str | None:
    """SALib's version, or None when it is not installed."""
    try:
        import SALib  # noqa: F401
    except ImportError:
        return None
    return importlib.metadata.version("SALib")


def network(nodes: int, steps: int) -> tuple[Callable, dict]:
    """The Kuramoto model of the three factors, and its state with their axes."""
    def model(s):
        state = {"coupling": s["coupling"], "noise": s["noise"], "weights": s["weights"],
                 "omega": s["spread"] * s["omega"]}
        return kuramoto(state, n_steps=steps, n_record=max(1, steps // 10))["order"]

    fixed = make_state(n_nodes=nodes)
    state = {"weights": fixed["weights"], "omega": fixed["omega"],
             **{name: UniformAxis(lo, hi, 2) for name, (lo, hi) in BOUNDS.items()}}
    return model, state


def salib_indices(model: Callable, state: dict, n: int) -> Callable[[], np.ndarray]:
    """SALib's Sobol indices of ``model``, its points run by one ``jit(vmap(model))`` call."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    def lane(fixed, x):
        return model({**fixed, "coupling": x[0], "noise": x[1], "spread": x[2]})

    compiled = jax.jit(jax.vmap(lane, in_axes=(None, 0)))
    problem = {"num_vars": 3, "names": list(BOUNDS),
               "bounds": [list(b) for b in BOUNDS.values()]}
    fixed = {"weights": state["weights"], "omega": state["omega"]}

    def run() -> np.ndarray:
        x = sample.sample(problem, n, calc_second_order=False, seed=0)
        y = np.asarray(compiled(fixed, jnp.asarray(x, dtype=jnp.float32)))
        result = analyze.analyze(problem, y.astype(np.float64), calc_second_order=False,
                                 num_resamples=200, conf_level=0.95)
        return np.asarray(result["S1"])

    return run


def sensitivity_time(args: argparse.Namespace) -> Target:
    """Ours against SALib + jit(vmap(model)) on the Kuramoto network."""
    target = Target("sensitivity", f"time vs SALib + jit(vmap), n = {args.n}", None,
                    TARGET_TIME)
    if salib_version() is None:
        print(f"time: NOT MEASURED. {SALIB_MISSING}")
        return target
    model, state = network(args.nodes, args.steps)

    def ours() -> np.ndarray:
        return sensitivity(model, state, n=args.n, n_resamples=200, progress=False)[
            "S1"].values

    salib = salib_indices(model, state, args.n)
    ours_s1, salib_s1 = ours(), salib()  # warm-up: compilation excluded
    times: dict[str, list[float]] = {"ours": [], "SALib": []}
    for _ in range(args.repeats):
        for name, fn in (("ours", ours), ("SALib", salib)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    mine, theirs = (statistics.median(times[k]) for k in ("ours", "SALib"))
    best = min(times["ours"]) / min(times["SALib"])  # the least disturbed runs
    print(f"time: Kuramoto network ({args.nodes} nodes, {args.steps} steps), n = {args.n}, "
          f"3 factors, {args.n * 5:,} evaluations, 200 resamples; median of {args.repeats}")
    print("| implementation | time | ratio |")
    print("|---|---|---|")
    print(f"| SALib {salib_version()} + jit(vmap(model)) | {theirs:.3f} s | 1.00x |")
    print(f"| labeled_spaces.sensitivity | {mine:.3f} s | {mine / theirs:.2f}x (fastest "
          f"runs: {best:.2f}x) |")
    print(f"S1 ours {np.round(ours_s1, 3).tolist()}, SALib {np.round(salib_s1, 3).tolist()}")
    target.value = mine / theirs
    return target


def ishigami_jax(s, a=7.0, b=0.1):
    return jnp.sin(s["x1"]) + a * jnp.sin(s["x2"]) ** 2 + b * s["x3"] ** 4 * jnp.sin(s["x1"])


def ishigami_np(x, a=7.0, b=0.1):
    return np.sin(x[0]) + a * np.sin(x[1]) ** 2 + b * x[2] ** 4 * np.sin(x[0])


def sensitivity_accuracy(args: argparse.Namespace) -> Target:
    """Mean |error| of S1 and ST on Ishigami, ours against scipy.stats.sobol_indices."""
    from scipy.stats import sobol_indices, uniform

    n = args.ishigami_n
    state = {f"x{i}": UniformAxis(-np.pi, np.pi, 2) for i in (1, 2, 3)}
    ours, scipy = [], []
    for seed in range(args.seeds):
        ind = sensitivity(ishigami_jax, state, n=n, key=jax.random.key(seed), progress=False)
        ours.append(np.mean(np.abs(np.concatenate([ind["S1"].values - ISHIGAMI_S1,
                                                   ind["ST"].values - ISHIGAMI_ST]))))
        ref = sobol_indices(func=ishigami_np, n=n, rng=np.random.default_rng(seed),
                            dists=[uniform(loc=-np.pi, scale=2 * np.pi)] * 3)
        scipy.append(np.mean(np.abs(np.concatenate([ref.first_order - ISHIGAMI_S1,
                                                    ref.total_order - ISHIGAMI_ST]))))
    mine, theirs = float(np.mean(ours)), float(np.mean(scipy))
    print(f"\naccuracy: Ishigami, n = {n}, mean |error| of S1 and ST over {args.seeds} seeds")
    print("| implementation | mean abs error |")
    print("|---|---|")
    print(f"| scipy.stats.sobol_indices | {theirs:.4f} |")
    print(f"| labeled_spaces.sensitivity | {mine:.4f} (scipy {mine - theirs:+.4f}) |")
    return Target("sensitivity", f"Ishigami error - scipy's, n = {n}", mine - theirs,
                  TARGET_ERROR, unit="+")


def gradients_section(args: argparse.Namespace) -> list[Target]:
    times = (gradients_fit.gradients_race(side=8, n_steps=200, n_nodes=16, reps=2)
             if args.quick else
             gradients_fit.gradients_race(side=32, n_steps=2000, n_nodes=68,
                                          reps=args.repeats))
    gradients_fit.report("gradients" + ("" if args.quick else ", Kuramoto 1,024 points"),
                         times, gradients_fit.TARGET_GRADIENTS, not args.quick)
    return [Target("gradients", "warm time vs jit(vmap(jacfwd))",
                   times["ours"] / times["hand"], gradients_fit.TARGET_GRADIENTS)]


def fit_section(args: argparse.Namespace) -> list[Target]:
    times = (gradients_fit.fit_race(side=8, steps=50, reps=2) if args.quick else
             gradients_fit.fit_race(side=32, steps=500, reps=args.repeats))
    gradients_fit.report("fit" + ("" if args.quick else ", 1,024 starts x 500 steps"),
                         times, gradients_fit.TARGET_FIT, not args.quick)
    return [Target("fit", "warm time vs jit(vmap(scan(optax)))",
                   times["ours"] / times["hand"], gradients_fit.TARGET_FIT)]


def refine_section(args: argparse.Namespace) -> list[Target]:
    n, batch, side, repeats = (512, 64, 8, 1) if args.quick else (4096, 256, 16, 3)
    names = [("RMS ours / runner.simple", 1.1), (f"RMS ours / ask({batch})", 1.0),
             ("wall ours / runner.simple", 0.1)]
    if refine.adaptive_version() is None:
        print(f"NOT MEASURED. {refine.MISSING}")
        return [Target("refine", name, None, limit) for name, limit in names]
    rows, targets = refine.measure(n, batch, side, repeats)
    refine.show(n, rows, targets)
    return [Target("refine", name, ratio, limit) for name, ratio, limit in targets]


def sensitivity_section(args: argparse.Namespace) -> list[Target]:
    return [sensitivity_time(args), sensitivity_accuracy(args)]


RUNS = {"sensitivity": sensitivity_section, "gradients": gradients_section,
        "fit": fit_section, "refine": refine_section}


def sections(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"--only must be a comma-separated list of {', '.join(SECTIONS)}, got {text!r}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=sections, default=list(SECTIONS),
                        help=f"comma-separated sections among {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, verdicts printed but not enforced")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per contender (sensitivity, gradients, fit)")
    parser.add_argument("--n", type=int, default=1024, help="sensitivity: base samples")
    parser.add_argument("--nodes", type=int, default=32, help="sensitivity: network nodes")
    parser.add_argument("--steps", type=int, default=200, help="sensitivity: Euler steps")
    parser.add_argument("--seeds", type=int, default=10, help="sensitivity: Ishigami seeds")
    parser.add_argument("--ishigami-n", type=int, default=4096)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.nodes, args.steps, args.seeds, args.ishigami_n = 256, 8, 50, 2, 1024
        args.repeats = 2
    started = time.perf_counter()
    print(f"{datetime.date.today()}, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores; jax {jax.__version__} ({jax.devices()[0].platform}), "
          f"SALib {salib_version() or 'missing'}, adaptive "
          f"{refine.adaptive_version() or 'missing'}")
    targets: list[Target] = []
    for section in args.only:
        print(f"\n## {section}\n")
        targets += RUNS[section](args)
    print(f"\n## summary ({time.perf_counter() - started:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f} at the end)" + (" — quick: verdicts not enforced"
                                                     if args.quick else ""))
    print("\n| section | target | measured | limit | verdict |")
    print("|---|---|---|---|---|")
    for target in targets:
        print(target.row(enforced=not args.quick))
    if args.quick:
        return 0
    verdicts = {t.verdict for t in targets}
    return 1 if "FAIL" in verdicts else 2 if "NOT MEASURED" in verdicts else 0


if __name__ == "__main__":
    sys.exit(main())

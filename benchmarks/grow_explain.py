"""Growing a store, and the cost preview ``explain()``: measured against what they claim.

Three measurements, each in a fresh child process (the parent never imports
JAX), with PASS/FAIL against the targets of issue 18 at the end:

(a) growing a store along one dimension, 11 -> 21 labels (the 11-label store
    made untimed, then the run of the 21-label space into it, timed), against a
    fresh run of the 21-label space into a new store; both warm (compiled by an
    earlier run), interleaved, medians. Target: at most 0.6x, and the grown
    results bit-identical to a fresh run with the same blocks.
(b) ``explain()``'s memory of the compiled block (XLA's memory analysis:
    arguments + outputs + temporaries) against the measured peak increase of
    the process's resident memory while ``run()`` computes that block (peak
    from ``VmHWM`` after resetting it through ``/proc/self/clear_refs``;
    ``explain()`` compiled the block, so the run compiles nothing). A model that
    keeps its whole trajectory, vectorised whole (``n_vmap`` = the block's
    lanes: temporaries of ~100 MB per block). Target:
    the ratio within [0.5, 2].
(c) ``explain(time=True)``'s estimate (one block timed, times the blocks to
    run) against the wall time of ``run()`` (warm), for ``ParallelExecution``
    over 8 blocks and ``SequentialExecution``. Target: within [0.5, 2].

Usage::

    python benchmarks/grow_explain.py            # full run (about two minutes)
    python benchmarks/grow_explain.py --quick    # smoke sizes, verdicts not enforced
    python benchmarks/grow_explain.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

RESULT_MARK = "@@RESULT@@ "
ROOT = Path(__file__).resolve().parents[1]

TARGET_GROW = 0.6
TARGET_RATIO = (0.5, 2.0)

FULL = {"nodes": 64, "steps": 200, "other": 64, "reps": 3, "traj": (1024, 100, 250)}
QUICK = {"nodes": 16, "steps": 50, "other": 8, "reps": 1, "traj": (64, 20, 50)}

COMMON = '''
import json, os, shutil, statistics, sys, tempfile, time
import jax, jax.numpy as jnp, numpy as np
import labeled_spaces as ls
SIZES = json.loads(sys.argv[1])
MARK = sys.argv[2]

def network(state, n_steps):
    """A ring of phase oscillators (Euler steps), averaged over time: compute-bound."""
    n = SIZES["nodes"]
    weights = jnp.roll(jnp.eye(n), 1, axis=1) + jnp.roll(jnp.eye(n), -1, axis=1)
    omega = jnp.linspace(0.9, 1.1, n) * (1.0 + state["noise"])

    def step(theta, _):
        pull = (weights * jnp.sin(theta[None, :] - theta[:, None])).sum(axis=1)
        theta = theta + 0.01 * (omega + state["coupling"] * pull)
        return theta, jnp.abs(jnp.exp(1j * theta).mean())

    _, order = jax.lax.scan(step, jnp.zeros(n), None, length=n_steps)
    return order.mean()

def report(**values):
    print(MARK + json.dumps(values), flush=True)
'''

GROW = '''
def grid(n):  # coupling in steps of 0.1: the 11 stored labels are the first of the 21
    return ls.Space({"coupling": ls.GridAxis(0.0, (n - 1) / 10, n),
                     "noise": ls.GridAxis(0.0, 0.1, SIZES["other"])}, mode="product")

steps = SIZES["steps"]
small, big = grid(11), grid(21)
folder = tempfile.mkdtemp()

def run(space, path):
    ls.ParallelExecution(network, space, progress=False, store=path, n_steps=steps).run()

def fresh(k):
    path = os.path.join(folder, f"fresh{k}.zarr")
    start = time.perf_counter(); run(big, path); took = time.perf_counter() - start
    shutil.rmtree(path)
    return took

def grow(k):
    path = os.path.join(folder, f"grow{k}.zarr")
    run(small, path)  # untimed: the stored sweep
    start = time.perf_counter(); run(big, path); took = time.perf_counter() - start
    grown = ls.open_results(path).to_xarray()["result"].values
    shutil.rmtree(path)
    return took, grown

fresh(-1); grow(-1)  # compile both block shapes
fresh_times, grow_times = [], []
for k in range(SIZES["reps"]):
    fresh_times.append(fresh(k))
    took, grown = grow(k)
    grow_times.append(took)
# the same blocks as the grown store's, (11, other): bit for bit
want = ls.ParallelExecution(network, big, progress=False, n_steps=steps,
                            chunk_size=11 * SIZES["other"]).run()
report(fresh=statistics.median(fresh_times), grow=statistics.median(grow_times),
       identical=bool(np.array_equal(grown, want.to_xarray()["result"].values)))
'''

MEMORY = '''
lanes, steps, points = SIZES["traj"]

def keeps_trajectory(state):
    x = jnp.linspace(0.0, 1.0, points) * state["k"]
    _, path = jax.lax.scan(lambda c, _: (jnp.sin(c) * state["g"] + 0.01 * c, c), x, None,
                           length=steps)
    return path.mean()  # the whole trajectory is a temporary

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

space = ls.Space({"k": ls.GridAxis(0.0, 1.0, lanes // 8), "g": ls.GridAxis(0.5, 1.0, 8)},
                 mode="product")
# the whole block at once (the default would batch it to 8 MiB of scratch): ~100 MB
executor = ls.ParallelExecution(keeps_trajectory, space, progress=False, n_vmap=lanes)
plan = executor.explain()  # compiles the block the run uses
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
base = status("VmRSS")
executor.run()
increase = status("VmHWM") - base
report(predicted=plan.peak_bytes, temporaries=plan.temp_bytes, measured=increase,
       blocks=plan.blocks)
'''

TIME = '''
steps = SIZES["steps"]
space = ls.Space({"coupling": ls.GridAxis(0.0, 2.0, 16),
                  "noise": ls.GridAxis(0.0, 0.1, SIZES["other"])}, mode="product")
out = {}
for name, executor in (
        ("parallel", ls.ParallelExecution(network, space, progress=False, n_steps=steps,
                                          chunk_size=2 * SIZES["other"])),
        ("sequential", ls.SequentialExecution(network, space[:64], progress=False,
                                              n_steps=steps))):
    plan = executor.explain(time=True)  # compiles, then times one block
    start = time.perf_counter()
    executor.run()
    out[name] = {"estimate": plan.seconds, "actual": time.perf_counter() - start,
                 "blocks": plan.blocks}
report(**out)
'''


def child(code: str, sizes: dict) -> dict:
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"),
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get(
                   "PYTHONPATH")])]))
    script = textwrap.dedent(COMMON) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script, json.dumps(sizes), RESULT_MARK],
                          capture_output=True, text=True, env=env, timeout=1800)
    lines = [x for x in done.stdout.splitlines() if x.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"a measurement failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len(RESULT_MARK):])


def within(ratio: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= ratio <= bounds[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes, no verdicts")
    parser.add_argument("--json", help="write the measurements to this file")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    grow = child(GROW, sizes)
    memory = child(MEMORY, sizes)
    timed = child(TIME, sizes)
    rows = []
    ratio = grow["grow"] / grow["fresh"]
    rows.append(("(a) grow 11 -> 21 labels / fresh 21", f"{grow['grow']:.3f} s / "
                 f"{grow['fresh']:.3f} s", ratio, ratio <= TARGET_GROW and grow["identical"],
                 f"<= {TARGET_GROW} and bit-identical ({grow['identical']})"))
    ratio = memory["predicted"] / max(memory["measured"], 1)
    rows.append(("(b) explain() peak / measured RSS increase",
                 f"{memory['predicted'] / 1e6:.1f} MB / {memory['measured'] / 1e6:.1f} MB",
                 ratio, within(ratio, TARGET_RATIO), "within 2x"))
    for name in ("parallel", "sequential"):
        t = timed[name]
        ratio = t["estimate"] / t["actual"]
        rows.append((f"(c) explain(time=True) / run(), {name}",
                     f"{t['estimate']:.3f} s / {t['actual']:.3f} s", ratio,
                     within(ratio, TARGET_RATIO), "within 2x"))
    print(f"{'measurement':<46} {'values':<26} {'ratio':>7}  verdict")
    failed = False
    for name, values, ratio, ok, target in rows:
        failed |= not ok
        print(f"{name:<46} {values:<26} {ratio:7.3f}  {'PASS' if ok else 'FAIL'} ({target})")
    if args.json:
        Path(args.json).write_text(json.dumps({"grow": grow, "memory": memory,
                                               "time": timed}, indent=1))
    return 1 if failed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())

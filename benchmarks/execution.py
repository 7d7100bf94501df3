"""Executor benchmark: labeled_spaces vs hand-written JAX (the ceiling) vs tvboptim 0.4.0.

Five measurements, each run side by side in one invocation, with ratios and
PASS/FAIL against the targets printed at the end:

(a) Kuramoto network (68 nodes, 2,000 Euler-Maruyama steps in ``lax.scan``,
    scalar time-averaged order parameter) over a 32 x 32 product space of
    ``(K, sigma)``: labeled_spaces ``ParallelExecution`` at its defaults vs
    ``jax.jit(jax.vmap(f))`` over hand-built meshgrid arrays (the ceiling) vs
    tvboptim ``ParallelExecution`` at its default ``n_vmap=1``. Cold (first run
    in a fresh process, compilation included; one subprocess per contender and
    repetition) and warm (repeat runs in one process, contenders interleaved).
    Target: ours <= 1.05 x ceiling (warm is the headline). For diagnosis the
    warm part also times the ceiling wrapped in one more ``vmap`` over an axis
    of size 1 (the structure ParallelExecution's compiled block had before
    it was flattened; it shows what that layout costs XLA:CPU).
(b) A trivial model ``s["a"] * s["b"] + 1.0`` on product spaces of 1e6 and
    1e7 points: time and peak RSS growth (a background thread samples RSS every
    ~0.5 ms, relative to RSS just before the run) of ours at defaults vs the
    ceiling (``jnp.meshgrid`` + ``jit(vmap)`` + ``np.asarray``), each in a fresh
    subprocess per contender and N, after a warm-up run there. Targets: ours
    <= 1.5 x ceiling time, ours' peak growth <= 1.1 x the raw result (N * 4 B).
    Context: the meshgrid built inside the same ``jit`` (XLA fuses it away).
(c) ``SequentialExecution`` (default ``jit=True``) on the Kuramoto model over
    8 x 8 = 64 combinations vs the ceiling (``jit(vmap)`` over the same 64),
    a hand-written per-combination ``jax.jit(f)`` loop (context) and tvboptim's
    ``SequentialExecution`` (which does not jit, so it is timed on 4 x 4 = 16
    combinations and scaled per combination to 64). Target: ours <= 2 x ceiling.
(d) Per-run overhead: a 100 x 100 product space and a model returning a
    100-point vector (``a * sin(t * b)``), ``ParallelExecution(...).run()
    .to_xarray()`` vs a hand-written ``jnp.meshgrid`` + ``jax.jit(jax.vmap(f))``
    + ``np.asarray`` + the same ``xarray.Dataset``. Warm (one process,
    interleaved) and cold (a fresh process per run, compilation included,
    imports not). Targets: warm <= 1.2 x, cold <= 1.15 x the hand-written run.
(e) ``SequentialExecution`` on the space and model of (d) vs a hand-written
    loop of ``jax.jit(f)`` per combination that copies each output to the host
    while the next one runs. Target: ours <= 1.1 x the loop.

The parent process never imports JAX; every measurement runs in a child
process (``--child``), so cold numbers are really cold and the children do not
compete with an idle JAX runtime in the parent. In (b) each contender and N
gets two children: one with glibc's defaults for the time (and an indicative
memory number), one with ``MALLOC_MMAP_THRESHOLD_=131072`` for the memory
target, so that freed large blocks go back to the OS and RSS growth reflects
live memory rather than what the warm-up run left in (or took from) the heap.

Usage::

    python benchmarks/execution.py            # full run (6-9 minutes), exit 1 if a target fails
    python benchmarks/execution.py --quick    # smoke run (< 60 s), verdicts not enforced
    python benchmarks/execution.py --json out.json   # also save every number
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

RESULT_MARK = "@@RESULT@@ "

# targets
TARGET_A = 1.05  # ParallelExecution / ceiling (Kuramoto)
TARGET_B_TIME = 1.5  # ParallelExecution / ceiling (trivial model)
TARGET_B_MEM = 1.1  # peak RSS growth / (N * 4 bytes)
TARGET_C = 2.0  # SequentialExecution / ceiling (Kuramoto, 64 combinations)
TARGET_D_WARM = 1.2  # ParallelExecution().run().to_xarray() / hand-written, warm
TARGET_D_COLD = 1.15  # the same, first run in a fresh process
TARGET_E = 1.1  # SequentialExecution / hand-written loop of jax.jit(f)

# Kuramoto parameter ranges
K_RANGE = (0.0, 4.0)
SIGMA_RANGE = (0.0, 1.0)
DT = 0.01


@dataclass
class Config:
    """Sizes and repetitions of one benchmark run."""

    n_nodes: int = 68
    n_steps: int = 2000
    grid: int = 32  # (a): grid x grid combinations
    seq_grid: int = 8  # (c): seq_grid x seq_grid combinations
    tvb_seq_grid: int = 4  # (c): tvboptim's SequentialExecution on this x this
    trivial_shapes: list[list[int]] = field(
        default_factory=lambda: [[1000, 1000], [10000, 1000]])
    cold_reps: int = 3  # fresh processes per contender for cold numbers
    cold_a: list[str] = field(default_factory=lambda: ["ours", "ceiling", "tvboptim"])
    warm_reps: int = 5  # interleaved rounds in one process for warm numbers
    b_contenders: list[str] = field(default_factory=lambda: ["ours", "ceiling", "fused"])
    b_reps: int = 5  # (b): fresh processes per contender and N for the time
    time_reps: int = 15  # (b): timed repeats inside each of those processes
    mem_reps: int = 3  # (b): fresh processes per contender and N for the strict memory
    strict_mem: bool = True  # (b) memory from separate MALLOC_MMAP_THRESHOLD_ processes
    tvb_seq_reps: int = 1  # tvboptim SequentialExecution repeats in (c), after its first run
    cold_c: bool = True  # cold (fresh process) numbers for (c)
    merge_warm: bool = False  # warm (a) and (c) in one process (quick mode)
    diagnose: bool = True  # (a) warm also times jit(vmap(vmap(f))) over a (1, N) grid
    overhead_grid: int = 100  # (d), (e): overhead_grid x overhead_grid combinations
    overhead_points: int = 100  # (d), (e): length of the model's output vector
    d_warm_reps: int = 30  # (d): interleaved warm rounds
    d_cold_reps: int = 5  # (d): fresh processes per contender
    e_warm_reps: int = 7  # (e): interleaved warm rounds

    @classmethod
    def quick(cls) -> Config:
        return cls(n_steps=100, grid=8, seq_grid=4, tvb_seq_grid=1,
                   trivial_shapes=[[1000, 1000]], cold_reps=1, cold_a=[],
                   warm_reps=3, b_contenders=["ours", "ceiling"], b_reps=1, time_reps=3, mem_reps=0,
                   strict_mem=False, tvb_seq_reps=0, cold_c=False, merge_warm=True,
                   diagnose=False, overhead_grid=30, d_warm_reps=5, d_cold_reps=1,
                   e_warm_reps=2)


# ===========================================================================
# child side (imports JAX)
# ===========================================================================


def _kuramoto(n_nodes: int, n_steps: int) -> Callable[[dict], Any]:
    """The Kuramoto model ``state -> time-averaged order parameter`` (float32 scalar).

    Fixed, deterministic network: a symmetric non-negative weight matrix with
    zero diagonal (numpy seed 0, normalised to mean row sum 1), natural
    frequencies, initial phases and the noise increments (seed 1), all closed
    over as constants. ``state`` holds ``K`` (coupling) and ``sigma`` (noise).
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    w = rng.uniform(0.0, 1.0, (n_nodes, n_nodes))
    w = (w + w.T) / 2
    np.fill_diagonal(w, 0.0)
    w /= w.sum(axis=1).mean()
    rng = np.random.default_rng(1)
    omega = rng.normal(1.0, 1.0, n_nodes)
    theta0 = rng.uniform(0.0, 2 * np.pi, n_nodes)
    noise = rng.standard_normal((n_steps, n_nodes))
    w, omega, theta0, noise = (np.asarray(x, dtype=np.float32) for x in (w, omega, theta0, noise))
    sqrt_dt = np.float32(np.sqrt(DT))

    def model(state: dict) -> jax.Array:
        k, sigma = state["K"], state["sigma"]

        def step(theta: jax.Array, xi: jax.Array) -> tuple[jax.Array, jax.Array]:
            s, c = jnp.sin(theta), jnp.cos(theta)
            # sum_j W_ij sin(theta_j - theta_i), in O(n^2) with two mat-vecs
            coupling = c * (w @ s) - s * (w @ c)
            r = jnp.sqrt(jnp.mean(c) ** 2 + jnp.mean(s) ** 2)
            theta = theta + DT * (omega + k * coupling) + sigma * sqrt_dt * xi
            return theta, r

        _, r = jax.lax.scan(step, jnp.asarray(theta0), noise)
        return jnp.mean(r)

    return model


def _trivial(state: dict) -> Any:
    return state["a"] * state["b"] + 1.0


class _RSSSampler:
    """Peak RSS growth over a baseline, sampled by a background thread."""

    def __init__(self, interval: float = 0.0005) -> None:
        import threading

        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.baseline = 0
        self.peak = 0
        self.samples = 0

    def _rss(self) -> int:
        return self._proc.memory_info().rss

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self.samples += 1
            time.sleep(self._interval)

    def __enter__(self) -> _RSSSampler:
        self.baseline = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, self._rss())  # still holding the result here
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


class _PlanLog:
    """Collects the labeled_spaces planning messages (block sizes)."""

    def __init__(self) -> None:
        import logging

        self.messages: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: self.messages.append(record.getMessage())  # type: ignore
        logger = logging.getLogger("labeled_spaces")
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False


def _grid_values(low: float, high: float, n: int) -> Any:
    import jax.numpy as jnp

    return jnp.linspace(low, high, n, dtype=jnp.float32)


def _kuramoto_contenders(cfg: Config, grid: int,
                         names: Sequence[str]) -> dict[str, Callable[[], Any]]:
    """``name -> run()`` for (a); each run returns the results as a numpy (grid, grid) array."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    model = _kuramoto(cfg.n_nodes, cfg.n_steps)
    contenders: dict[str, Callable[[], Any]] = {}

    if "ours" in names:  # a child without "ours" does not pay for importing labeled_spaces
        import labeled_spaces as ls

        space = ls.Space({"K": ls.GridAxis(*K_RANGE, grid),
                          "sigma": ls.GridAxis(*SIGMA_RANGE, grid)}, mode="product")

        def ours() -> Any:
            return ls.ParallelExecution(model, space, progress=False).run().arrays[0]

        contenders["ours"] = ours

    ceiling_fn = jax.jit(jax.vmap(lambda k, s: model({"K": k, "sigma": s})))

    def ceiling() -> Any:
        k, s = jnp.meshgrid(_grid_values(*K_RANGE, grid), _grid_values(*SIGMA_RANGE, grid),
                            indexing="ij")
        return np.asarray(ceiling_fn(k.ravel(), s.ravel())).reshape(grid, grid)

    contenders["ceiling"] = ceiling

    if "nested" in names:  # diagnosis: the ceiling with an extra vmap over an axis of size 1
        nested_fn = jax.jit(jax.vmap(jax.vmap(lambda k, s: model({"K": k, "sigma": s}))))

        def nested() -> Any:
            k, s = jnp.meshgrid(_grid_values(*K_RANGE, grid),
                                _grid_values(*SIGMA_RANGE, grid), indexing="ij")
            return np.asarray(nested_fn(k.reshape(1, -1), s.reshape(1, -1))).reshape(grid, grid)

        contenders["nested"] = nested

    if "tvboptim" not in names:
        return contenders
    # imported here, outside the timed region (the import alone takes seconds)
    from tvboptim.execution import ParallelExecution as TvbParallel
    from tvboptim.types.spaces import GridAxis as TvbGrid
    from tvboptim.types.spaces import Space as TvbSpace

    tvb_holder: dict[str, Any] = {}

    def tvboptim() -> Any:
        # one executor per process: its run() reuses the compiled pmap (a new executor
        # would compile again), so warm numbers are its best case
        if "executor" not in tvb_holder:
            tvb_space = TvbSpace({"K": TvbGrid(*K_RANGE, grid),
                                  "sigma": TvbGrid(*SIGMA_RANGE, grid)}, mode="product")
            tvb_holder["executor"] = TvbParallel(model, tvb_space)
        res = tvb_holder["executor"].run()
        return np.asarray(res.results)[0, : grid * grid].reshape(grid, grid)

    contenders["tvboptim"] = tvboptim
    return contenders


def _sequential_contenders(cfg: Config, names: Sequence[str]) -> dict[str, Callable[[], Any]]:
    """``name -> run()`` for (c)."""
    import contextlib
    import io

    import jax
    import jax.numpy as jnp
    import numpy as np

    model = _kuramoto(cfg.n_nodes, cfg.n_steps)
    grid = cfg.seq_grid
    vmapped = jax.jit(jax.vmap(lambda k, s: model({"K": k, "sigma": s})))
    single = jax.jit(lambda k, s: model({"K": k, "sigma": s}))
    contenders: dict[str, Callable[[], Any]] = {}

    if "ours" in names:
        import labeled_spaces as ls

        space = ls.Space({"K": ls.GridAxis(*K_RANGE, grid),
                          "sigma": ls.GridAxis(*SIGMA_RANGE, grid)}, mode="product")

        def ours() -> Any:
            return ls.SequentialExecution(model, space, progress=False).run().arrays[0]

        contenders["ours"] = ours

    def ceiling() -> Any:
        k, s = jnp.meshgrid(_grid_values(*K_RANGE, grid), _grid_values(*SIGMA_RANGE, grid),
                            indexing="ij")
        return np.asarray(vmapped(k.ravel(), s.ravel())).reshape(grid, grid)

    def jit_loop() -> Any:
        ks = np.asarray(_grid_values(*K_RANGE, grid))
        ss = np.asarray(_grid_values(*SIGMA_RANGE, grid))
        outs = [single(k, s) for k in ks for s in ss]
        return np.asarray(jnp.stack(outs)).reshape(grid, grid)

    contenders.update(ceiling=ceiling, jit_loop=jit_loop)
    if "tvboptim" not in names:
        return contenders
    # imported here, outside the timed region (the import alone takes seconds)
    from tvboptim.execution import SequentialExecution as TvbSequential
    from tvboptim.types.spaces import GridAxis as TvbGrid
    from tvboptim.types.spaces import Space as TvbSpace

    def tvboptim() -> Any:
        n = cfg.tvb_seq_grid
        tvb_space = TvbSpace({"K": TvbGrid(*K_RANGE, n), "sigma": TvbGrid(*SIGMA_RANGE, n)},
                             mode="product")
        with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar cannot be turned off
            res = TvbSequential(model, tvb_space).run()
        return np.asarray([np.asarray(r) for r in res]).reshape(n, n)

    contenders["tvboptim"] = tvboptim
    return contenders


def _overhead_model(t: Any) -> Callable[[dict], Any]:
    import jax.numpy as jnp

    def model(state: dict, t: Any = t) -> Any:
        return state["a"] * jnp.sin(t * state["b"])

    return model


def _overhead_contenders(cfg: Config, names: Sequence[str]) -> dict[str, Callable[[], Any]]:
    """``name -> run()`` for (d): each returns the labeled ``xarray.Dataset``."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import xarray as xr

    n, points = cfg.overhead_grid, cfg.overhead_points
    t = np.linspace(0.0, 1.0, points, dtype=np.float32)
    contenders: dict[str, Callable[[], Any]] = {}
    if "ours" in names:
        import labeled_spaces as ls

        space = ls.Space({"a": ls.GridAxis(0.0, 1.0, n), "b": ls.GridAxis(0.0, 10.0, n)},
                         mode="product")
        model = _overhead_model(t)

        def ours() -> Any:
            return ls.ParallelExecution(model, space, progress=False).run().to_xarray()

        contenders["ours"] = ours
    vmapped = jax.jit(jax.vmap(lambda a, b, t: a * jnp.sin(t * b), in_axes=(0, 0, None)))
    labels_a, labels_b = np.linspace(0.0, 1.0, n), np.linspace(0.0, 10.0, n)

    def ceiling() -> Any:
        a, b = jnp.meshgrid(_grid_values(0.0, 1.0, n), _grid_values(0.0, 10.0, n),
                            indexing="ij")
        out = np.asarray(vmapped(a.ravel(), b.ravel(), t)).reshape(n, n, points)
        return xr.Dataset({"result": (("a", "b", "result_dim_0"), out)},
                          coords={"a": labels_a, "b": labels_b})

    contenders["ceiling"] = ceiling
    return contenders


def _sequential_overhead_contenders(cfg: Config, names: Sequence[str]
                                    ) -> dict[str, Callable[[], Any]]:
    """``name -> run()`` for (e): each returns the (n, n, points) results."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    n, points = cfg.overhead_grid, cfg.overhead_points
    t = np.linspace(0.0, 1.0, points, dtype=np.float32)
    contenders: dict[str, Callable[[], Any]] = {}
    if "ours" in names:
        import labeled_spaces as ls

        space = ls.Space({"a": ls.GridAxis(0.0, 1.0, n), "b": ls.GridAxis(0.0, 10.0, n)},
                         mode="product")
        model = _overhead_model(t)

        def ours() -> Any:
            return ls.SequentialExecution(model, space, progress=False).run().arrays[0]

        contenders["ours"] = ours
    single = jax.jit(lambda a, b, t: a * jnp.sin(t * b))
    t_device = jnp.asarray(t)

    def jit_loop() -> Any:
        a, b = np.meshgrid(np.asarray(_grid_values(0.0, 1.0, n)),
                           np.asarray(_grid_values(0.0, 10.0, n)), indexing="ij")
        a, b = a.ravel(), b.ravel()
        out = np.empty((n * n, points), np.float32)
        pending = None
        for i in range(n * n):  # the next combination runs while the last is copied out
            result = single(a[i], b[i], t_device)
            if pending is not None:
                out[i - 1] = pending
            pending = result
        out[-1] = pending
        return out.reshape(n, n, points)

    contenders["jit_loop"] = jit_loop
    contenders["ceiling"] = jit_loop  # the reference of the result check
    return contenders


def _contenders(cfg: Config, kind: str, names: Sequence[str]) -> dict[str, Callable[[], Any]]:
    part = kind[0]
    if part == "a":
        return _kuramoto_contenders(cfg, cfg.grid, names)
    if part == "c":
        return _sequential_contenders(cfg, names)
    if part == "d":
        return _overhead_contenders(cfg, names)
    return _sequential_overhead_contenders(cfg, names)


def _array(result: Any) -> Any:
    import numpy as np

    if hasattr(result, "data_vars"):  # a Dataset
        return np.asarray(result["result"].values)
    return np.asarray(result)


def _trivial_contender(shape: Sequence[int], name: str) -> Callable[[], Any]:
    """``run()`` of contender ``name`` for (b); it returns a numpy ``shape`` array."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    na, nb = shape
    vmapped = jax.jit(jax.vmap(_trivial))

    if name == "ours":
        import labeled_spaces as ls

        space = ls.Space({"a": ls.GridAxis(0.0, 1.0, na), "b": ls.GridAxis(0.0, 1.0, nb)},
                         mode="product")

        def ours() -> Any:
            return ls.ParallelExecution(_trivial, space, progress=False).run().arrays[0]

        return ours

    def ceiling() -> Any:
        a, b = jnp.meshgrid(_grid_values(0.0, 1.0, na), _grid_values(0.0, 1.0, nb),
                            indexing="ij")
        return np.asarray(vmapped({"a": a.ravel(), "b": b.ravel()})).reshape(na, nb)

    def grid_in_jit(a: jax.Array, b: jax.Array) -> jax.Array:
        a, b = jnp.meshgrid(a, b, indexing="ij")
        return jax.vmap(_trivial)({"a": a.ravel(), "b": b.ravel()})

    fused_fn = jax.jit(grid_in_jit)

    def fused() -> Any:  # context: the meshgrid inside the same jit, fused by XLA
        return np.asarray(fused_fn(_grid_values(0.0, 1.0, na),
                                   _grid_values(0.0, 1.0, nb))).reshape(na, nb)

    return {"ceiling": ceiling, "fused": fused}[name]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _child_task(task: dict) -> dict:
    """Run one measurement task in this process and return its numbers."""
    import gc

    import numpy as np

    cfg = Config(**task["config"])
    kind = task["kind"]
    out: dict[str, Any] = {}

    if kind in ("a_cold", "c_cold", "d_cold"):
        names = [task["contender"]]
        contenders = _contenders(cfg, kind, names)
        seconds, result = _timed(contenders[task["contender"]])
        out.update(seconds=seconds, checksum=float(np.sum(_array(result))))

    elif kind in ("a_warm", "c_warm", "d_warm", "e_warm"):
        names = task["contenders"]
        contenders = _contenders(cfg, kind, names)
        first: dict[str, float] = {}
        results: dict[str, Any] = {}
        for name in names:  # first run in this process (compilation)
            first[name], results[name] = _timed(contenders[name])
        reps = {name: task.get("reps", {}).get(name, cfg.warm_reps) for name in names}
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(max(reps.values())):
            order = names[r % len(names):] + names[: r % len(names)]  # rotate the order
            for name in order:
                if len(times[name]) < reps[name]:
                    times[name].append(_timed(contenders[name])[0])
        results = {name: _array(res) for name, res in results.items()}
        if "ceiling" not in results:
            results["ceiling"] = contenders["ceiling"]()
        ref = np.asarray(results["ceiling"], dtype=np.float64)
        diffs = {name: float(np.max(np.abs(np.asarray(res, dtype=np.float64) - ref)))
                 for name, res in results.items() if np.shape(res) == ref.shape}
        out.update(first=first, times=times, max_abs_diff_vs_ceiling=diffs,
                   order_parameter_range=[float(np.min(ref)), float(np.max(ref))])

    elif kind == "b":
        contender = _trivial_contender(task["shape"], task["contender"])
        contender()  # warm-up: compilation and first touch of everything
        gc.collect()
        with _RSSSampler() as sampler:
            result = contender()
        n = int(np.prod(task["shape"]))
        expected = np.linspace(0.0, 1.0, task["shape"][0], dtype=np.float32)[:, None] * \
            np.linspace(0.0, 1.0, task["shape"][1], dtype=np.float32)[None, :] + 1.0
        ok = result.shape == tuple(task["shape"]) and bool(np.allclose(result, expected))
        del result, expected
        gc.collect()
        times = []
        for _ in range(task["time_reps"]):
            seconds, result = _timed(contender)
            del result
            times.append(seconds)
        out.update(growth=sampler.growth, samples=sampler.samples, times=times,
                   seconds=statistics.median(times) if times else None, correct=ok,
                   result_bytes=n * 4)
    else:
        raise ValueError(f"unknown task kind {kind!r}")
    return out


def _child(tasks: list[dict]) -> list[dict]:
    """Run tasks one after the other in this (fresh) process."""
    import jax

    jax.devices()  # backend initialisation is not part of any measurement
    plan = _PlanLog()
    outs = []
    for task in tasks:
        plan.messages.clear()
        out = _child_task(task)
        out.update(jax=jax.__version__, plan=sorted(set(plan.messages)))
        outs.append(out)
    return outs


# ===========================================================================
# parent side (no JAX)
# ===========================================================================


def _spawn(tasks: list[dict], env_extra: dict[str, str] | None = None,
           timeout: float = 1800) -> list[dict]:
    """Run ``tasks`` in one fresh child process; returns their numbers."""
    env = dict(os.environ)
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", json.dumps(tasks)],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    raise RuntimeError(f"child {[t['kind'] for t in tasks]} failed (rc={proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def _med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def _paired(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Median of the ratios of runs measured next to each other."""
    return _med([x / y for x, y in zip(xs, ys, strict=True)])


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("jax", "jaxlib", "numpy", "labeled_spaces", "tvboptim"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} -")
    return f"Python {sys.version.split()[0]}, " + ", ".join(found)


def _say(msg: str) -> None:
    print(msg, flush=True)


def _warm_task(cfg: Config, part: str) -> dict:
    if part == "a":
        names = ["ours", "ceiling", "tvboptim"] + (["nested"] if cfg.diagnose else [])
        return {"kind": "a_warm", "contenders": names, "config": asdict(cfg)}
    return {"kind": "c_warm", "contenders": ["ours", "ceiling", "jit_loop", "tvboptim"],
            "reps": {"tvboptim": cfg.tvb_seq_reps}, "config": asdict(cfg)}


def _cold(cfg: Config, kind: str, names: list[str]) -> dict[str, list[float]]:
    """Cold seconds: one fresh process per contender and repetition, order rotated."""
    cold: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(cfg.cold_reps if names else 0):
        for name in names[rep % len(names):] + names[: rep % len(names)]:
            res = _spawn([{"kind": kind, "contender": name, "config": asdict(cfg)}])[0]
            cold[name].append(res["seconds"])
            _say(f"  cold rep {rep}: {name:<9} {res['seconds']:8.3f} s  {res['plan']}")
    return cold


def run_a(cfg: Config, warm: dict | None = None) -> dict:
    """(a) Kuramoto, ParallelExecution vs ceiling vs tvboptim, cold and warm."""
    names = ["ours", "ceiling", "tvboptim"] + (["nested"] if cfg.diagnose else [])
    _say(f"\n(a) Kuramoto {cfg.n_nodes} nodes, {cfg.n_steps} steps, {cfg.grid}x{cfg.grid}"
         f" = {cfg.grid**2} combinations  [{_load()}]")
    cold = _cold(cfg, "a_cold", cfg.cold_a)
    if warm is None:
        warm = _spawn([_warm_task(cfg, "a")])[0]
    for name in names:
        _say(f"  warm {name:<9} first {warm['first'][name]:8.3f} s, repeats "
             + " ".join(f"{t:.3f}" for t in warm["times"][name]))
    _say(f"  max |result - ceiling|: {warm['max_abs_diff_vs_ceiling']}; order parameter in "
         f"{warm['order_parameter_range']}")
    _say(f"  plan: {warm['plan']}")
    wt = warm["times"]
    return {
        "jax": warm["jax"],
        "cold": cold,
        "warm": wt,
        "first_in_process": warm["first"],
        "cold_ratio": ({n: _paired(cold[n], cold["ceiling"]) for n in cfg.cold_a}
                       if "ceiling" in cold else {}),
        "warm_ratio": {n: _paired(wt[n], wt["ceiling"]) for n in names},
        "diff": warm["max_abs_diff_vs_ceiling"],
        "plan": warm["plan"],
    }


def run_b(cfg: Config) -> dict:
    """(b) trivial model: time and peak RSS growth, fresh processes per contender and N."""
    names = cfg.b_contenders
    strict = {"MALLOC_MMAP_THRESHOLD_": "131072"}
    out: dict[str, Any] = {}
    for shape in cfg.trivial_shapes:
        n = shape[0] * shape[1]
        _say(f"\n(b) trivial model, {shape[0]}x{shape[1]} = {n:.0e} combinations  [{_load()}]")
        per: dict[str, list[dict]] = {name: [] for name in names}
        strict_growth: dict[str, list[int]] = {name: [] for name in names}
        for rep in range(cfg.b_reps):
            for name in names[rep % len(names):] + names[: rep % len(names)]:
                task = {"kind": "b", "contender": name, "shape": shape,
                        "time_reps": cfg.time_reps, "config": asdict(cfg)}
                res = _spawn([task])[0]
                per[name].append(res)
                line = (f"  rep {rep}: {name:<8} {res['seconds'] * 1e3:8.2f} ms (median of "
                        f"{len(res['times'])}), growth {res['growth'] / n / 4:.3f} x result")
                if cfg.strict_mem and rep < cfg.mem_reps:
                    mem = _spawn([dict(task, time_reps=0)], env_extra=strict)[0]
                    strict_growth[name].append(mem["growth"])
                    line += (f", strict growth {mem['growth'] / 1e6:7.2f} MB = "
                             f"{mem['growth'] / n / 4:.3f} x result ({mem['samples']} samples)")
                _say(line + f", correct={res['correct']}")
        if not cfg.strict_mem:
            strict_growth = {name: [r["growth"] for r in per[name]] for name in names}
        out[str(n)] = {
            "shape": shape,
            "seconds": {name: _med([r["seconds"] for r in per[name]]) for name in names},
            "times": {name: [r["seconds"] for r in per[name]] for name in names},
            "result_bytes": n * 4,
            "time_ratio": {name: _paired([r["seconds"] for r in per[name]],
                                         [r["seconds"] for r in per["ceiling"]])
                           for name in names},
            # strict: MALLOC_MMAP_THRESHOLD_ fixed, freed blocks go back to the OS
            "mem_ratio": {name: _med(strict_growth[name]) / (n * 4) for name in names},
            # glibc defaults: the heap may reuse what the warm-up freed, or keep more
            "mem_ratio_default_malloc": {name: _med([r["growth"] for r in per[name]]) / (n * 4)
                                         for name in names},
            "correct": all(r["correct"] for name in names for r in per[name]),
            "plan": sorted({m for r in per["ours"] for m in r["plan"]}),
        }
        _say(f"  plan: {out[str(n)]['plan']}")
    return out


def run_c(cfg: Config, warm: dict | None = None) -> dict:
    """(c) SequentialExecution vs ceiling, per-combination jit loop, tvboptim."""
    n = cfg.seq_grid**2
    n_tvb = cfg.tvb_seq_grid**2
    scale = n / n_tvb
    _say(f"\n(c) Kuramoto, sequential, {cfg.seq_grid}x{cfg.seq_grid} = {n} combinations "
         f"(tvboptim on {n_tvb}, scaled x{scale:g})  [{_load()}]")
    names = ["ours", "ceiling", "jit_loop"]
    cold = _cold(cfg, "c_cold", names) if cfg.cold_c else None
    if warm is None:
        warm = _spawn([_warm_task(cfg, "c")])[0]
    for name in [*names, "tvboptim"]:
        _say(f"  warm {name:<9} first {warm['first'][name]:8.3f} s, repeats "
             + " ".join(f"{t:.3f}" for t in warm["times"][name]))
    _say(f"  max |result - ceiling|: {warm['max_abs_diff_vs_ceiling']}")
    wt = dict(warm["times"])
    # tvboptim compiles again at every combination: its first run is one more sample
    tvb = [t * scale for t in [warm["first"]["tvboptim"], *wt.pop("tvboptim")]]
    res: dict[str, Any] = {
        "n": n, "n_tvb": n_tvb,
        "warm": {**wt, "tvboptim_scaled": tvb},
        "first_in_process": warm["first"],
        "warm_ratio": {name: _paired(wt[name], wt["ceiling"]) for name in names},
        "diff": warm["max_abs_diff_vs_ceiling"],
        "plan": warm["plan"],
    }
    res["warm_ratio"]["tvboptim_scaled"] = _med(tvb) / _med(wt["ceiling"])
    if cold is not None:
        res["cold"] = cold
        res["cold_ratio"] = {name: _paired(cold[name], cold["ceiling"]) for name in names}
    return res


def run_d(cfg: Config) -> dict:
    """(d) per-run overhead: ParallelExecution().run().to_xarray() vs hand-written, warm/cold."""
    n = cfg.overhead_grid
    _say(f"\n(d) per-run overhead, {n}x{n} combinations, {cfg.overhead_points}-point output  "
         f"[{_load()}]")
    names = ["ours", "ceiling"]
    cold = _cold(dataclasses.replace(cfg, cold_reps=cfg.d_cold_reps), "d_cold", names)
    task = {"kind": "d_warm", "contenders": names, "config": asdict(cfg),
            "reps": {name: cfg.d_warm_reps for name in names}}
    warm = _spawn([task])[0]
    for name in names:
        _say(f"  warm {name:<9} first {warm['first'][name] * 1e3:8.2f} ms, median of "
             f"{len(warm['times'][name])} {_med(warm['times'][name]) * 1e3:.2f} ms")
    _say(f"  max |result - hand-written|: {warm['max_abs_diff_vs_ceiling']}; plan: "
         f"{warm['plan']}")
    wt = warm["times"]
    return {"cold": cold, "warm": wt, "first_in_process": warm["first"],
            "warm_ratio": {name: _paired(wt[name], wt["ceiling"]) for name in names},
            "cold_ratio": {name: _paired(cold[name], cold["ceiling"]) for name in names}
            if cold["ceiling"] else {}, "diff": warm["max_abs_diff_vs_ceiling"],
            "plan": warm["plan"]}


def run_e(cfg: Config) -> dict:
    """(e) SequentialExecution vs a hand-written loop of jax.jit(f), warm."""
    n = cfg.overhead_grid
    _say(f"\n(e) sequential overhead, {n}x{n} combinations  [{_load()}]")
    names = ["ours", "jit_loop"]
    task = {"kind": "e_warm", "contenders": names, "config": asdict(cfg),
            "reps": {name: cfg.e_warm_reps for name in names}}
    warm = _spawn([task])[0]
    for name in names:
        times = warm["times"][name]
        _say(f"  warm {name:<9} first {warm['first'][name]:7.3f} s, repeats "
             + " ".join(f"{x:.3f}" for x in times)
             + f"  ({_med(times) / n**2 * 1e6:.2f} us per combination)")
    _say(f"  max |result - loop|: {warm['max_abs_diff_vs_ceiling']}")
    wt = warm["times"]
    return {"warm": wt, "first_in_process": warm["first"],
            "ratio": _paired(wt["ours"], wt["jit_loop"]),
            "us_per_combination": {name: _med(wt[name]) / n**2 * 1e6 for name in names},
            "diff": warm["max_abs_diff_vs_ceiling"]}


def _summary(cfg: Config, quick: bool, a: dict | None, b: dict | None, c: dict | None,
             d: dict | None, e: dict | None, wall: float) -> bool:
    """Print the numbers table and the verdicts; True when every target that ran is met."""
    rows: list[tuple[str, float, float, bool]] = []

    def check(label: str, value: float, target: float) -> None:
        rows.append((label, value, target, value <= target))

    def cold(part: dict, name: str) -> str:
        if name not in part.get("cold_ratio", {}):
            return f"{'-':>9}{'-':>10}"
        return f"{_med(part['cold'][name]):>9.3f}{part['cold_ratio'][name]:>10.3f}"

    _say("\n" + "=" * 80)
    _say(f"SUMMARY  {_versions()}, {os.cpu_count()} CPU cores, {_load()}, wall {wall:.0f} s"
         + ("\n         [QUICK: smoke sizes, numbers not meaningful]" if quick else ""))
    _say("=" * 80)
    if a is not None:
        _say(f"(a) Kuramoto {cfg.n_nodes} nodes x {cfg.n_steps} steps, {cfg.grid**2} "
             "combinations; seconds = medians; ratios = medians of paired ratios")
        _say(f"    {'contender':<28}{'warm s':>9}{'warm/ceil':>10}{'cold s':>9}"
             f"{'cold/ceil':>10}")
        labels = {"ceiling": "ceiling jit(vmap)", "ours": "ours ParallelExecution",
                  "tvboptim": "tvboptim Parallel n_vmap=1",
                  "nested": "jit(vmap(vmap)), outer 1"}
        for name, label in labels.items():
            if name in a["warm"]:
                _say(f"    {label:<28}{_med(a['warm'][name]):>9.3f}"
                     f"{a['warm_ratio'][name]:>10.3f}" + cold(a, name))
        if "nested" in a["warm"]:
            _say("    (diagnosis row: the ceiling wrapped in one more vmap over an axis of size"
                 " 1, as\n    ParallelExecution's block was before it was flattened; same "
                 "model and lanes)")
        check("(a) ours/ceiling, warm [headline]", a["warm_ratio"]["ours"], TARGET_A)
        if "ours" in a["cold_ratio"]:
            check("(a) ours/ceiling, cold", a["cold_ratio"]["ours"], TARGET_A)
    if b is not None:
        _say("(b) trivial model; ms = medians; mem = peak RSS growth / (N * 4 B)")
        _say(f"    {'N':<7}{'contender':<22}{'ms':>9}{'/ceil':>8}{'mem':>8}"
             f"{'mem(glibc default)':>20}")
        blabels = {"ceiling": "ceiling", "ours": "ours ParallelExecution",
                   "fused": "meshgrid inside jit"}
        for n, r in b.items():
            for name in r["seconds"]:
                _say(f"    {float(n):<7.0e}{blabels[name]:<22}{r['seconds'][name] * 1e3:>9.2f}"
                     f"{r['time_ratio'][name]:>8.3f}{r['mem_ratio'][name]:>8.3f}"
                     f"{r['mem_ratio_default_malloc'][name]:>20.3f}")
            check(f"(b) N={float(n):.0e} ours/ceiling time", r["time_ratio"]["ours"],
                  TARGET_B_TIME)
            check(f"(b) N={float(n):.0e} ours peak mem/result", r["mem_ratio"]["ours"],
                  TARGET_B_MEM)
        if not all(r["correct"] for r in b.values()):
            _say("WARNING: a result of (b) was wrong")
    if c is not None:
        _say(f"(c) Kuramoto sequential, {c['n']} combinations; seconds = medians")
        _say(f"    {'contender':<28}{'warm s':>9}{'warm/ceil':>10}{'cold s':>9}"
             f"{'cold/ceil':>10}")
        clabels = {"ceiling": "ceiling jit(vmap)", "ours": "ours SequentialExecution",
                   "jit_loop": "loop of jit(f)",
                   "tvboptim_scaled": f"tvboptim Seq. ({c['n_tvb']} x{c['n'] / c['n_tvb']:g})"}
        for name, label in clabels.items():
            _say(f"    {label:<28}{_med(c['warm'][name]):>9.3f}{c['warm_ratio'][name]:>10.3f}"
                 + cold(c, name))
        check("(c) ours/ceiling, warm", c["warm_ratio"]["ours"], TARGET_C)
        if "cold_ratio" in c:
            check("(c) ours/ceiling, cold", c["cold_ratio"]["ours"], TARGET_C)
    if d is not None:
        _say(f"(d) per-run overhead, {cfg.overhead_grid**2} combinations; ms = medians")
        _say(f"    {'contender':<28}{'warm ms':>9}{'warm/hand':>10}{'cold ms':>9}"
             f"{'cold/hand':>10}")
        for name, label in (("ceiling", "hand-written"), ("ours", "ours Parallel.to_xarray")):
            cold_ms = (f"{_med(d['cold'][name]) * 1e3:>9.2f}{d['cold_ratio'][name]:>10.3f}"
                       if d["cold_ratio"] else f"{'-':>9}{'-':>10}")
            _say(f"    {label:<28}{_med(d['warm'][name]) * 1e3:>9.2f}"
                 f"{d['warm_ratio'][name]:>10.3f}" + cold_ms)
        check("(d) ours/hand-written, warm", d["warm_ratio"]["ours"], TARGET_D_WARM)
        if d["cold_ratio"]:
            check("(d) ours/hand-written, cold", d["cold_ratio"]["ours"], TARGET_D_COLD)
    if e is not None:
        _say(f"(e) sequential overhead, {cfg.overhead_grid**2} combinations; us per combination")
        for name, label in (("jit_loop", "loop of jax.jit(f)"), ("ours", "ours Sequential")):
            _say(f"    {label:<28}{e['us_per_combination'][name]:>9.2f}")
        check("(e) ours/loop of jax.jit(f), warm", e["ratio"], TARGET_E)
    _say("-" * 80)
    _say(f"    {'target':<42}{'measured':>10}{'target':>10}  verdict")
    for label, value, target, ok in rows:
        _say(f"    {label:<42}{value:>10.3f}{'<= ' + str(target):>10}  "
             f"{'PASS' if ok else 'FAIL'}")
    return all(ok for *_, ok in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes (< 60 s)")
    parser.add_argument("--json", metavar="PATH", help="also write all numbers to PATH")
    parser.add_argument("--parts", default="abcde",
                        help="which measurements to run (default abcde); targets of the "
                        "others are not checked")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(RESULT_MARK + json.dumps(_child(json.loads(args.child))), flush=True)
        return 0
    cfg = Config.quick() if args.quick else Config()
    _say(f"benchmarks/execution.py{' --quick' if args.quick else ''}: {cfg}  [{_load()}]")
    start = time.perf_counter()
    warm_a = warm_c = None
    parts = set(args.parts)
    if cfg.merge_warm and {"a", "c"} <= parts:  # one process for both (fewer JAX imports)
        warm_a, warm_c = _spawn([_warm_task(cfg, "a"), _warm_task(cfg, "c")])
    a = run_a(cfg, warm_a) if "a" in parts else None
    b = run_b(cfg) if "b" in parts else None
    c = run_c(cfg, warm_c) if "c" in parts else None
    d = run_d(cfg) if "d" in parts else None
    e = run_e(cfg) if "e" in parts else None
    wall = time.perf_counter() - start
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": asdict(cfg), "a": a, "b": b, "c": c, "d": d, "e": e,
                       "wall_s": wall, "load_end": os.getloadavg()}, fh, indent=1)
    ok = _summary(cfg, args.quick, a, b, c, d, e, wall)
    if args.quick:  # smoke sizes: the verdicts are printed but not enforced
        _say(f"\nquick run finished (targets {'met' if ok else 'NOT met'} at smoke sizes)")
        return 0
    _say(f"\nall targets {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

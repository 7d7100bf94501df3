"""DaskExecution benchmark: a two-worker LocalCluster against ParallelExecution in one process.

Four measurements, run one after another in one invocation, with a table and
PASS/FAIL against the targets at the end:

(a) The Kuramoto sweep of ``benchmarks/execution.py`` part (a) (68 nodes,
    2,000 Euler-Maruyama steps, 32 x 32 combinations of ``(K, sigma)``):
    ``DaskExecution`` on a 2-worker LocalCluster (processes, one thread each)
    against ``ParallelExecution`` at its defaults in this process. Warm: a
    cluster per worker setting is started and every worker has compiled
    (untimed runs), then rounds alternate ParallelExecution and every
    setting's DaskExecution (the load of a shared machine changes within
    minutes). The settings: ``default`` (as
    ``DaskExecution(client=None)`` starts them: ``WORKER_XLA_FLAGS`` and each
    worker pinned to a core), ``no pinning``, ``no flags`` and ``neither``,
    each also on a model whose time goes into 128 x 128 matrix products
    (where Eigen's threads show), with the cores each contender keeps busy
    (CPU seconds / wall seconds, the workers' summed). Cold:
    ``DaskExecution(client=None)`` in full (cluster start, worker imports,
    compilation, the run, shutdown). Target (Kuramoto, default workers):
    DaskExecution's throughput >= 0.85 x ParallelExecution's.
(b) Per-task overhead: a trivial model (``a * b + 1``) on 200 x 64 = 12,800
    combinations in 400 tasks of 32 combinations against 2 tasks of 6,400,
    warm. Overhead per task = (t_400 - t_2) x workers / 398 (worker time
    each extra task costs); also with a store (each task writes a zarr chunk),
    and ParallelExecution's cost per block of 32 in this process for context.
    Target: < 50 ms per task.
(c) Client memory while the workers write 1 GB into a store: 500 x 500
    combinations of a 1,000-point float32 trace, default blocks; peak RSS of
    this process (sampled every 0.5 ms by a thread) minus RSS just before
    ``run()``: the first run (the workers compile in it), a second one into a
    new store (warm: its speed), and for context the same without a store
    (the blocks come back to the client). Target: growth < 100 MB.
(d) The sweep of (a) with xyzpy 1.3.5's ``Runner.run_combos(parallel=True)``
    (a loky process pool, one task per combination, a module-level
    ``jax.jit`` of the model so each worker compiles once) in a separate
    virtual environment (``--xyz-python``, default /tmp/xyzvenv/bin/python;
    ``pip install xyzpy==1.3.5 jax matplotlib`` there), run as a subprocess.
    First run (pool start and compilation included) and second run. Context.

The target "a killed worker gives identical results" is shown by
``tests/test_distributed.py::test_a_killed_worker_loses_nothing``.

Usage::

    python benchmarks/distributed.py            # full run (about 4 minutes)
    python benchmarks/distributed.py --quick    # smoke run (< 90 s), verdicts not enforced
    python benchmarks/distributed.py --json out.json   # also save every number
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT_MARK = "@@RESULT@@ "

TARGET_A = 0.85  # DaskExecution throughput / ParallelExecution's
TARGET_B = 0.050  # seconds of overhead per task
TARGET_C = 100e6  # bytes of client RSS growth while 1 GB is written


@dataclass
class Config:
    """Sizes and repetitions of one benchmark run."""

    n_nodes: int = 68
    n_steps: int = 2000
    grid: int = 32  # (a), (d): grid x grid combinations
    reps: int = 5  # (a): alternating warm rounds per worker setting (Kuramoto)
    matmul_reps: int = 3  # (a): the same for the matmul model
    variants: list[str] = field(
        default_factory=lambda: ["default", "no pinning", "no flags", "neither"])
    task_shape: list[int] = field(default_factory=lambda: [200, 64])  # (b)
    small_chunk: int = 32  # (b): combinations per task
    task_reps: int = 3  # (b)
    big_shape: list[int] = field(default_factory=lambda: [500, 500])  # (c)
    trace: int = 1000  # (c): float32 points per combination
    xyz_grid: int = 32  # (d)

    @classmethod
    def quick(cls) -> Config:
        return cls(n_steps=200, grid=16, reps=2, matmul_reps=1, variants=["default", "neither"],
                   task_shape=[50, 64], task_reps=1, big_shape=[100, 250], xyz_grid=8)


def _variant(name: str) -> dict[str, Any]:
    """``local_cluster`` options of a worker setting."""
    from labeled_spaces.execution.cluster import WORKER_XLA_FLAGS

    flags = None if name in ("no flags", "neither") else WORKER_XLA_FLAGS
    return {"xla_flags": flags, "pin_cores": name in ("default", "no flags")}


def _matmul(state: dict) -> Any:
    """A model whose time goes into 128 x 128 matrix products (Eigen's, multi-threaded or not)."""
    import jax
    import jax.numpy as jnp

    m = jnp.eye(128) * state["K"] + jnp.ones((128, 128)) / 128

    def step(x: Any, _: Any) -> tuple[Any, None]:
        return jnp.tanh(m @ x), None

    x, _ = jax.lax.scan(step, jnp.ones((128, 32)) * state["sigma"], None, length=200)
    return x.mean()


def _execution() -> Any:
    """``benchmarks/execution.py`` (the Kuramoto model, the RSS sampler), loaded by path.

    Not through ``sys.path``: with this directory on it, ``import distributed`` would find
    this script instead of dask's package.
    """
    import importlib.util

    if "ls_bench_execution" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ls_bench_execution",
                                                      os.path.join(HERE, "execution.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["ls_bench_execution"] = module
        spec.loader.exec_module(module)
    return sys.modules["ls_bench_execution"]


def _say(msg: str) -> None:
    print(msg, flush=True)


def _med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def _load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


class _CPU:
    """CPU seconds per wall second of some processes (cores kept busy)."""

    def __init__(self, pids: Sequence[int]) -> None:
        import psutil

        self.procs = [psutil.Process(p) for p in pids]

    def _cpu(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.procs)

    def __enter__(self) -> _CPU:
        self.start, self.cpu0 = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.start
        self.cores = (self._cpu() - self.cpu0) / self.wall


def _warm(client: Any, run: Callable[[], Any]) -> None:
    """Run until every worker has compiled (a worker may get no block of a small run)."""
    from labeled_spaces.execution.cluster import compilations

    before = client.run(compilations)
    for _ in range(6):
        run()
        if all(n > before[w] for w, n in client.run(compilations).items()):
            return


def _kuramoto_space(grid: int) -> Any:
    import labeled_spaces as ls

    bench = _execution()
    return ls.Space({"K": ls.GridAxis(*bench.K_RANGE, grid),
                     "sigma": ls.GridAxis(*bench.SIGMA_RANGE, grid)}, mode="product")


def run_a(cfg: Config) -> dict:
    import contextlib

    import numpy as np
    from distributed import Client

    import labeled_spaces as ls
    from labeled_spaces.execution.cluster import local_cluster

    models = {"kuramoto": _execution()._kuramoto(cfg.n_nodes, cfg.n_steps), "matmul": _matmul}
    space = _kuramoto_space(cfg.grid)
    for model in models.values():
        ls.ParallelExecution(model, space, progress=False).run()  # compile
    times: dict[tuple[str, str], list[float]] = {}
    cores: dict[tuple[str, str], list[float]] = {}
    last: dict[tuple[str, str], Any] = {}

    def timed(who: str, name: str, pids: Sequence[int], run: Callable[[], Any]) -> None:
        with _CPU(pids) as cpu:
            last[who, name] = run().to_xarray()["result"].values
        times.setdefault((who, name), []).append(cpu.wall)
        cores.setdefault((who, name), []).append(cpu.cores)

    with contextlib.ExitStack() as stack:  # every setting's cluster at once: rounds alternate
        clients, pids = {}, {}
        for variant in cfg.variants:
            cluster = stack.enter_context(local_cluster(2, **_variant(variant)))
            clients[variant] = stack.enter_context(Client(cluster, set_as_default=False))
            pids[variant] = list(clients[variant].run(os.getpid).values())
        for client in clients.values():
            for model in models.values():
                _warm(client, lambda c=client, m=model: ls.DaskExecution(
                    m, space, client=c, progress=False).run())
        for k in range(cfg.reps):
            for name, model in models.items():
                if name == "matmul" and k >= cfg.matmul_reps:
                    continue
                timed("parallel", name, [os.getpid()],
                      lambda m=model: ls.ParallelExecution(m, space, progress=False).run())
                for variant, client in clients.items():
                    timed(variant, name, pids[variant], lambda m=model, c=client:
                          ls.DaskExecution(m, space, client=c, progress=False).run())
            _say(f"  (a) round {k + 1}: " + ", ".join(
                f"{who} {name} {ts[-1]:.2f} s" for (who, name), ts in times.items()
                if len(ts) == k + 1) + f"  [{_load()}]")
    out: dict[str, Any] = {"parallel": {}, "variants": {}}
    for name in models:
        out["parallel"][name] = {"s": times["parallel", name],
                                 "cores": _med(cores["parallel", name])}
    for variant in cfg.variants:
        out["variants"][variant] = {"options": _variant(variant)}
        for name in models:
            ts = times[variant, name]
            out["variants"][variant][name] = {
                "dask_s": ts, "dask_worker_cores": _med(cores[variant, name]),
                "ratio": _med(times["parallel", name]) / _med(ts),
                "max_abs_diff": float(np.max(np.abs(last[variant, name]
                                                    - last["parallel", name]))),
            }
    start = time.perf_counter()
    cold = ls.DaskExecution(models["kuramoto"], space, progress=False).run()
    out["cold_own_cluster_s"] = time.perf_counter() - start
    out["cold_max_abs_diff"] = float(np.max(np.abs(cold.to_xarray()["result"].values
                                                   - last["parallel", "kuramoto"])))
    out["values"] = last["parallel", "kuramoto"].ravel().tolist()
    _say(f"  (a) cold DaskExecution(client=None): {out['cold_own_cluster_s']:.2f} s")
    return out


def _trivial(state: dict) -> Any:
    return state["a"] * state["b"] + 1.0


def run_b(cfg: Config) -> dict:
    import shutil

    from distributed import Client

    import labeled_spaces as ls
    from labeled_spaces.execution.cluster import local_cluster

    n = cfg.task_shape[0] * cfg.task_shape[1]
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, cfg.task_shape[0]),
                      "b": ls.GridAxis(0.0, 1.0, cfg.task_shape[1])}, mode="product")
    many, few = n // cfg.small_chunk, 2
    tmp = tempfile.mkdtemp(prefix="ls-bench-")
    out: dict[str, Any] = {}
    with local_cluster(2) as cluster, Client(cluster, set_as_default=False) as client:

        paths = iter(range(10**6))

        def timed(chunk: int, store: bool, k: int) -> float:
            path = {"store": os.path.join(tmp, f"b{next(paths)}.zarr")} if store else {}
            start = time.perf_counter()
            ls.DaskExecution(_trivial, space, client=client, chunk_size=chunk,
                             progress=False, **path).run()
            return time.perf_counter() - start

        for store in (False, True):
            _warm(client, lambda store=store: timed(cfg.small_chunk, store, -1))
            _warm(client, lambda store=store: timed(n // few, store, -2))
            t_many = [timed(cfg.small_chunk, store, k) for k in range(cfg.task_reps)]
            t_few = [timed(n // few, store, k) for k in range(cfg.task_reps)]
            per_task = (_med(t_many) - _med(t_few)) * 2 / (many - few)
            out["store" if store else "memory"] = {
                "tasks": many, "t_many_s": t_many, "t_few_s": t_few, "per_task_s": per_task}
            _say(f"  (b) {'store ' if store else 'memory'}: {many} tasks {_med(t_many):.3f} s, "
                 f"{few} tasks {_med(t_few):.3f} s -> {per_task * 1e3:.2f} ms per task")
    shutil.rmtree(tmp, ignore_errors=True)
    ls.ParallelExecution(_trivial, space, chunk_size=cfg.small_chunk, progress=False).run()
    start = time.perf_counter()
    ls.ParallelExecution(_trivial, space, chunk_size=cfg.small_chunk, progress=False).run()
    out["parallel_per_block_s"] = (time.perf_counter() - start) / many
    return out


def run_c(cfg: Config) -> dict:
    import shutil

    import jax.numpy as jnp
    from distributed import Client

    import labeled_spaces as ls
    from labeled_spaces.execution.cluster import local_cluster

    rows, cols = cfg.big_shape
    t = jnp.arange(cfg.trace, dtype=jnp.float32) / cfg.trace

    def model(state: dict) -> Any:
        return jnp.sin(state["a"] * t + state["b"])

    space = ls.Space({"a": ls.GridAxis(0.0, 50.0, rows), "b": ls.GridAxis(0.0, 3.0, cols)},
                     mode="product")
    nbytes = rows * cols * cfg.trace * 4
    tmp = tempfile.mkdtemp(prefix="ls-bench-")
    out: dict[str, Any] = {"bytes": nbytes}
    with local_cluster(2) as cluster, Client(cluster, set_as_default=False) as client:
        # the first store run measures the client's memory from a clean heap (the workers
        # compile during it); the second, warm, the speed; then the same without a store
        for name, store in (("store_first", True), ("store", True), ("memory", False)):
            path = {"store": os.path.join(tmp, f"{name}.zarr")} if store else {}
            with _execution()._RSSSampler() as rss:
                start = time.perf_counter()
                results = ls.DaskExecution(model, space, client=client, progress=False,
                                           **path).run()
                wall = time.perf_counter() - start
            out[name] = {"wall_s": wall, "growth_bytes": rss.growth,
                         "gb_per_s": nbytes / wall / 1e9}
            if store:
                out[name]["complete"] = bool(results.complete)
            del results
            _say(f"  (c) {name}: {nbytes / 1e9:.2f} GB in {wall:.2f} s "
                 f"({nbytes / wall / 1e9:.2f} GB/s), client RSS +{rss.growth / 1e6:.0f} MB")
    shutil.rmtree(tmp, ignore_errors=True)
    return out


XYZ_MODULE = """
import importlib.util
import sys
import jax
import numpy as np

_spec = importlib.util.spec_from_file_location("ls_bench_execution", {path!r})
_bench = importlib.util.module_from_spec(_spec)
sys.modules["ls_bench_execution"] = _bench
_spec.loader.exec_module(_bench)
_model = _bench._kuramoto({n_nodes}, {n_steps})
_jitted = jax.jit(lambda k, s: _model({{"K": k, "sigma": s}}))


def run(K, sigma):
    return float(_jitted(np.float32(K), np.float32(sigma)))
"""

XYZ_SCRIPT = """
import json, os, sys, time
import numpy as np
import xyzpy as xyz
import xyz_kuramoto

grid = {grid}
combos = {{"K": np.linspace(0.0, 4.0, grid), "sigma": np.linspace(0.0, 1.0, grid)}}
runner = xyz.Runner(xyz_kuramoto.run, var_names="r")
times = []
for _ in range(2):
    start = time.perf_counter()
    ds = runner.run_combos(combos, parallel=True, verbosity=0)
    times.append(time.perf_counter() - start)
print({mark!r} + json.dumps({{"times": times, "version": xyz.__version__,
                             "workers": os.cpu_count(),
                             "values": ds["r"].values.ravel().tolist()}}), flush=True)
"""


def run_d(cfg: Config, python: str, reference: list[float] | None) -> dict:
    if not os.path.exists(python):
        _say(f"  (d) skipped: {python} not found (make it with: python -m venv /tmp/xyzvenv "
             "&& /tmp/xyzvenv/bin/pip install xyzpy==1.3.5 jax matplotlib)")
        return {"skipped": True}
    with tempfile.TemporaryDirectory(prefix="ls-xyz-") as tmp:
        with open(os.path.join(tmp, "xyz_kuramoto.py"), "w") as fh:
            fh.write(XYZ_MODULE.format(path=os.path.join(HERE, "execution.py"),
                                       n_nodes=cfg.n_nodes, n_steps=cfg.n_steps))
        script = XYZ_SCRIPT.format(grid=cfg.xyz_grid, mark=RESULT_MARK)
        env = {**os.environ, "PYTHONPATH": tmp}
        proc = subprocess.run([python, "-c", textwrap.dedent(script)], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=1800)
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT_MARK)]
    if proc.returncode or not lines:
        _say(f"  (d) failed: {proc.stderr[-2000:]}")
        return {"failed": True}
    out = json.loads(lines[-1][len(RESULT_MARK):])
    if reference is not None and cfg.xyz_grid == cfg.grid:
        import numpy as np

        out["max_abs_diff"] = float(np.max(np.abs(np.asarray(out["values"])
                                                  - np.asarray(reference))))
    out.pop("values")
    _say(f"  (d) xyzpy {out['version']} parallel=True: first {out['times'][0]:.2f} s, "
         f"second {out['times'][1]:.2f} s")
    return out


def _summary(cfg: Config, a: dict | None, b: dict | None, c: dict | None, d: dict | None,
             wall: float) -> bool:
    rows: list[tuple[str, str, str, str]] = []
    ok = True

    def store_run(name: str) -> bool:
        return name.startswith("store")

    def verdict(passed: bool) -> str:
        nonlocal ok
        ok = ok and passed
        return "PASS" if passed else "FAIL"

    if a:
        for name in ("kuramoto", "matmul"):
            p = a["parallel"][name]
            rows.append((f"(a) {name} {cfg.grid}x{cfg.grid}: ParallelExecution, 1 process",
                         f"{_med(p['s']):.2f} s ({p['cores']:.2f} cores)", "", ""))
            for variant, found in a["variants"].items():
                v = found[name]
                rows.append((f"(a) {name}: DaskExecution, 2 workers, {variant}",
                             f"{_med(v['dask_s']):.2f} s ({v['dask_worker_cores']:.2f} cores)",
                             f"throughput {v['ratio']:.2f}x",
                             verdict(v["ratio"] >= TARGET_A)
                             if (variant, name) == ("default", "kuramoto") else ""))
        rows.append(("(a) cold DaskExecution(client=None), kuramoto",
                     f"{a['cold_own_cluster_s']:.2f} s", "", ""))
    if b:
        for name in ("memory", "store"):
            v = b[name]
            rows.append((f"(b) per-task overhead ({name})",
                         f"{v['tasks']} tasks {_med(v['t_many_s']):.3f} s, 2 tasks "
                         f"{_med(v['t_few_s']):.3f} s", f"{v['per_task_s'] * 1e3:.2f} ms",
                         verdict(v["per_task_s"] < TARGET_B) if name == "memory" else ""))
        rows.append(("(b) ParallelExecution per block (context)",
                     f"{b['parallel_per_block_s'] * 1e3:.3f} ms", "", ""))
    if c:
        for name in ("store_first", "store", "memory"):
            v = c[name]
            rows.append((f"(c) client RSS while {c['bytes'] / 1e9:.1f} GB is made ({name})",
                         f"{v['wall_s']:.2f} s, {v['gb_per_s']:.2f} GB/s",
                         f"+{v['growth_bytes'] / 1e6:.0f} MB",
                         verdict(v["growth_bytes"] < TARGET_C) if store_run(name) else ""))
    if d and "times" in d:
        rows.append((f"(d) xyzpy parallel=True, {cfg.xyz_grid}x{cfg.xyz_grid}",
                     f"first {d['times'][0]:.2f} s, second {d['times'][1]:.2f} s", "", ""))
    rows.append(("killed worker: identical results", "tests/test_distributed.py", "", "(test)"))
    width = max(len(r[0]) for r in rows)
    _say("")
    for r in rows:
        _say(f"{r[0]:<{width}}  {r[1]:<62} {r[2]:<16} {r[3]}")
    _say(f"\ntotal {wall:.0f} s  [{_load()}]")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes")
    parser.add_argument("--json", metavar="PATH", help="also write all numbers to PATH")
    parser.add_argument("--parts", default="abcd", help="which measurements (default abcd)")
    parser.add_argument("--xyz-python", default="/tmp/xyzvenv/bin/python",
                        help="python of a virtual environment with xyzpy 1.3.5 and jax")
    args = parser.parse_args(argv)
    # with this directory first on sys.path, "import distributed" would import this script
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
    cfg = Config.quick() if args.quick else Config()
    _say(f"benchmarks/distributed.py{' --quick' if args.quick else ''}: {cfg}  [{_load()}]")
    start = time.perf_counter()
    parts: dict[str, Callable[[], dict]] = {"a": lambda: run_a(cfg), "b": lambda: run_b(cfg),
                                            "c": lambda: run_c(cfg)}
    found = {p: parts[p]() for p in "abc" if p in args.parts}
    if "d" in args.parts:
        values = found.get("a", {}).get("values")
        found["d"] = run_d(cfg, args.xyz_python, values)
    wall = time.perf_counter() - start
    if args.json:
        found.get("a", {}).pop("values", None)
        with open(args.json, "w") as fh:
            json.dump({"config": asdict(cfg), **found, "wall_s": wall}, fh, indent=1)
    ok = _summary(cfg, found.get("a"), found.get("b"), found.get("c"), found.get("d"), wall)
    if args.quick:
        _say(f"quick run finished (targets {'met' if ok else 'NOT met'} at smoke sizes)")
        return 0
    _say(f"all targets {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Store benchmark: sweeps streamed to a zarr store, against raw zarr and xsweep 0.5.0.

Six measurements in one run, each in a fresh child process (the parent never
imports JAX), with PASS/FAIL against the targets at the end:

(a) a 1e8-combination scalar sweep (``a * b + 1`` on 10,000 x 10,000) into a
    store: wall time, MB/s written, peak RSS of the process;
(b) 2e6 combinations x 1,000-point float32 outputs (8 GB): the same;
(c) raw zarr write speed for the bytes of (b): the same array, chunks and
    codecs written chunk by chunk with zarr alone (only the writes timed), the
    reference of the store's write speed;
(d) the Kuramoto sweep of ``benchmarks/execution.py`` (a) with and without a
    store, warm, interleaved;
(e) a 100 x 100 sweep with a 100-point output written to a new store: ours
    against xsweep 0.5.0 (``@sweep("loop(a, b) -> y(t)", store=...)``), per point;
    ours warm (compiled by an earlier run) and cold (compilation included). xsweep
    runs in its own virtual environment (``--xsweep-python``; made with
    ``pip install xsweep==0.5.0`` when missing);
(f) resuming a store with 10% of its blocks missing, against the full run (warm).

Targets: (a), (b) peak RSS under 1.5 GB; (b) store writing at least 0.7x the raw
zarr speed of (c); (d) at most 1.05x; (e) at least 100x faster per point than
xsweep, and at most 6x the same sweep in memory (warm, interleaved); (f) at most
0.15x the full run.

Usage::

    python benchmarks/store.py            # full run (a few minutes, ~8 GB of temporary disk)
    python benchmarks/store.py --quick    # smoke sizes, verdicts not enforced
    python benchmarks/store.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULT_MARK = "@@RESULT@@ "
HERE = Path(__file__).resolve().parent

TARGET_RSS = 1.5e9
TARGET_WRITE = 0.7
TARGET_KURAMOTO = 1.05
TARGET_XSWEEP = 100.0
TARGET_STORE_OVER_MEMORY = 6.0
TARGET_RESUME = 0.15

FULL = {"a": (10_000, 10_000), "b": (2000, 1000, 1000), "f": (400, 1000, 1000), "e": (100, 100),
        "e_large": (1000, 100), "kuramoto": 32, "reps": 9}
QUICK = {"a": (1000, 1000), "b": (200, 100, 1000), "f": (100, 100, 1000), "e": (30, 30),
         "e_large": (60, 30), "kuramoto": 8, "reps": 1}


# ===========================================================================
# child side (imports JAX)
# ===========================================================================


class _PeakRSS:
    """Peak RSS of this process, sampled by a background thread every 2 ms."""

    def __enter__(self) -> _PeakRSS:
        import threading

        import psutil

        self._proc, self._stop = psutil.Process(), threading.Event()
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self._stop.set()
        self._thread.join()


def _vector_model(points: int) -> Any:
    import jax.numpy as jnp

    t = jnp.linspace(0.0, 1.0, points, dtype=jnp.float32)

    def model(state: dict) -> Any:
        return state["a"] * jnp.sin(t * state["b"])

    return model


def _space(shape: tuple[int, ...]) -> Any:
    import labeled_spaces as ls

    return ls.Space({"a": ls.GridAxis(0.0, 1.0, shape[0]), "b": ls.GridAxis(0.0, 10.0, shape[1])},
                    mode="product")


def _store_sweep(task: dict) -> dict:
    """(a), (b): one sweep into a store, timed, with peak RSS."""
    import labeled_spaces as ls

    shape = task["shape"]
    model = (lambda s: s["a"] * s["b"] + 1.0) if len(shape) == 2 else _vector_model(shape[2])
    space = _space(shape)
    path = Path(task["dir"]) / "sweep.zarr"
    with _PeakRSS() as rss:
        start = time.perf_counter()
        results = ls.ParallelExecution(model, space, progress=False, store=path).run()
        wall = time.perf_counter() - start
    n_bytes = space.N * (4 if len(shape) == 2 else 4 * shape[2])
    import zarr

    store = json.loads(zarr.open_group(str(path), mode="r").attrs["labeled_spaces:store"])
    last = float(results.arrays[0][(-1,) * len(results.arrays[0].shape)].compute())
    return {"wall": wall, "bytes": n_bytes, "mb_s": n_bytes / wall / 1e6, "peak_rss": rss.peak,
            "step": store["step"], "last": last,
            "disk": sum(p.stat().st_size for p in path.rglob("*") if p.is_file())}


def _raw_zarr(task: dict) -> dict:
    """(c): the bytes of (b) written with zarr alone, chunk by chunk (writes timed)."""
    import numpy as np
    import zarr

    a_n, b_n, points = task["shape"]
    step = task["step"]
    path = Path(task["dir"]) / "raw.zarr"
    from zarr.codecs import BloscCodec

    # the store's own settings (labeled_spaces.results.store._codecs): the same work, bare
    array = zarr.create_array(str(path), shape=(a_n, b_n, points),
                              chunks=(*step, points), dtype="float32", fill_value=np.nan,
                              compressors=BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"))
    t = np.linspace(0.0, 1.0, points, dtype=np.float32)
    a_values = np.linspace(0.0, 1.0, a_n, dtype=np.float32)
    b_values = np.linspace(0.0, 10.0, b_n, dtype=np.float32)
    written = 0.0
    for i in range(0, a_n, step[0]):
        for j in range(0, b_n, step[1]):
            block = (a_values[i:i + step[0], None, None]
                     * np.sin(t[None, None, :] * b_values[None, j:j + step[1], None]))
            start = time.perf_counter()
            array[i:i + step[0], j:j + step[1]] = block.astype(np.float32)
            written += time.perf_counter() - start
    n_bytes = a_n * b_n * points * 4
    return {"write_seconds": written, "mb_s": n_bytes / written / 1e6}


def _kuramoto(task: dict) -> dict:
    """(d): the Kuramoto sweep with and without a store, warm, interleaved."""
    sys.path.insert(0, str(HERE))
    from execution import K_RANGE, SIGMA_RANGE, _kuramoto

    import labeled_spaces as ls

    grid = task["grid"]
    model = _kuramoto(68, 2000)
    space = ls.Space({"K": ls.GridAxis(*K_RANGE, grid), "sigma": ls.GridAxis(*SIGMA_RANGE, grid)},
                     mode="product")
    root = Path(task["dir"])

    def memory() -> Any:
        return ls.ParallelExecution(model, space, progress=False).run()

    def stored(k: int) -> Any:
        return ls.ParallelExecution(model, space, progress=False,
                                    store=root / f"k{k}.zarr").run()

    memory(), stored(-1)  # compile both plans
    times: dict[str, list[float]] = {"memory": [], "store": []}
    for k in range(task["reps"] * 2):
        for name in (("memory", "store") if k % 2 == 0 else ("store", "memory")):
            start = time.perf_counter()
            memory() if name == "memory" else stored(k)
            times[name].append(time.perf_counter() - start)
    return {"times": times,
            "ratio": statistics.median(s / m for s, m in zip(times["store"], times["memory"],
                                                              strict=True))}


def _ours_e(task: dict) -> dict:
    """(e), ours: the 100 x 100 sweep of a 100-point output into a new store, cold and warm.

    Cold: the first run in the process, compilation included. Warm: a run into
    another new store, the program compiled already (xsweep compiles nothing).
    The same sweep in memory runs interleaved with the warm store runs, for
    the store / memory ratio.
    """
    import labeled_spaces as ls

    space, model = _space(task["shape"]), _vector_model(100)
    times, memory = [], []
    for k in range(1 + task["reps"]):
        start = time.perf_counter()
        ls.ParallelExecution(model, space, progress=False,
                             store=Path(task["dir"]) / f"ours_{k}.zarr").run()
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        ls.ParallelExecution(model, space, progress=False).run()
        memory.append(time.perf_counter() - start)
    warm, in_memory = statistics.median(times[1:]), statistics.median(memory[1:])
    return {"cold": times[0], "warm": warm, "us_per_point": warm / space.N * 1e6,
            "cold_us_per_point": times[0] / space.N * 1e6, "memory": in_memory,
            "store_over_memory": statistics.median(
                s / m for s, m in zip(times[1:], memory[1:], strict=True))}


def _resume(task: dict) -> dict:
    """(f): a full run, then the same store with 10% of its blocks missing, both warm."""
    import numpy as np
    import zarr

    import labeled_spaces as ls

    shape = task["shape"]
    model, space, root = _vector_model(shape[2]), _space(shape), Path(task["dir"])
    ls.ParallelExecution(model, space, progress=False, store=root / "warm.zarr").run()
    start = time.perf_counter()
    ls.ParallelExecution(model, space, progress=False, store=root / "full.zarr").run()
    full = time.perf_counter() - start
    done = zarr.open_group(str(root / "full.zarr"), mode="r+")["labeled_spaces/done"]
    flat = np.ones(done.size, dtype=bool)
    missing = np.random.default_rng(0).choice(done.size, max(1, done.size // 10), replace=False)
    flat[missing] = False
    done[...] = flat.reshape(done.shape)
    start = time.perf_counter()
    results = ls.ParallelExecution(model, space, progress=False, store=root / "full.zarr").run()
    resumed = time.perf_counter() - start
    return {"full": full, "resume": resumed, "ratio": resumed / full, "blocks": int(done.size),
            "missing": int(len(missing)), "complete": bool(results.complete)}


CHILD_TASKS = {"store": _store_sweep, "raw": _raw_zarr, "kuramoto": _kuramoto, "ours_e": _ours_e,
               "resume": _resume}


XSWEEP_SCRIPT = """
import sys, time, numpy as np, xarray as xr
from xsweep import sweep
na, nb, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t = np.linspace(0.0, 1.0, 100, dtype=np.float32)

@sweep("loop(a, b) -> y(t)", store=path)
def point(a, b):
    return (np.float32(a) * np.sin(t * np.float32(b))).astype(np.float32)

space = xr.Dataset({"a": ("a", np.linspace(0.0, 1.0, na)), "b": ("b", np.linspace(0.0, 10.0, nb)),
                    "t": ("t", t)})
start = time.perf_counter()
point(space)
wall = time.perf_counter() - start
print("@@RESULT@@ " + str({"wall": wall, "us_per_point": wall / (na * nb) * 1e6}).replace("'", '"'))
"""


# ===========================================================================
# parent side (no JAX)
# ===========================================================================


def _spawn(task: dict, python: str = sys.executable, script: str | None = None,
           args: list[str] | None = None, timeout: float = 3600) -> dict:
    cmd = [python, script or os.path.abspath(__file__)]
    cmd += args if args is not None else ["--child", json.dumps(task)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS",
                                                                             "cpu")))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    raise RuntimeError(f"child {task.get('kind')} failed (rc={proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _xsweep_python(given: str | None) -> str:
    if given:
        return given
    venv = Path(tempfile.gettempdir()) / "labeled_spaces_xsweep_venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "xsweep==0.5.0"], check=True)
    return str(python)


def _say(msg: str) -> None:
    print(msg, flush=True)


def _load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes (verdicts not enforced)")
    parser.add_argument("--json", metavar="PATH", help="also write all numbers to PATH")
    parser.add_argument("--dir", help="where to write the stores (default: a temporary dir)")
    parser.add_argument("--xsweep-python", help="python of a venv with xsweep==0.5.0")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        task = json.loads(args.child)
        print(RESULT_MARK + json.dumps(CHILD_TASKS[task["kind"]](task)), flush=True)
        return 0
    sizes = QUICK if args.quick else FULL
    root = Path(args.dir or tempfile.mkdtemp(prefix="labeled_spaces_store_bench_"))
    out: dict[str, Any] = {"sizes": sizes}
    start = time.perf_counter()

    def fresh(name: str) -> str:
        path = root / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return str(path)

    try:
        for part in ("a", "b"):
            res = _spawn({"kind": "store", "shape": list(sizes[part]), "dir": fresh(part)})
            out[part] = res
            _say(f"({part}) {res['bytes'] / 1e9:.2f} GB in {res['wall']:.1f} s = "
                 f"{res['mb_s']:.0f} MB/s, peak RSS {res['peak_rss'] / 1e9:.2f} GB, blocks of "
                 f"{res['step']}, {res['disk'] / 1e9:.2f} GB on disk  [{_load()}]")
            if part == "b":
                shutil.rmtree(root / "b", ignore_errors=True)
        res = _spawn({"kind": "raw", "shape": list(sizes["b"]), "step": out["b"]["step"],
                      "dir": fresh("c")})
        shutil.rmtree(root / "c", ignore_errors=True)
        out["c"] = res
        _say(f"(c) raw zarr writes: {res['mb_s']:.0f} MB/s ({res['write_seconds']:.1f} s)")
        res = _spawn({"kind": "kuramoto", "grid": sizes["kuramoto"], "reps": sizes["reps"],
                      "dir": fresh("d")})
        out["d"] = res
        _say(f"(d) Kuramoto with a store / in memory: {res['ratio']:.3f} {res['times']}")
        script = root / "xsweep_e.py"
        script.write_text(XSWEEP_SCRIPT)
        for part in ("e", "e_large"):  # the size, and 10x more points
            ours = _spawn({"kind": "ours_e", "shape": list(sizes[part]), "dir": fresh(part),
                           "reps": sizes["reps"]})
            theirs = _spawn({"kind": "xsweep"}, python=_xsweep_python(args.xsweep_python),
                            script=str(script),
                            args=[*map(str, sizes[part]), str(root / part / "xsweep.zarr")])
            out[part] = {"ours": ours, "xsweep": theirs,
                         "ratio": theirs["us_per_point"] / ours["us_per_point"]}
            _say(f"({part}) {sizes[part]} per point: ours {ours['us_per_point']:.2f} us warm "
                 f"({ours['cold_us_per_point']:.1f} us cold, compilation included), xsweep "
                 f"{theirs['us_per_point']:.1f} us: {out[part]['ratio']:.0f}x warm, "
                 f"{theirs['us_per_point'] / ours['cold_us_per_point']:.1f}x cold")
            _say(f"({part}) into a store {ours['warm'] * 1e3:.1f} ms, in memory "
                 f"{ours['memory'] * 1e3:.1f} ms: store / memory "
                 f"{ours['store_over_memory']:.1f}x")
        res = _spawn({"kind": "resume", "shape": list(sizes["f"]), "dir": fresh("f")})
        out["f"] = res
        _say(f"(f) resume {res['missing']} of {res['blocks']} blocks: {res['resume']:.2f} s, full "
             f"{res['full']:.2f} s: {res['ratio']:.3f}")
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    out["wall"] = time.perf_counter() - start
    write_ratio = out["b"]["mb_s"] / out["c"]["mb_s"]
    rows = [
        ("(a) peak RSS, GB", out["a"]["peak_rss"] / 1e9, TARGET_RSS / 1e9, "<="),
        ("(b) peak RSS, GB", out["b"]["peak_rss"] / 1e9, TARGET_RSS / 1e9, "<="),
        ("(b) store / raw zarr write speed", write_ratio, TARGET_WRITE, ">="),
        ("(d) Kuramoto with store / in memory", out["d"]["ratio"], TARGET_KURAMOTO, "<="),
        ("(e) xsweep / ours, time per point", out["e"]["ratio"], TARGET_XSWEEP, ">="),
        ("(e) ... with 10x more points", out["e_large"]["ratio"], TARGET_XSWEEP, ">="),
        ("(e) store / memory, warm", out["e"]["ours"]["store_over_memory"],
         TARGET_STORE_OVER_MEMORY, "<="),
        ("(f) resume 10% / full run", out["f"]["ratio"], TARGET_RESUME, "<="),
    ]
    _say(f"\nSUMMARY ({'QUICK, smoke sizes' if args.quick else 'full'}; wall {out['wall']:.0f} s; "
         f"{_load()})")
    ok = True
    for label, value, target, op in rows:
        passed = value <= target if op == "<=" else value >= target
        ok &= passed
        _say(f"    {label:<40}{value:>10.3f}  {op} {target:<6}  {'PASS' if passed else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if args.quick:
        return 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

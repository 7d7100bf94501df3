"""How ``space[i]`` and iteration scale with the size of a Space: ours against TVB-Optim 0.4.0.

Two measurements, each taken in a fresh subprocess so that one cannot inflate
the memory of another:

1. ``space[i]`` on product spaces of three axes (two ``GridAxis``, one
   ``UniformAxis``) whose sizes multiply to N = 1e3, 1e4, ..., 1e9. Reported:
   the median time of one access (after one untimed warm-up access) and the
   growth of the process's peak resident memory (RSS) over the whole block of
   accesses, measured against the RSS just before it. The peak is read from
   ``VmHWM`` after resetting it through ``/proc/self/clear_refs``; where that is
   not possible, from ``getrusage(RUSAGE_SELF).ru_maxrss``. RSS, unlike
   ``tracemalloc``, sees the buffers JAX allocates.
2. Iterating over the first ``--iter-count`` combinations of a product space of
   about ``--iter-n`` combinations; reported per combination.
3. How long an axis takes to refuse a size no grid holds (``n`` = 2**30, 1e20):
   it must answer at once, before anything of size ``n`` exists (the tests
   check that no memory grows; the time is measured here, not asserted there).

Every subprocess runs under a hard address-space limit (``RLIMIT_AS``,
``--cap-gb``) and a timeout; a TVB-Optim measurement that runs out of either is
reported as ``OOM > cap`` or ``timeout`` instead of stopping the run. TVB-Optim
rebuilds the whole meshgrid for every ``space[i]`` (about 23 GB and a minute at
N = 1e9), so by default it is only measured up to ``--max-ref-n`` = 1e8.

Both libraries run JAX on the CPU (``JAX_PLATFORMS=cpu`` unless already set):
on an accelerator, device memory would not show up in RSS.

Usage::

    python benchmarks/space_scaling.py                    # ours to 1e9, TVB-Optim to 1e8
    python benchmarks/space_scaling.py --max-ref-n 1e9    # TVB-Optim to 1e9 as well
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

IMPLS = ("ours", "tvboptim")
GIB = 2**30
MB = 1e6

# targets (ours)
TARGET_N = 10**9
TARGET_TIME_S = 1e-3
TARGET_MEM_BYTES = 50 * MB
TARGET_ITER_SPEEDUP = 10.0

_OOM_MARKERS = ("RESOURCE_EXHAUSTED", "MemoryError", "bad_alloc", "Out of memory",
                "Cannot allocate memory")


# ----------------------------------------------------------------------------
# the worker side (runs in a subprocess)
# ----------------------------------------------------------------------------


def _rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm_bytes() -> int | None:
    """Peak resident set size (``VmHWM``) of this process, or ``None`` if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); ``False`` if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    hwm = _hwm_bytes()
    return hwm is not None and hwm <= _rss_bytes() + 16 * 2**20


class _PeakMeter:
    """Growth of peak RSS over a block of code, relative to the RSS at its start."""

    def __enter__(self) -> _PeakMeter:
        self.start = _rss_bytes()
        self.exact = _reset_peak()
        self.maxrss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.exact:
            peak = _hwm_bytes() or 0
        else:  # ru_maxrss is a lifetime peak: only usable if this block raised it
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            peak = peak if peak > self.maxrss_start else self.start
        self.growth = max(peak - self.start, 0)


def axis_sizes(n: int) -> tuple[int, int, int]:
    """Three axis sizes whose product is ``n`` (a power of ten), as equal as possible."""
    k = round(math.log10(n))
    if 10**k != n or k < 3:
        raise ValueError(f"n must be a power of ten >= 1000, got {n}")
    exps = [k // 3 + (1 if j < k % 3 else 0) for j in range(3)]
    return (10 ** exps[0], 10 ** exps[1], 10 ** exps[2])


def make_space(impl: str, sizes: tuple[int, int, int]) -> Any:
    """A product Space of ``impl`` over two grid axes and one uniform axis of ``sizes``."""
    import jax

    if impl == "ours":
        from labeled_spaces import GridAxis, Space, UniformAxis
    elif impl == "tvboptim":
        from tvboptim.types.spaces import GridAxis, Space, UniformAxis
    else:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    a, b, c = sizes
    state = {
        "coupling": GridAxis(0.0, 1.0, a),
        "delay": GridAxis(1.0, 20.0, b),
        "noise": UniformAxis(0.0, 0.1, c),
        "dt": 0.1,
    }
    return Space(state, mode="product", key=jax.random.key(1))


def work_getitem(impl: str, n: int, repeats: int) -> dict[str, Any]:
    """Time ``space[i]`` at random ``i`` and the peak RSS growth while doing it."""
    import random

    import jax

    space = make_space(impl, axis_sizes(n))
    if len(space) != n:
        raise RuntimeError(f"{impl} space has {len(space)} combinations, expected {n}")
    rng = random.Random(0)
    indices = [rng.randrange(n) for _ in range(repeats)]
    times = []
    with _PeakMeter() as meter:
        jax.block_until_ready(space[n - 1])  # warm-up: first dispatch, caches
        for i in indices:
            t0 = time.perf_counter()
            jax.block_until_ready(space[i])
            times.append(time.perf_counter() - t0)
    return {"time": statistics.median(times), "times_n": len(times),
            "mem": meter.growth, "mem_exact": meter.exact, "rss_before": meter.start}


def work_iterate(impl: str, n: int, count: int) -> dict[str, Any]:
    """Time iterating over the first ``count`` combinations, per combination."""
    import jax

    k = round(math.log10(n))
    space = make_space(impl, axis_sizes(10**k))
    count = min(count, len(space))
    last = None
    t0 = time.perf_counter()
    it = iter(space)
    for _ in range(count):
        last = next(it)
    jax.block_until_ready(last)  # TVB-Optim hands out JAX arrays: wait for the last one
    elapsed = time.perf_counter() - t0
    return {"time": elapsed / count, "count": count, "n": len(space)}


def work_check(n: int, count: int) -> dict[str, Any]:
    """Whether ours and TVB-Optim give the same values at ``count`` indices (same key)."""
    import random

    import numpy as np

    ours = make_space("ours", axis_sizes(n))
    ref = make_space("tvboptim", axis_sizes(n))
    rng = random.Random(1)
    indices = [0, n - 1] + [rng.randrange(n) for _ in range(count - 2)]
    agree = all(
        np.array_equal(np.asarray(ours[i][name]), np.asarray(ref[i][name]))
        for i in indices
        for name in ("coupling", "delay", "noise", "dt")
    )
    return {"agree": agree, "indices": len(indices)}


def worker_main(spec: dict[str, Any]) -> None:
    """Run one measurement under the memory cap and print its result as JSON."""
    cap = int(spec["cap_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    kind = spec["kind"]
    if kind == "getitem":
        out = work_getitem(spec["impl"], spec["n"], spec["repeats"])
    elif kind == "iterate":
        out = work_iterate(spec["impl"], spec["n"], spec["count"])
    elif kind == "check":
        out = work_check(spec["n"], spec["count"])
    else:
        raise ValueError(f"unknown measurement {kind!r}")
    print("RESULT " + json.dumps(out), flush=True)


# ----------------------------------------------------------------------------
# the driver side (never imports JAX)
# ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """The result of one subprocess measurement, or why there is none."""

    data: dict[str, Any] | None
    failure: str | None = None


def run_worker(spec: dict[str, Any], timeout: float) -> Outcome:
    """Run one measurement in a fresh subprocess; classify OOM, timeout and errors."""
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Outcome(None, f"timeout > {timeout:.0f} s")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return Outcome(json.loads(line[len("RESULT "):]))
    cap_gb = spec["cap_bytes"] / GIB
    text = proc.stderr + proc.stdout
    killed = proc.returncode in (-signal.SIGKILL, -signal.SIGABRT, -signal.SIGSEGV)
    if killed or any(m in text for m in _OOM_MARKERS):
        return Outcome(None, f"OOM > {cap_gb:g} GiB cap")
    tail = text.strip().splitlines()[-1:] or ["(no output)"]
    return Outcome(None, f"error rc={proc.returncode}: {tail[0][:80]}")


def fmt_time(t: float) -> str:
    """A duration with a unit that keeps it short."""
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1.0:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def fmt_mem(b: float) -> str:
    """A byte count in MB (10^6 bytes)."""
    return f"{b / MB:.1f} MB" if b < 1e9 else f"{b / 1e9:.2f} GB"


def positive_int(text: str) -> int:
    """Parse ``1e8`` or ``100000000`` as an integer."""
    value = int(float(text))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-n", type=positive_int, default=10**9,
                   help="largest N for ours (power of ten, default 1e9)")
    p.add_argument("--max-ref-n", type=positive_int, default=10**8,
                   help="largest N for TVB-Optim (default 1e8: 1e9 needs ~23 GB, ~1 min)")
    p.add_argument("--repeats", type=positive_int, default=2000,
                   help="timed space[i] calls per N, ours (default 2000)")
    p.add_argument("--ref-repeats", type=positive_int, default=3,
                   help="timed space[i] calls per N, TVB-Optim (default 3)")
    p.add_argument("--iter-n", type=positive_int, default=10**5,
                   help="size of the space iterated over, a power of ten (default 1e5)")
    p.add_argument("--iter-count", type=positive_int, default=20_000,
                   help="combinations iterated (default 20000)")
    p.add_argument("--cap-gb", type=float, default=12.0,
                   help="address-space cap per subprocess, GiB (default 12)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds per subprocess (default 300)")
    return p.parse_args(argv)


def measure_refusals(repeats: int = 20) -> dict[str, float]:
    """Median seconds for each axis kind to refuse sizes that no grid holds."""
    import numpyro.distributions as dist

    from labeled_spaces import GridAxis, LogGridAxis, NumPyroAxis, UniformAxis

    makers = {
        "GridAxis": lambda n: GridAxis(0.0, 1.0, n),
        "LogGridAxis": lambda n: LogGridAxis(1.0, 2.0, n),
        "UniformAxis": lambda n: UniformAxis(0.0, 1.0, n),
        "NumPyroAxis": lambda n: NumPyroAxis(dist.Normal(0.0, 1.0), n),
    }
    out: dict[str, float] = {}
    for name, make in makers.items():
        times = []
        for n in [2**30, 10**20] * repeats:
            start = time.perf_counter()
            try:
                make(n)
            except ValueError:
                times.append(time.perf_counter() - start)
            else:
                raise AssertionError(f"{name}(n={n}) was not refused")
        out[name] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the table and the targets; exit 1 if a target fails."""
    args = parse_args(argv)
    cap = int(args.cap_gb * GIB)
    started = time.time()
    print(f"space_scaling.py  {time.strftime('%Y-%m-%d %H:%M')}  python {platform.python_version()}"
          f"  {os.cpu_count()} CPUs  cap {args.cap_gb:g} GiB/subprocess  "
          f"timeout {args.timeout:g} s", flush=True)
    print("load average at start (1/5/15 min): "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)

    check = run_worker({"kind": "check", "n": 1000, "count": 20, "cap_bytes": cap}, args.timeout)
    if check.data is None:
        print(f"consistency check failed to run: {check.failure}")
    else:
        same = "identical" if check.data["agree"] else "DIFFERENT"
        print(f"values of ours vs TVB-Optim at {check.data['indices']} indices (N=1e3): {same}")

    ns = [10**k for k in range(3, round(math.log10(args.max_n)) + 1)]
    rows: dict[int, dict[str, Outcome | None]] = {}
    for n in ns:
        rows[n] = {}
        for impl in IMPLS:
            if impl == "tvboptim" and n > args.max_ref_n:
                rows[n][impl] = None
                continue
            repeats = args.repeats if impl == "ours" else args.ref_repeats
            spec = {"kind": "getitem", "impl": impl, "n": n, "repeats": repeats,
                    "cap_bytes": cap}
            t0 = time.perf_counter()
            out = run_worker(spec, args.timeout)
            rows[n][impl] = out
            what = (f"{fmt_time(out.data['time'])}, +{fmt_mem(out.data['mem'])}"
                    if out.data else out.failure)
            print(f"  space[i]  N=1e{round(math.log10(n))}  {impl:<8} {what}"
                  f"  ({time.perf_counter() - t0:.1f} s wall)", flush=True)

    iters: dict[str, Outcome] = {}
    for impl in IMPLS:
        spec = {"kind": "iterate", "impl": impl, "n": args.iter_n, "count": args.iter_count,
                "cap_bytes": cap}
        iters[impl] = run_worker(spec, args.timeout)
        out = iters[impl]
        what = f"{fmt_time(out.data['time'])} per combination" if out.data else out.failure
        print(f"  iterate  {impl:<8} {what}", flush=True)

    # ---- the table ---------------------------------------------------------
    header = ["N", "ours time", "ours mem growth", "tvboptim time", "tvboptim mem growth",
              "ratio (tvboptim/ours time)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for n in ns:
        ours, ref = rows[n]["ours"], rows[n]["tvboptim"]
        cells = [f"1e{round(math.log10(n))}"]
        for out in (ours, ref):
            if out is None:
                cells += ["not run (N > --max-ref-n)", "—"]
            elif out.data is None:
                cells += [out.failure or "?", "—"]
            else:
                cells += [fmt_time(out.data["time"]), fmt_mem(out.data["mem"])]
        if ours and ours.data and ref and ref.data:
            cells.append(f"{ref.data['time'] / ours.data['time']:,.0f}×")
        else:
            cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    print()
    print(f"space[i]: median of {args.repeats} (ours) / {args.ref_repeats} (tvboptim) calls at "
          "random i after one warm-up call; mem growth = peak RSS - RSS before the calls")
    print("\n".join(lines))

    io, ir = iters["ours"], iters["tvboptim"]
    it_ratio = ir.data["time"] / io.data["time"] if io.data and ir.data else None
    print()
    print(f"iteration ({args.iter_count} combinations of a product space of "
          f"1e{round(math.log10(args.iter_n))}), per combination:")
    print("| ours | tvboptim | ratio (tvboptim/ours) |\n|---|---|---|")
    print(f"| {fmt_time(io.data['time']) if io.data else io.failure} "
          f"| {fmt_time(ir.data['time']) if ir.data else ir.failure} "
          f"| {f'{it_ratio:,.0f}×' if it_ratio else '—'} |")

    refusals = measure_refusals()
    print()
    print("refusing n = 2**30 or 1e20 (median per axis): "
          + ", ".join(f"{k} {fmt_time(v)}" for k, v in refusals.items()))

    # ---- targets -----------------------------------------------------------
    def verdict(ok: bool | None) -> str:
        return "NOT MEASURED" if ok is None else ("PASS" if ok else "FAIL")

    big = rows.get(TARGET_N, {}).get("ours")
    big_data = big.data if big else None
    t_ok = None if big_data is None else big_data["time"] < TARGET_TIME_S
    m_ok = None if big_data is None else big_data["mem"] < TARGET_MEM_BYTES
    i_ok = None if it_ratio is None else it_ratio >= TARGET_ITER_SPEEDUP
    print()
    print("targets:")
    t_val = fmt_time(big_data["time"]) if big_data else "—"
    m_val = fmt_mem(big_data["mem"]) if big_data else "—"
    print(f"  {verdict(t_ok):<12} space[i] at N=1e9 under 1 ms        (measured {t_val})")
    print(f"  {verdict(m_ok):<12} space[i] at N=1e9 under 50 MB growth (measured {m_val})")
    print(f"  {verdict(i_ok):<12} iteration >= 10x faster than tvboptim "
          f"(measured {f'{it_ratio:,.1f}x' if it_ratio else '—'})")
    print(f"\ntotal {time.time() - started:.0f} s; load average at end (1/5/15 min): "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0 if all(ok is not False for ok in (t_ok, m_ok, i_ok)) else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(json.loads(sys.argv[2]))
    else:
        sys.exit(main())

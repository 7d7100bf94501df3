"""Keys per combination (PointKey, KeyAxis) against the same sweep with one fixed key.

A stochastic Kuramoto network (``--nodes`` nodes, ``--steps`` Euler-Maruyama
steps in ``lax.scan``, its initial phases and noise drawn from a key) over a
``--size`` x ``--size`` product space of (coupling, replicate), run by
``ParallelExecution`` at its defaults (on CPU, a block whose scratch outgrows
the CPU's cache runs in batches whose scratch fits: with a key per
combination, 32 of the 256 lanes on a 32 MB cache). The sweeps differ only in
where the key comes from:

=====================  ===========================================================
fixed key              one ``jax.random.key(0)`` leaf: every combination gets the
                       same noise, and XLA draws it once for the whole block
fixed key, per point   one fixed key handed to every combination (a table of
                       ``N`` copies, gathered by position): drawn per combination
table of N keys        the keys PointKey gives, made by hand: a table of ``N``
                       keys, gathered by position
PointKey               ``PointKey()``, folded inside the block from the position
fixed key, per rep.    ``--size`` copies of one key as a DataAxis of replicates
table of n keys        the ``--size`` keys KeyAxis gives, by hand, as a DataAxis
KeyAxis                ``KeyAxis(size)`` as the replicate dimension
PointKey, one vmap     ``PointKey()`` with ``n_vmap`` = all the block's lanes: what
                       the default was before blocks whose scratch outgrows the
                       CPU's cache ran in cache-sized batches
=====================  ===========================================================

Every row is compared with the fixed key (the issue's anchor), and each kind
of key with the same keys made by hand, which gives bit for bit the same
results (checked before timing): what the keys machinery itself costs.
Different noise per combination is more work than one noise for all, whoever
makes the keys: XLA draws one key's noise once for the whole block, and the
same program runs faster when every lane holds the same numbers (the "per
point" and "per rep." rows: one fixed key, drawn per combination). Runs are
warm (compiled once first) and interleaved; ratios are medians of the ratios
within each round, which a shared machine's drifts hit alike.

Each run is timed by the wall clock and by the process's CPU time (all
threads). On a machine shared with other work the wall clock also counts the
time other processes hold the cores (measured: 3x the CPU time under a load
of 6 on 2 cores), so the verdicts use CPU time; the wall ratios are printed
beside them.

Targets: PointKey and KeyAxis at most 1.05 x the same keys made by hand
(``table of N keys``, ``table of n keys``), in CPU time. Their ratio to the
fixed key is printed beside them.

A second table runs the same sweeps with ``SequentialExecution`` (one
combination per call, compiled once), where every combination draws its own
noise whatever its key: there the fixed key is the anchor of the target, and
PointKey and KeyAxis must cost at most 1.05 x the fixed key. (Under
``ParallelExecution`` one fixed key's noise is drawn once per block of
hundreds of combinations, a different and smaller computation, so that ratio
measures the noise, not the keys.) Skipped for ``--model scalar``, whose
million combinations would take minutes one at a time.

``--model scalar`` swaps the network for a model that does almost nothing but
draw: one normal number per combination, added to its coupling (1,000 x 1,000
combinations by default). There the keys' own cost shows: a table gathers a
key, while PointKey hashes one (``fold_in``) per combination (its first fold
runs once per point of the first dimension) and KeyAxis one per replicate of
a block.

Usage::

    python benchmarks/keys.py                  # 32 nodes, 2,000 steps, 16 x 16 (2-3 min)
    python benchmarks/keys.py --model scalar   # one draw per combination, 1,000 x 1,000
    python benchmarks/keys.py --quick          # a smoke run, verdicts not enforced
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import labeled_spaces as ls
from labeled_spaces.examples import make_connectome, make_frequencies, order_parameter

TARGET = 1.05


def kuramoto(state, key, n_steps: int, dt: float = 0.01):
    """The Kuramoto network of ``labeled_spaces.examples``, drawing from ``key``."""
    weights, omega = state["weights"], state["omega"]
    coupling = state["coupling"] * state["spacing"]
    init_key, noise_key = jax.random.split(key)
    theta0 = jax.random.uniform(init_key, omega.shape, maxval=2 * jnp.pi)
    xi = jax.random.normal(noise_key, (n_steps, omega.shape[-1]))
    sqrt_dt = jnp.sqrt(jnp.float32(dt))

    def step(theta, x):
        sin, cos = jnp.sin(theta), jnp.cos(theta)
        drive = cos * (weights @ sin) - sin * (weights @ cos)
        theta = jnp.mod(theta + (omega + coupling * drive) * dt + 0.3 * sqrt_dt * x, 2 * jnp.pi)
        return theta, order_parameter(theta)

    _, r = jax.lax.scan(step, theta0, xi)
    return {"order": jnp.mean(r[n_steps // 5:])}


def scalar(state, key, n_steps: int):
    """One normal number per combination, added to its coupling: the draw is all it does."""
    del n_steps
    return {"order": state["coupling"] * state["spacing"] + 0.1 * jax.random.normal(key)}


MODELS = {"kuramoto": kuramoto, "scalar": scalar}


def keyed(model):
    """The sweeps' three models: ``model`` given the key from the state, a table or data."""

    def from_state(state, n_steps):
        """The key is the state's own leaf (a fixed key, a PointKey or a KeyAxis)."""
        return model(state, state["key"], n_steps)

    def from_table(state, n_steps):
        """The key is gathered from a table of one key per combination, by position."""
        size = state["replicate_count"]
        data = state["table"][state["coupling"] * size + state["replicate"]]
        return model(state, jax.random.wrap_key_data(data), n_steps)

    def from_data(state, n_steps):
        """The key is the value of a DataAxis of key data."""
        return model(state, jax.random.wrap_key_data(state["key"]), n_steps)

    return from_state, from_table, from_data


def sweeps(size: int, nodes: int, model=kuramoto) -> dict[str, tuple]:
    """``{name: (model, space)}``: the same sweep, the key from elsewhere."""
    common = {"weights": make_connectome(nodes), "omega": make_frequencies(nodes),
              "spacing": np.float32(2.0 / (size - 1)), "replicate_count": size,
              "coupling": ls.DataAxis(np.arange(size), name="coupling")}
    numbers = ls.DataAxis(np.arange(size), name="replicate")
    from_state, from_table, from_data = keyed(model)
    one = np.asarray(jax.random.key_data(jax.random.key(0)))
    positions = np.arange(size * size)
    point_keys = np.asarray(jax.vmap(lambda i, r: jax.random.key_data(jax.random.fold_in(
        jax.random.fold_in(jax.random.key(0), i), r)))(positions // size, positions % size))
    # the keys KeyAxis gives: its axis key is the Space's split for axis 1 of 2
    axis_key = jax.random.split(jax.random.key(0), 3)[2]
    replicate_keys = np.asarray(jax.random.key_data(ls.KeyAxis(size).keys(axis_key)))

    def space(**leaves):
        return ls.Space({**common, **leaves}, mode="product")

    return {
        "fixed key": (from_state, space(replicate=numbers, key=jax.random.key(0))),
        "fixed key, per point": (from_table, space(replicate=numbers,
                                                   table=np.tile(one, (size * size, 1)))),
        "table of N keys": (from_table, space(replicate=numbers, table=point_keys)),
        "PointKey": (from_state, space(replicate=numbers, key=ls.PointKey())),
        "fixed key, per rep.": (from_data, space(key=ls.DataAxis(np.tile(one, (size, 1)),
                                                                 name="replicate"))),
        "table of n keys": (from_data, space(key=ls.DataAxis(replicate_keys,
                                                             name="replicate"))),
        "KeyAxis": (from_state, space(key=ls.KeyAxis(size, name="replicate"))),
        "PointKey, one vmap": (from_state, space(replicate=numbers, key=ls.PointKey())),
    }


# the default n_vmap unless a row names its own: the whole block at once
N_VMAP = {"PointKey, one vmap": lambda size: size * size}


ANCHORS = {"PointKey": "table of N keys", "KeyAxis": "table of n keys"}


SEQUENTIAL = ("fixed key", "PointKey", "KeyAxis")


def ratio(times: dict[str, list[float]], name: str, anchor: str) -> float:
    """The median of ``name``'s time over ``anchor``'s, round by round."""
    return statistics.median(t / a for t, a in zip(times[name], times[anchor], strict=True))


def run(model, space: ls.Space, steps: int, n_vmap: int | None = None,
        sequential: bool = False) -> tuple[float, float, np.ndarray]:
    """Wall time, CPU time (all threads) and the results of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    if sequential:
        results = ls.SequentialExecution(model, space, n_steps=steps, progress=False).run()
    else:
        results = ls.ParallelExecution(model, space, n_steps=steps, progress=False,
                                       n_vmap=n_vmap).run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, results.to_xarray()["order"].transpose("coupling", "replicate").values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="kuramoto")
    parser.add_argument("--size", type=int, default=None,
                        help="couplings and replicates (16; 1,000 for --model scalar)")
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="a smoke run; no verdict")
    args = parser.parse_args()
    if args.size is None:
        args.size = 1000 if args.model == "scalar" else 16
    if args.quick:
        args.size, args.steps, args.repeats = 4, 200, 2
    by_name = sweeps(args.size, args.nodes, MODELS[args.model])

    # warm-up (compiles), and the keys are what they claim
    n_vmap = {name: N_VMAP[name](args.size) if name in N_VMAP else None for name in by_name}
    orders = {name: run(model, space, args.steps, n_vmap[name])[2] for name, (model, space) in
              by_name.items()}
    assert np.array_equal(orders["PointKey"], orders["table of N keys"])
    assert np.array_equal(orders["KeyAxis"], orders["table of n keys"])
    # cache-sized batches compute the same numbers as one vmap of the block, up to XLA's
    # rounding, which 2,000 chaotic steps amplify (measured: 4e-6 at most)
    np.testing.assert_allclose(orders["PointKey, one vmap"], orders["PointKey"], atol=1e-3)
    # a key per combination: every result differs (the scalar model's float32 sums of a
    # million draws may tie by chance: about 2% of them)
    distinct = len(np.unique(orders["PointKey"])) / args.size**2
    assert distinct == 1 or (args.model == "scalar" and distinct > 0.95), distinct
    assert np.all(orders["fixed key, per rep."] == orders["fixed key, per rep."][:, :1])

    wall: dict[str, list[float]] = {name: [] for name in by_name}
    cpu: dict[str, list[float]] = {name: [] for name in by_name}
    for _ in range(args.repeats):  # interleaved: drifts of a shared machine hit all alike
        for name, (model, space) in by_name.items():
            w, c, _ = run(model, space, args.steps, n_vmap[name])
            wall[name].append(w)
            cpu[name].append(c)

    what = (f"{args.nodes} nodes, {args.steps} steps" if args.model == "kuramoto"
            else "one draw per combination")
    print(f"{args.size} x {args.size} combinations, {what}, "
          f"{args.repeats} warm rounds; medians, ratios as CPU (wall)")
    print(f"{'sweep':<21} {'CPU':>8} {'wall':>8} {'/ fixed key':>16} {'/ by hand':>16}")
    failed = False
    for name in by_name:
        to_fixed = f"{ratio(cpu, name, 'fixed key'):.3f}x ({ratio(wall, name, 'fixed key'):.3f}x)"
        anchor = ANCHORS.get(name)
        shown, verdict = "", ""
        if anchor:
            by_hand = ratio(cpu, name, anchor)
            shown = f"{by_hand:.3f}x ({ratio(wall, name, anchor):.3f}x)"
            verdict = f" {'PASS' if by_hand <= TARGET else 'FAIL'} (<= {TARGET} x {anchor!r})"
            failed |= by_hand > TARGET
        print(f"{name:<21} {statistics.median(cpu[name]) * 1e3:>6.0f}ms "
              f"{statistics.median(wall[name]) * 1e3:>6.0f}ms {to_fixed:>16} {shown:>16}"
              f"{verdict}")
    if args.model == "kuramoto":
        failed |= sequential_table(by_name, args)
    return 1 if failed and not args.quick else 0


def sequential_table(by_name: dict[str, tuple], args: argparse.Namespace) -> bool:
    """The keyed sweeps one combination at a time against the fixed key; True if one fails."""
    for name in SEQUENTIAL:  # warm-up, and the same numbers as the parallel runs
        model, space = by_name[name]
        got = run(model, space, args.steps, sequential=True)[2]
        np.testing.assert_allclose(got, run(model, space, args.steps)[2], atol=1e-3)
    cpu: dict[str, list[float]] = {name: [] for name in SEQUENTIAL}
    wall: dict[str, list[float]] = {name: [] for name in SEQUENTIAL}
    for _ in range(args.repeats):
        for name in SEQUENTIAL:
            w, c, _ = run(*by_name[name], args.steps, sequential=True)
            wall[name].append(w)
            cpu[name].append(c)
    print("\nSequentialExecution (every combination draws its own noise), ratios as CPU (wall)")
    print(f"{'sweep':<21} {'CPU':>8} {'wall':>8} {'/ fixed key':>16}")
    failed = False
    for name in SEQUENTIAL:
        to_fixed, wall_ratio = ratio(cpu, name, "fixed key"), ratio(wall, name, "fixed key")
        verdict = "" if name == "fixed key" else (
            f" {'PASS' if to_fixed <= TARGET else 'FAIL'} (<= {TARGET} x 'fixed key')")
        failed |= to_fixed > TARGET
        print(f"{name:<21} {statistics.median(cpu[name]) * 1e3:>6.0f}ms "
              f"{statistics.median(wall[name]) * 1e3:>6.0f}ms "
              f"{f'{to_fixed:.3f}x ({wall_ratio:.3f}x)':>16}{verdict}")
    return failed


if __name__ == "__main__":
    sys.exit(main())

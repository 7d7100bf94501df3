"""ParallelExecution over several (forced host) devices gives the one-device results.

JAX fixes its device count when it starts, so the sweeps run in one subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``; it saves every result array
as .npy, and this process (one device) computes the reference and compares.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

import labeled_spaces as ls

SWEEP = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    import labeled_spaces as ls


    def state():
        # 7 x 3 = 21 combinations: not a multiple of any block below
        return {"a": ls.GridAxis(0.0, 1.0, 7), "b": ls.UniformAxis(-1.0, 2.0, 3), "c": 0.5,
                "w": np.arange(3.0, dtype=np.float32)}


    def model(s):
        # no multiply feeds an add: XLA on CPU contracts a * b + c into an FMA in some
        # block shapes and not in others, which would change the last bit with the layout
        x = jnp.sin(s["a"] * 3.0) * s["b"]
        return {"x": x, "ts": x * jnp.arange(4.0) * s["w"][1], "y": s["a"] + s["b"] - s["c"],
                "params": s}


    def space():
        return ls.Space(state(), mode="product", key=jax.random.key(11))


    CONFIGS = [dict(n_pmap=p, n_vmap=v, chunk_size=c)
               for p, v, c in ((1, 2, 5), (2, None, 5), (2, 2, None), (4, None, None), (4, 2, 7))]
    """
)

RUN = SWEEP + textwrap.dedent(
    """
    import sys
    from pathlib import Path

    out = Path(sys.argv[1])
    assert jax.device_count() == 4, jax.devices()
    devices_used = {}

    def watched(n_pmap):  # the model, as a Program that reports over how many devices
        def record(sharding):
            devices_used.setdefault(n_pmap, set()).add(len(sharding.device_set))

        def lane(call, axis_values, state_arrays, extra_arrays):
            jax.debug.inspect_array_sharding(axis_values[0], callback=record)
            return call(axis_values, state_arrays, extra_arrays)

        return ls.Program(lane)

    sp = space()
    for k, config in enumerate(CONFIGS):
        results = ls.ParallelExecution(model, sp, progress=False,
                                       program=watched(config["n_pmap"]), **config).run()
        for j, array in enumerate(results.arrays):
            np.save(out / f"{k}_{j}.npy", array)
        # padding never reaches the results, on any device
        for i in range(sp.N):
            got = jax.tree.leaves(results[i]["params"])
            want = jax.tree.leaves(sp[i])
            assert all(np.array_equal(g, w) for g, w in zip(got, want)), (config, i)

    # a cached program is reused only for arguments placed as it was compiled for
    def shift(s, w):
        return s["a"] + w[0]

    small = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
    for executor in (ls.SequentialExecution, ls.ParallelExecution):
        for device in (jax.devices()[1], jax.devices()[0]):
            w = jax.device_put(jnp.ones(2), device)
            values = executor(shift, small, w, progress=False).run().arrays[0]
            assert np.allclose(values, [1.0, 1.5, 2.0]), (executor, device, values)
    print({p: sorted(d) for p, d in devices_used.items()})
    """
)


def test_multidevice_results_equal_one_device(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    script = tmp_path / "sweep.py"
    script.write_text(RUN)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # every block was spread over as many devices as asked for
    assert proc.stdout.strip().splitlines()[-1] == "{1: [1], 2: [2], 4: [4]}"

    namespace: dict = {}
    exec(compile(SWEEP, "sweep", "exec"), namespace)  # the same model and space, here
    assert jax.device_count() >= 1
    reference = ls.ParallelExecution(namespace["model"], namespace["space"](),
                                     progress=False).run()
    assert reference.names == ["params.a", "params.b", "params.c", "params.w", "ts", "x", "y"]
    space = namespace["space"]()
    for i in range(space.N):  # the reference itself is right
        p = space[i]
        x = np.sin(np.float32(p["a"]) * 3.0) * p["b"]
        np.testing.assert_allclose(reference[i]["x"], x, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(reference[i]["ts"], x * np.arange(4.0), rtol=1e-5, atol=1e-6)
        assert reference[i]["y"] == p["a"] + p["b"] - np.float32(0.5)
    for k, config in enumerate(namespace["CONFIGS"]):
        for j, want in enumerate(reference.arrays):
            got = np.load(tmp_path / f"{k}_{j}.npy")
            assert got.shape == want.shape and got.dtype == want.dtype
            assert np.array_equal(got, want), (config, reference.names[j])

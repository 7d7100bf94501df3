"""Compiled programs: what is an argument, what is a constant, and when a program is reused."""

from __future__ import annotations

import dataclasses
import gc

import jax.numpy as jnp
import numpy as np
import pytest

import labeled_spaces as ls
from labeled_spaces._caches import ProgramCache
from labeled_spaces.execution.compiled import PROGRAMS

EXECUTORS = [ls.ParallelExecution, ls.SequentialExecution]


@dataclasses.dataclass
class Config:  # a plain dataclass: unhashable (eq=True), not a pytree
    gain: float


def scaled(state, config):
    return state["k"] * config.gain


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_new_unhashable_argument_never_gets_another_ones_program(executor):
    space = ls.Space({"k": ls.GridAxis(1.0, 2.0, 2)}, mode="product")
    gc.collect()
    seen = {}
    # a config dropped just before the next one is made usually leaves it its id
    for gain in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]:
        config = Config(gain)
        seen[id(config)] = seen.get(id(config), 0) + 1
        values = executor(scaled, space, config, progress=False).run().arrays[0]
        np.testing.assert_allclose(values, [gain, 2 * gain], rtol=1e-6)
        del config
    if max(seen.values()) == 1:  # the case this guards against did not arise
        pytest.skip("CPython reused no id in this run")


def test_hashable_constants_reuse_one_program_per_value():
    space = ls.Space({"k": ls.GridAxis(1.0, 2.0, 2)}, mode="product")

    def model(state, power):
        return state["k"] ** power

    ls.clear_caches()
    for power in (2, 3, 2, 3):
        values = ls.ParallelExecution(model, space, power, progress=False).run().arrays[0]
        np.testing.assert_allclose(values, [1.0, 2.0**power], rtol=1e-6)
    assert len(PROGRAMS) > 0
    ls.clear_caches()
    assert len(PROGRAMS) == 0


@pytest.mark.parametrize("executor", EXECUTORS)
def test_non_numeric_arrays_reach_the_model_as_constants(executor):
    regions = np.array(["lh-bankssts", "rh-bankssts"])
    start = np.array(["2024-01-01", "2024-03-01"], dtype="datetime64[D]")
    state = {"k": ls.GridAxis(1.0, 2.0, 2), "regions": regions}

    def model(state, start):
        assert isinstance(state["regions"], np.ndarray) and state["regions"][1] == "rh-bankssts"
        days = float((start[1] - start[0]).astype(int))
        return state["k"] * days * len(state["regions"])

    results = executor(model, ls.Space(state, mode="product"), start, progress=False).run()
    np.testing.assert_allclose(results.arrays[0], [120.0, 240.0])


def test_program_cache_keeps_no_model_alive():
    cache = ProgramCache("test")

    def model(x):
        return x

    cache.get(model, "key", lambda: 1)
    assert len(cache) == 1
    del model
    gc.collect()
    assert len(cache) == 0


def test_cache_keys_on_the_value_of_floats_and_strings():
    space = ls.Space({"k": ls.GridAxis(1.0, 2.0, 2)}, mode="product")

    def model(state, offset, label):
        return state["k"] + offset + (1.0 if label == "up" else -1.0)

    for offset, label, want in ((0.0, "up", [2.0, 3.0]), (-0.0, "down", [0.0, 1.0]),
                                (0.5, "up", [2.5, 3.5])):
        got = ls.ParallelExecution(model, space, offset, label, progress=False).run().arrays[0]
        np.testing.assert_allclose(got, want)
    assert jnp.asarray(0.0).dtype == jnp.float32

"""The execution core: options checked once, and one interrupt handler over the whole run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import labeled_spaces as ls
from labeled_spaces.execution.options import Options


def space():
    return ls.Space({"k": ls.GridAxis(0.0, 1.0, 4)}, mode="product")


def model(state):
    return state["k"] * 2


@pytest.mark.parametrize("typo, suggestion", [("overwrit", "overwrite"), ("progam", "program")])
@pytest.mark.parametrize("executor", [ls.SequentialExecution, ls.ParallelExecution,
                                      ls.DaskExecution])
def test_the_new_options_are_suggested_for_typos(executor, typo, suggestion):
    with pytest.raises(TypeError, match=rf"did you mean {suggestion}\?"):
        executor(model, space(), **{typo: True})


def test_options_are_one_checked_dataclass_read_as_attributes():
    executor = ls.ParallelExecution(model, space(), n_vmap=2, overwrite=True, store="s.zarr")
    assert executor.options == Options(n_vmap=2, overwrite=True, store="s.zarr")
    assert executor.n_vmap == 2 and executor.overwrite is True and executor.store == "s.zarr"
    with pytest.raises(ValueError, match="overwrite=True replaces a store"):
        Options(overwrite=True)  # results in memory have nothing to overwrite
    with pytest.raises(AttributeError, match="no attribute 'n_vmapp'"):
        executor.n_vmapp  # noqa: B018 - the attribute is the test
    with pytest.raises(TypeError, match="progress must be"):
        Options(progress="yes")


@pytest.mark.parametrize("executor", [ls.SequentialExecution, ls.ParallelExecution,
                                      ls.DaskExecution])
def test_ctrl_c_while_the_model_is_traced_is_an_interrupt_with_partial(executor, tmp_path):
    # the whole run sequence, tracing included, sits inside the one interrupt handler
    def interrupted(state):
        raise KeyboardInterrupt

    with pytest.raises(ls.Interrupted) as info:
        executor(interrupted, space(), progress=False, store=tmp_path / "s.zarr").run()
    assert info.value.partial is None  # nothing had started
    assert not (tmp_path / "s.zarr").exists()


def test_n_vmap_above_chunk_size_warns_at_the_users_line_that_they_may_be_swapped():
    # n_vmap batches inside a block of chunk_size combinations: above it, it does nothing
    with pytest.warns(UserWarning, match=r"n_vmap=64 is more than chunk_size=4: .* n_vmap does "
                                         r"nothing; did you mean n_vmap=4, chunk_size=64\?") as got:
        executor = ls.ParallelExecution(model, space(), n_vmap=64, chunk_size=4, progress=False)
    assert got[0].filename == __file__
    with pytest.warns(UserWarning, match=r"n_vmap=64 is more than chunk_size=4"):
        ls.ParallelExecution(model, space(), n_vmap=np.int64(64), chunk_size=4)  # any integer
    plain = ls.ParallelExecution(model, space(), chunk_size=4, progress=False)
    assert executor.explain().lanes == plain.explain().lanes == 4  # the same blocks either way
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n_vmap up to chunk_size is what it is for
        ls.ParallelExecution(model, space(), n_vmap=4, chunk_size=4)
        ls.ParallelExecution(model, space(), n_vmap=2, chunk_size=4)
        ls.ParallelExecution(model, space(), n_vmap=64)


@pytest.mark.parametrize("executor", [ls.SequentialExecution, ls.ParallelExecution])
def test_a_key_axis_the_model_never_reads_is_warned_about(executor):
    # the examples' kuramoto reads state["key"]: a KeyAxis put at "seed" gave replicates that
    # were all equal, which read like a finished sweep with no noise spread
    import jax

    def noisy(state):
        return state["k"] + jax.random.uniform(state["key"])

    misplaced = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "key": jax.random.key(0),
                          "seed": ls.KeyAxis(4, name="replicate")}, mode="product")
    with pytest.warns(UserWarning, match=r"no output of the model depends on the KeyAxis at "
                      r"'seed' in the state: every replicate along 'replicate' gets the same "
                      r"results. Put it where the model reads its key \(the state holds the "
                      r"keys \['k', 'key', 'seed'\]\)") as got:
        results = executor(noisy, misplaced, progress=False).run()
    assert got[0].filename == __file__
    assert float(results.to_xarray()["result"].std("replicate").max()) == 0.0  # as it warned
    read = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "key": ls.KeyAxis(4)}, mode="product")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a key the model reads, or a traced-away use: silent
        executor(noisy, read, progress=False).run()
        executor(lambda s: s["k"] + 0 * jax.random.uniform(s["key"]), read, progress=False).run()
        # a KeyAxis as the replicate dimension of a PointKey: the point keys vary along it
        points = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "key": ls.PointKey(),
                           "r": ls.KeyAxis(2)}, mode="product")
        executor(noisy, points, progress=False).run()
        # a PointKey the model does not read is no KeyAxis: nothing to say
        unread = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "key": ls.PointKey()}, mode="product")
        executor(lambda s: s["k"] * 2, unread, progress=False).run()
    wide = {**{f"p{i:02d}": float(i) for i in range(30)}, "k": ls.GridAxis(0.0, 1.0, 3),
            "key": jax.random.key(0), "seed": ls.KeyAxis(2)}
    with pytest.warns(UserWarning, match=r"the keys \['p00', 'p01', 'p02', 'p03', 'p04', 'p05', "
                      r"\.\.\., 'p27', 'p28', 'p29', 'k', 'key', 'seed'\]\)$"):
        executor(noisy, ls.Space(wide, mode="product"), progress=False).run()  # a long state
    ls.clear_caches()  # traced anew: the warning, made an error by the user, stays itself
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="no output of the model depends on the KeyAxis"):
            executor(noisy, misplaced, progress=False).run()

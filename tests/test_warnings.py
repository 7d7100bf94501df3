"""Every warning points at the user's line, however deep in the package it was given.

A fixed ``stacklevel`` is right for one call path only: the same warning
reached through ``run()``, ``explain()``, ``open_results`` or a sub-space
pointed into the package. ``warn_user`` finds the first frame outside it.
"""

from __future__ import annotations

import sys
import warnings

import jax.numpy as jnp
import pytest

import labeled_spaces as ls
from labeled_spaces._checks import user_stacklevel, warn_user


def caught(action):
    """The warnings ``action()`` gives, each once."""
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        action()
    return found


def model(state):
    return {"y": state["a"] * jnp.ones(3)}


def wide(state):  # 4 kB per combination
    return state["a"] * jnp.ones(1000)


def zipped():
    return ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.GridAxis(0.0, 1.0, 4)})


CASES = {
    "a Sobol n that is not a power of two": lambda: ls.Space(
        {"a": ls.UniformAxis(0.0, 1.0, 10)}, mode="sobol"),
    "zipped axes of different sizes": zipped,
    "a group of different sizes": lambda: ls.Space(
        {"a": ls.GridAxis(0.0, 1.0, 3, group="g"), "b": ls.GridAxis(0.0, 1.0, 4, group="g")},
        mode="product"),
    "collect padding": lambda: ls.Space({"a": ls.GridAxis(0.0, 1.0, 6)}).collect(n_vmap=4),
    "max_memory below one combination, run()": lambda: ls.ParallelExecution(
        wide, ls.Space({"a": ls.GridAxis(0.0, 1.0, 8)}), max_memory=100, progress=False).run(),
    "max_memory below one combination, explain()": lambda: ls.ParallelExecution(
        wide, ls.Space({"a": ls.GridAxis(0.0, 1.0, 8)}), max_memory=100,
        progress=False).explain(),
    "n_vmap='auto' that fits nothing": lambda: ls.ParallelExecution(
        model, ls.Space({"a": ls.GridAxis(0.0, 1.0, 64)}), n_vmap="auto", chunk_size=64,
        max_memory=1000, progress=False).explain(),
}


@pytest.mark.parametrize("action", CASES.values(), ids=CASES.keys())
def test_a_warning_points_at_the_line_of_the_user_that_caused_it(action):
    found = [w for w in caught(action) if issubclass(w.category, UserWarning)]
    assert found, "the case gives a warning"
    for warning in found:
        assert warning.filename == __file__, (warning.filename, str(warning.message))


def test_resuming_with_an_untraceable_model_warns_at_the_users_line(tmp_path):
    path = tmp_path / "s.zarr"
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 4)})
    ls.SequentialExecution(model, space, progress=False, store=path, jit=False).run()
    found = caught(lambda: ls.SequentialExecution(model, space, progress=False, store=path,
                                                  jit=False).run())
    assert [w.filename for w in found if "could not be traced" in str(w.message)] == [__file__]


def test_a_file_is_opened_without_repeating_the_spaces_own_warnings(tmp_path):
    with pytest.warns(UserWarning):  # when they are built
        spaces = {"sobol.nc": ls.Space({"a": ls.UniformAxis(0.0, 1.0, 10)}, mode="sobol"),
                  "zip.nc": zipped()}
    for name, space in spaces.items():
        ls.ParallelExecution(model, space, progress=False).run().to_xarray().to_netcdf(
            tmp_path / name)
        found = caught(lambda name=name: ls.open_results(tmp_path / name))
        assert not [str(w.message) for w in found if issubclass(w.category, UserWarning)]
    # building the space again still warns: the user asked for it
    assert any("power of 2" in str(w.message) for w in caught(
        lambda: ls.Space({"a": ls.UniformAxis(0.0, 1.0, 10)}, mode="sobol")))


def test_user_stacklevel_counts_the_frames_inside_the_package():
    def here():  # a frame of this file: outside the package
        return user_stacklevel()

    assert here() == 1
    line = sys._getframe().f_lineno + 1
    found = caught(lambda: warn_user("careful", RuntimeWarning))
    assert [(w.filename, w.lineno, w.category) for w in found] == [
        (__file__, line, RuntimeWarning)]


def test_a_warning_from_a_model_without_a_file_points_at_the_model_not_into_jax():
    # an IPython cell (or exec, python -c) has a '<...>' filename: the package calls the model,
    # but its frame is the user's; counted as the package's, the walk ended inside JAX
    cell = "def model(state):\n    warn_user('from the cell')\n    return state['a']\n"
    names = {"warn_user": warn_user, "__name__": "__main__"}
    exec(compile(cell, "<ipython-input-3-1f2e>", "exec"), names)
    for executor in (ls.ParallelExecution, ls.SequentialExecution):
        found = [w for w in caught(lambda executor=executor: executor(
            names["model"], ls.Space({"a": ls.GridAxis(0.0, 1.0, 3)}), progress=False).run())
            if str(w.message) == "from the cell"]
        assert found and {(w.filename, w.lineno) for w in found} == {("<ipython-input-3-1f2e>", 2)}


def test_a_rebuild_in_another_thread_silences_nothing_here_and_leaves_nothing_behind():
    import threading

    from labeled_spaces.space.discovery import rebuilding

    inside, done = threading.Event(), threading.Event()

    def rebuild():
        with rebuilding():
            inside.set()
            done.wait(10)

    worker = threading.Thread(target=rebuild)
    worker.start()
    try:
        assert inside.wait(10)
        # while another thread rebuilds a space, this one's warnings are its own
        with warnings.catch_warnings():  # overlapping filter contexts, as in a thread pool
            during = caught(zipped)
    finally:
        done.set()
        worker.join(10)
    after = caught(zipped)
    for found in (during, after):
        assert [str(w.message)[:28] for w in found] == ["in zip mode the axes have di"]
    assert not [f for f in warnings.filters if f[0] == "ignore" and f[1] is not None
                and "zip mode" in f[1].pattern]

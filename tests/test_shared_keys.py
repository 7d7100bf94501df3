"""Two PointKeys of a state give the same key: a Space says so when it is built.

A PointKey is one key per combination, not per leaf (API.md: the Space's key
folded with the combination's positions), so a second PointKey for an
"independent" stream silently gives the same noise. Two KeyAxis differ (each
folds into its own axis key), so they are not warned of.
"""

from __future__ import annotations

import json
import warnings

import jax
import pytest

from labeled_spaces import GridAxis, KeyAxis, PointKey, Space
from labeled_spaces.space.shared_keys import SHARED_KEYS


def built(state, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        space = Space(state, **kwargs)
    return space, [w for w in caught if str(w.message).startswith(SHARED_KEYS)]


@pytest.mark.parametrize("mode", ["product", "zip", "sobol"])
def test_two_point_keys_give_the_same_key_and_one_warning_naming_them(mode):
    space, caught = built({"a": GridAxis(0.0, 1.0, 4), "k": PointKey(), "k2": PointKey()},
                          mode=mode)
    for i in range(len(space)):
        assert bool(space[i]["k"] == space[i]["k2"])  # what the warning is about
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("PointKeys at 'k' and 'k2' give the same key at every combination")
    assert "jax.random.split(key)" in message and "jax.random.fold_in(key, j)" in message
    assert caught[0].filename == __file__


def test_three_point_keys_are_named_by_their_paths():
    _, caught = built({"a": GridAxis(0.0, 1.0, 2), "n": [PointKey(), {"x": PointKey()}],
                       "z": PointKey()})
    assert str(caught[0].message).startswith("PointKeys at 'n[0]', 'n[1].x' and 'z' give")


@pytest.mark.parametrize("state", [
    {"a": GridAxis(0.0, 1.0, 3), "k": PointKey()},
    {"a": GridAxis(0.0, 1.0, 3), "s1": KeyAxis(3), "s2": KeyAxis(3)},
    {"s1": KeyAxis(3, group="g"), "s2": KeyAxis(3, group="g"), "a": GridAxis(0.0, 1.0, 3)},
], ids=["one PointKey", "two KeyAxis", "two KeyAxis in a group"])
@pytest.mark.parametrize("mode", ["product", "zip"])
def test_key_leaves_that_differ_are_not_warned_of(state, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space = Space(state, mode=mode)
    axes = [k for k in state if isinstance(state[k], KeyAxis)]
    if len(axes) == 2:  # they really differ, at every combination
        for i in range(len(space)):
            assert not bool(space[i][axes[0]] == space[i][axes[1]])


def test_sub_spaces_and_a_rebuilt_space_do_not_repeat_the_warning():
    space, caught = built({"a": GridAxis(0.0, 1.0, 4), "k": PointKey(), "k2": PointKey()},
                          mode="product", key=jax.random.key(3))
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parts = [space[1:3], space.isel(a=[0, 2]), space.sel(a=1.0, method="nearest"),
                 Space.from_attrs(json.loads(json.dumps(space.attrs)))]
    assert bool(parts[0][0]["k"] == space[1]["k"])


def test_sensitivity_warns_once_whether_given_a_state_or_a_space():
    from labeled_spaces import UniformAxis, sensitivity

    def model(s):
        return s["x"] + jax.random.uniform(s["k"]) + jax.random.uniform(s["k2"])

    state = {"x": UniformAxis(0.0, 1.0, 2), "y": UniformAxis(0.0, 1.0, 2), "k": PointKey(),
             "k2": PointKey()}
    space, caught = built(state)
    assert len(caught) == 1  # building the Space
    for given, want in ((space, 0), (state, 1)):  # a state was never built into a Space
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            sensitivity(model, given, n=8, progress=False)
        assert len([w for w in seen if str(w.message).startswith(SHARED_KEYS)]) == want

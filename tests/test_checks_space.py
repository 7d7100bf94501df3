"""Where a Space is expected, one check: a state or a bare axis gets told which Space to build."""

from __future__ import annotations

from typing import NamedTuple

import pytest

import labeled_spaces as ls
from labeled_spaces.space import check_space

AXIS_HINT = (r'got GridAxis\(low=0, high=1, n=5\) \(GridAxis\); build a Space from a state '
             r'that holds the axis first: Space\(\{"x": axis\}\) \(zip mode\) or '
             r'Space\(\{"x": axis\}, mode="product"\)$')
STATE_HINT = r'; build a Space from the state first: Space\(state\) \(zip mode\) or ' \
             r'Space\(state, mode="product"\)$'


def model(state):
    return state


class State(NamedTuple):
    k: ls.GridAxis


@pytest.mark.parametrize(("call", "argname"), [
    (lambda space: ls.ParallelExecution(model, space), "space"),
    (lambda space: ls.SequentialExecution(model, space), "statespace"),
    (lambda space: ls.DaskExecution(model, space), "space"),
    (lambda space: ls.gradients(model, space), "space"),
], ids=["parallel", "sequential", "dask", "gradients"])
def test_an_axis_where_a_space_belongs_gets_the_hint(call, argname):
    with pytest.raises(TypeError, match=rf"^{argname} must be a labeled_spaces\.Space, "
                                        + AXIS_HINT):
        call(ls.GridAxis(0, 1, 5))
    with pytest.raises(TypeError, match=STATE_HINT):
        call({"k": ls.GridAxis(0, 1, 5)})


@pytest.mark.parametrize("call", [
    lambda space: ls.refine(model, space, n=10),
    lambda space: ls.fit(model, space),
], ids=["refine", "fit"])
def test_an_axis_where_refine_or_fit_expect_a_space_gets_the_hint(call):
    with pytest.raises(TypeError, match=AXIS_HINT):
        call(ls.GridAxis(0, 1, 5))


def test_any_state_with_an_axis_gets_the_state_hint():
    for state in ([ls.GridAxis(0, 1, 5)], State(ls.GridAxis(0, 1, 5))):
        with pytest.raises(TypeError, match=STATE_HINT):
            check_space(state)


def test_other_values_are_named_without_a_hint_and_cut_short():
    with pytest.raises(TypeError, match=r"^space must be a labeled_spaces\.Space, got 3 \(int\)$"):
        check_space(3)
    with pytest.raises(TypeError) as caught:
        check_space("x" * 10_000, "statespace")
    message = str(caught.value)
    assert message.startswith("statespace must be a labeled_spaces.Space, got 'xxx")
    assert message.endswith("... (str)") and len(message) < 200


def test_a_space_is_returned_as_it_is():
    space = ls.Space({"k": ls.GridAxis(0, 1, 5)})
    assert check_space(space) is space

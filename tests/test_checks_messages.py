"""Messages count in words ("1 value", not "1 values") and show a huge value cut short."""

from __future__ import annotations

import numpy as np
import pytest

import labeled_spaces as ls
from labeled_spaces._checks import fail
from labeled_spaces.grid import Blocks

HUGE = list(range(100_000))
SHORT = r"\[0, 1, 2, 3, .*\.\.\."  # the start of HUGE's repr, then where it was cut


def model(state):
    return state["k"] * np.ones(3)


def space():
    return ls.Space({"k": ls.GridAxis(0.0, 1.0, 2)}, mode="product")


@pytest.mark.parametrize(("call", "expected"), [
    (lambda: fail("n", "an integer", HUGE, TypeError), rf"^n must be an integer, got {SHORT}$"),
    (lambda: ls.GridAxis(0, 1, HUGE), rf"^n must be an integer, got {SHORT} \(list\)$"),
    (lambda: ls.DataAxis(np.arange(3.0), labels=HUGE),
     rf"^labels must be 1-D with one label per value \(3\), got {SHORT} of shape \(100000,\)$"),
    (lambda: ls.Space({"k": ls.GridAxis(0, 1, 2)}, mode="x" * 10_000),
     r"^mode must be 'product' or 'zip', got 'xxx.*\.\.\.; or a quasi-random design"),
    (lambda: ls.Space({"k": ls.GridAxis(0, 1, 2)}, key=HUGE),
     rf"^key must be a jax\.random\.key\(\.\.\.\) or jax\.random\.PRNGKey\(\.\.\.\), got {SHORT} "
     r"\(list\)$"),
    (lambda: ls.ParallelExecution(model, space(), n_vmapp=HUGE),
     rf"^ParallelExecution got the keyword n_vmapp={SHORT}, which is neither"),
    (lambda: space().isel(k=HUGE), rf"^isel: k={SHORT}: index 2 is out of bounds"),
    (lambda: space().sel(k=HUGE), rf"^sel could not find \{{'k': {SHORT}: not all values"),
], ids=["fail", "n", "labels", "mode", "key", "keyword", "isel", "sel"])
def test_a_huge_value_is_shown_cut_short(call, expected):
    with pytest.raises((TypeError, ValueError, IndexError, KeyError)) as caught:
        call()
    message = str(caught.value) if not isinstance(caught.value, KeyError) else \
        caught.value.args[0]
    assert len(message) < 400, len(message)
    assert "\n" not in message
    assert caught.match(expected)


def test_one_thing_is_counted_in_the_singular():
    point = ls.Space({"k": ls.GridAxis(0.0, 1.0, 1)})
    with pytest.raises(IndexError, match=r"out of range for a space of 1 combination$"):
        point[1]
    assert repr(Blocks((1,), (1,))).endswith(", 1 block)")
    with pytest.raises(IndexError, match=r"^block 3 is out of range for 1 block$"):
        Blocks((1,), (1,))[3]
    assert "<1 point of shape (2,), float" in repr(ls.DataAxis(np.zeros((1, 2))))
    with pytest.raises(ValueError, match=r"has 1 value along 'result_dim_0', but the outputs "
                                         r"have 3 points there"):
        ls.ParallelExecution(model, space(), output_coords={"result_dim_0": [0.0]},
                             progress=False).run()

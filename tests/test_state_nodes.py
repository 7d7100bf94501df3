"""A state of classes a file cannot rebuild: reopened as a dict, with a warning that says so.

A file is data: it may name the NamedTuple, dataclass or pytree node class a
state was made of, but opening it never imports one. ``open_results(path)``
then gives the state back as an ``OrderedDict`` of its leaves by path and
warns, once, naming the class and its fields; ``open_results(path,
state=...)`` gives back the state's own classes.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections import OrderedDict, defaultdict
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from labeled_spaces import GridAxis, ParallelExecution, PointKey, Space, open_results
from labeled_spaces._schema import NODES_ATTR
from labeled_spaces.space.state_nodes import REBUILT_AS_DICT


class P(NamedTuple):
    a: Any
    k: Any


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class D:
    a: Any
    dt: Any


class E(eqx.Module):
    a: Any
    dt: float


@jax.tree_util.register_pytree_node_class
class C:
    def __init__(self, a: Any, dt: Any) -> None:
        self.a, self.dt = a, dt

    def tree_flatten(self):
        return (self.a, self.dt), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


class K:  # a node with key paths
    def __init__(self, a: Any, dt: Any) -> None:
        self.a, self.dt = a, dt


jax.tree_util.register_pytree_with_keys(
    K, lambda k: (((jax.tree_util.GetAttrKey("a"), k.a), (jax.tree_util.GetAttrKey("dt"), k.dt)),
                  None),
    lambda aux, children: K(*children))


def grid() -> GridAxis:
    return GridAxis(0.0, 1.0, 3)


# state, what the warning names, the paths the dict holds
CASES = {
    "NamedTuple": (lambda: P(grid(), PointKey()), "was a NamedTuple 'P' (fields a, k)",
                   ["a", "k"]),
    "dataclass": (lambda: D(grid(), 0.1), "was a dataclass 'D' (fields a, dt)", ["a", "dt"]),
    "equinox Module": (lambda: E(grid(), 0.1), "was an equinox Module 'E' (fields a, dt)",
                       ["a", "dt"]),
    "pytree node": (lambda: C(grid(), 0.1), "was a pytree node 'C' (fields 0, 1)", ["0", "1"]),
    "pytree node with keys": (lambda: K(grid(), 0.1), "was a pytree node 'K' (fields a, dt)",
                              ["a", "dt"]),
    "defaultdict": (lambda: defaultdict(list, {"a": grid(), "dt": 0.1}),
                    "was a defaultdict 'defaultdict' (fields a, dt)", ["a", "dt"]),
    "dict with tuple keys": (lambda: {("a", 1): grid(), ("dt", 2): 0.1},
                             "was a dict with keys other than str and int 'dict'", None),
    "nested": (lambda: {"p": P(grid(), 0.1), "q": [D(0.2, 0.3)]},
               "held a NamedTuple 'P' (fields a, k) at 'p', a dataclass 'D' (fields a, dt) "
               "at 'q[0]'", ["p.a", "p.k", "q[0].a", "q[0].dt"]),
}


def reopened(state: Any, **kwargs: Any) -> tuple[Space, list[warnings.WarningMessage]]:
    attrs = json.loads(json.dumps(Space(state, mode="product").attrs))  # as a file holds them
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        space = Space.from_attrs(attrs, **kwargs)
    return space, caught


@pytest.mark.parametrize("make, named, paths", CASES.values(), ids=CASES.keys())
def test_a_state_of_classes_comes_back_as_a_dict_with_one_warning_naming_them(make, named,
                                                                             paths):
    space, caught = reopened(make())
    assert [str(w.message).startswith(REBUILT_AS_DICT) for w in caught] == [True]
    message = str(caught[0].message)
    assert message.startswith(f"{REBUILT_AS_DICT}{named}"), message
    assert "open_results(path, state=" in message
    assert type(space.state) is OrderedDict
    if paths is not None:
        assert list(space.state) == paths
    assert caught[0].filename == __file__  # pointed at the line that opened it


@pytest.mark.parametrize("make", [c[0] for c in CASES.values()], ids=CASES.keys())
def test_the_state_given_back_is_its_own_classes_without_a_warning(make, assert_tree_equal):
    state = make()
    original = Space(state, mode="product")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space = Space.from_attrs(json.loads(json.dumps(original.attrs)), state=make())
    assert jax.tree.structure(space.state) == jax.tree.structure(state)
    for i in range(len(original)):
        assert_tree_equal(*(jax.tree.map(_data, s[i]) for s in (space, original)))


def _data(leaf: Any) -> Any:
    keys = isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)
    return jax.random.key_data(leaf) if keys else leaf


def test_the_warning_names_the_namedtuple_to_pass_back():
    _, caught = reopened(P(grid(), PointKey()))
    assert "open_results(path, state=P(...))" in str(caught[0].message)


def test_a_state_of_dicts_lists_and_tuples_opens_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space = Space.from_attrs(Space({"a": grid(), "b": [0.1, (0.2, None)]}).attrs)
    assert space.state["b"] == [0.1, (0.2, None)]


def test_many_nodes_are_named_up_to_four():
    state = [P(grid(), 0.1)] + [P(0.1 * j, 0.2) for j in range(6)]
    _, caught = reopened(state)
    message = str(caught[0].message)
    assert message.count("a NamedTuple 'P'") == 4 and "at '[3]', ..." in message


def test_a_file_written_before_the_nodes_were_recorded_still_warns():
    attrs = Space(P(grid(), 0.1), mode="product").attrs
    del attrs[NODES_ATTR]
    with pytest.warns(UserWarning, match="held a node other than a dict, list or tuple"):
        Space.from_attrs(attrs)


@pytest.mark.parametrize("entry", ["[1, {\"path\": 3}]", "{\"a\": 1}", "[{\"path\": \"\", "
                                   "\"kind\": \"NamedTuple\", \"type\": \"os.system\", "
                                   "\"fields\": [\"rm -rf\"]}]"])
def test_the_recorded_nodes_are_only_shown_never_imported(entry):
    attrs = Space(P(grid(), 0.1), mode="product").attrs
    attrs[NODES_ATTR] = entry
    with pytest.warns(UserWarning, match=REBUILT_AS_DICT) as caught:
        space = Space.from_attrs(attrs)
    assert type(space.state) is OrderedDict
    assert len([w for w in caught if REBUILT_AS_DICT in str(w.message)]) == 1


def model(state: P) -> jax.Array:
    return state.a + jax.random.uniform(state.k)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_namedtuple_state_warns_once_per_open_and_comes_back_when_passed(tmp_path, suffix):
    state = P(grid(), PointKey())
    space = Space(state, mode="product")
    path = tmp_path / f"nt{suffix}"
    if suffix == ".zarr":
        run = ParallelExecution(model, space, progress=False, store=path).run()
    else:
        run = ParallelExecution(model, space, progress=False).run()
        run.to_netcdf(path)
    for _ in range(2):  # each open says it again
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plain = open_results(path)
        assert [REBUILT_AS_DICT in str(w.message) for w in caught] == [True]
        assert "NamedTuple 'P' (fields a, k)" in str(caught[0].message)
    assert type(plain.space[0]) is OrderedDict
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given = open_results(path, state=P(grid(), PointKey()))
    assert type(given.space[0]) is P
    again = ParallelExecution(model, given.space, progress=False).run()
    np.testing.assert_array_equal(again.to_xarray()["result"], run.to_xarray()["result"])
    assert jnp.array_equal(jax.random.key_data(given.space[1].k),
                           jax.random.key_data(space[1].k))

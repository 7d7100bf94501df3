"""Label → position: sel by group members, on unsorted labels, and flat slices that concatenate."""

from __future__ import annotations

import jax
import numpy as np
import numpyro.distributions as dist
import pytest
import xarray as xr

from labeled_spaces import (
    DataAxis,
    GridAxis,
    NumPyroAxis,
    SelectionError,
    Space,
    UniformAxis,
)

KEY = jax.random.key(5)


def grouped_space() -> Space:
    return Space(
        {"a": GridAxis(0.0, 1.0, 5, group="g"), "b": GridAxis(10.0, 50.0, 5, group="g"),
         "c": GridAxis(0.0, 1.0, 2)},
        mode="product",
    )


def test_sel_by_several_members_of_a_group_that_agree():
    space = grouped_space()
    both = space.sel(a=0.5, b=30.0)
    assert both.sizes == {"c": 2}
    assert float(both.coords["a"]) == 0.5 and float(both.coords["b"]) == 30.0
    assert int(both.coords["g"]) == 2
    picked = space.sel(a=[0.25, 0.75], b=[20.0, 40.0])
    assert picked.coords["g"].values.tolist() == [1, 3]
    assert picked.coords["b"].values.tolist() == [20.0, 40.0]
    nearest = space.sel(a=0.26, b=19.0, method="nearest")
    assert int(nearest.coords["g"]) == 1


def test_sel_by_members_of_a_group_that_disagree_names_both():
    space = grouped_space()
    with pytest.raises(SelectionError, match=r"sel a=0\.5 and b=40\.0 pick different points "
                       r"of dimension 'g' \(positions 2 and 3\)"):
        space.sel(a=0.5, b=40.0)
    zipped = Space({"x": GridAxis(0.0, 1.0, 3), "y": GridAxis(5.0, 7.0, 3)})
    with pytest.raises(SelectionError, match=r"x=\[0\.5\] and y=\[7\.0\] pick different "
                       r"points of dimension 'sample'"):
        zipped.sel(x=[0.5], y=[7.0])
    assert zipped.sel(x=[0.5], y=[6.0]).coords["sample"].values.tolist() == [1]


UNSORTED = {
    "uniform": lambda: UniformAxis(0.0, 1.0, 8),
    "numpyro": lambda: NumPyroAxis(dist.Normal(0.5, 0.3), 8),
    "data": lambda: DataAxis([0.7, 0.1, 0.4, 0.95, 0.2, 0.55, 0.3, 0.8]),
}


def unsorted_space(kind: str) -> tuple[Space, np.ndarray]:
    space = Space({"x": UNSORTED[kind](), "c": GridAxis(0.0, 1.0, 2)}, mode="product", key=KEY)
    labels = space.coords["x"].values
    assert not (np.all(np.diff(labels) > 0) or np.all(np.diff(labels) < 0))  # really unsorted
    return space, labels


@pytest.mark.parametrize("kind", list(UNSORTED))
def test_label_slices_on_unsorted_labels_keep_the_draw_order(kind, assert_tree_equal):
    space, labels = unsorted_space(kind)
    lo, hi = np.quantile(labels, [0.25, 0.75])
    sub = space.sel(x=slice(lo, hi))
    keep = np.flatnonzero((labels >= lo) & (labels <= hi))
    np.testing.assert_array_equal(sub.coords["x"].values, labels[keep])
    assert sub.dims == ("c", "x") and sub.sizes == {"c": 2, "x": len(keep)}
    assert_tree_equal(sub[len(keep) + 1], space[len(labels) + keep[1]])  # c=1, second kept
    # open ends
    np.testing.assert_array_equal(space.sel(x=slice(None, lo)).coords["x"].values,
                                  labels[labels <= lo])
    np.testing.assert_array_equal(space.sel(x=slice(hi, None)).coords["x"].values,
                                  labels[labels >= hi])


@pytest.mark.parametrize("kind", list(UNSORTED))
def test_inexact_methods_on_unsorted_labels(kind):
    space, labels = unsorted_space(kind)
    target = float(np.median(labels)) + 1e-3
    nearest = int(np.argmin(np.abs(labels - target)))
    below = labels <= target
    pad = int(np.flatnonzero(below)[np.argmax(labels[below])])
    backfill = int(np.flatnonzero(~below)[np.argmin(labels[~below])])
    assert space.sel(x=target, method="nearest").coords["x"].item() == labels[nearest]
    for method, want in (("pad", pad), ("ffill", pad), ("backfill", backfill),
                         ("bfill", backfill)):
        assert space.sel(x=target, method=method).coords["x"].item() == labels[want], method
    # a list keeps the order it was asked in
    picked = space.sel(x=[labels[5] + 1e-6, labels[0] - 1e-6], method="nearest")
    np.testing.assert_array_equal(picked.coords["x"].values, labels[[5, 0]])
    gap = float(np.min(np.abs(labels - target)))
    assert space.sel(x=target, method="nearest", tolerance=gap * 1.01).coords["x"].item() \
        == labels[nearest]
    with pytest.raises(SelectionError, match=r"no label within tolerance"):
        space.sel(x=target, method="nearest", tolerance=gap / 2)


def test_flat_slices_keep_their_flat_indices_and_concatenate():
    space = Space({"a": GridAxis(0.0, 1.0, 6), "b": UniformAxis(0.0, 1.0, 6),
                   "w": DataAxis(np.arange(12.0).reshape(6, 2))}, key=KEY)
    first, second = space[0:4], space[4:]
    assert first.coords["sample"].values.tolist() == [0, 1, 2, 3]
    assert second.coords["sample"].values.tolist() == [4, 5]
    whole = xr.concat([first.to_xarray(), second.to_xarray()], dim="sample")
    xr.testing.assert_equal(whole, space.to_xarray())
    # strided slices and slices of slices keep the original indices too
    assert space[1::2].coords["sample"].values.tolist() == [1, 3, 5]
    assert space[1::2][1:].coords["sample"].values.tolist() == [3, 5]
    product = Space({"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(0.0, 1.0, 4)}, mode="product")
    assert product[5:9].coords["sample"].values.tolist() == [5, 6, 7, 8]
    assert product[5:9].coords["a"].values.tolist() == [0.5, 0.5, 0.5, 1.0]


def test_a_sel_miss_names_the_nearest_labels_and_suggests_nearest():
    from labeled_spaces import ParallelExecution

    space = Space({"a": GridAxis(0.0, 1.0, 5), "b": GridAxis(0.0, 1.0, 5)})
    results = ParallelExecution(lambda s: s["a"] + s["b"], space, progress=False).run()
    for select in (space.sel, results.sel):
        with pytest.raises(KeyError) as caught:
            select(a=0.33)
        message = str(caught.value)
        assert isinstance(caught.value, SelectionError)
        assert "nearest labels of 'a': 0.25, 0.5" in message
        assert 'method="nearest"' in message
        with pytest.raises(SelectionError, match=r"not all values found in index 'a': "
                           r"\[0\.33, 2\.0\]; nearest labels of 'a': 0\.25, 0\.5, 0\.75, 1\.0"):
            select(a=[0.33, 0.5, 2.0])
    named = Space({"region": DataAxis(np.arange(3.0), labels=["alpha", "beta", "gamma"]),
                   "c": GridAxis(0.0, 1.0, 2)}, mode="product")
    with pytest.raises(SelectionError, match=r"'betta' is not a label of 'region'; labels of "
                       r"'region' spelled alike: 'beta'") as caught:
        named.sel(region="betta")
    assert "method" not in str(caught.value)  # strings have no nearest
    with pytest.raises(SelectionError, match=r"labels of 'region' are 'alpha', 'beta', 'gamma'"):
        named.sel(region="zzz")


def test_nested_or_multi_dimensional_selections_are_refused_naming_the_query():
    """A 2-D or nested indexer is not one position per label: refused, naming it, on a Space
    and on its Results alike (it used to fail deep inside with "labels must be 1-D", or a
    numpy broadcasting error, or be flattened silently)."""
    from labeled_spaces import ParallelExecution

    space = Space({"a": GridAxis(0.0, 1.0, 4), "b": GridAxis(0.0, 1.0, 3)}, mode="product")
    design = Space({"u": UniformAxis(0.0, 1.0, 4), "v": GridAxis(0.0, 1.0, 4)}, mode="sobol")
    for indexer in ([[0, 1]], np.array([[0], [1]]), None):
        with pytest.raises(ValueError, match=r"(?s)isel: a=.* must be an integer, a slice or a "
                           r"1-D array of positions"):
            space.isel(a=indexer)
    with pytest.raises(ValueError, match=r"isel: sample=\[\[0, 1\]\] must be"):
        design.isel(sample=[[0, 1]])
    results = ParallelExecution(lambda s: s["a"] * s["b"], space, progress=False).run()
    for select in (space.sel, results.sel):
        for query in ([[0.0, 1.0]], np.array([[0.0], [1.0]]), [0.0, [1.0]]):
            with pytest.raises(SelectionError, match=r"(?s)must be a label, a 1-D list or array "
                               r"of labels, or a slice; got a nested or multi-dimensional"):
                select(a=query)
    first = float(design.coords["u"].values[0])
    with pytest.raises(SelectionError, match="nested or multi-dimensional"):
        design.sel(u=[[first]])
    # 1-D queries still work
    assert space.isel(a=np.array([1, 2])).sizes == {"a": 2, "b": 3}
    assert space.sel(a=np.array([0.0, 1.0])).sizes == {"a": 2, "b": 3}


def test_a_sel_miss_by_a_non_number_lists_the_labels_rather_than_no_nearest_ones():
    space = Space({"a": GridAxis(0.0, 1.0, 3)}, mode="product")
    for query in ("x", None, float("nan")):
        with pytest.raises(SelectionError) as caught:
            space.sel(a=query)
        message = str(caught.value)
        assert "nearest labels" not in message  # nothing is near 'x', None or NaN
        assert "labels of 'a' are 0.0, 0.5, 1.0" in message
    with pytest.raises(SelectionError, match=r"nearest labels of 'a': 0\.5, 1\.0"):
        space.sel(a=0.8)


@pytest.mark.parametrize("mode", ["product", "zip", "halton"])
def test_a_label_that_repeats_selects_all_its_points_as_xarray_does(mode):
    # labels drawn or given with repeats (a Halton design over a DataAxis repeats them):
    # sel by one of them keeps its dimension and every point it labels, on the Space,
    # on the Results and on their Dataset alike
    from labeled_spaces import ParallelExecution

    names = np.array(["D", "E", "A", "E"])
    if mode == "halton":
        state = {"b": DataAxis(np.arange(4), labels=names), "x": UniformAxis(0.0, 1.0, 4)}
    else:
        state = {"b": DataAxis(np.arange(4), labels=names), "x": GridAxis(0.0, 1.0, 4)}
    space = Space(state, mode=mode, key=KEY)
    results = ParallelExecution(lambda s: s["x"] + s["b"], space, progress=False).run()
    ds = results.to_xarray()
    expected = ds.sel(b="E")
    count = int((ds["b"].values == "E").sum())
    assert count >= 2
    assert expected.sizes["b" if mode == "product" else "sample"] == count
    xr.testing.assert_identical(results.sel(b="E"), expected)
    sub = space.sel(b="E")
    assert sub.N == expected["result"].size
    assert all(point["b"] in (1, 3) for point in sub)
    # a list with a repeated label picks each of its points, in order
    assert space.sel(b=["A", "E"]).coords["b"].values.tolist()[:1] == ["A"]
    assert space.sel(b=["A", "E"]).N == space.sel(b="A").N + sub.N

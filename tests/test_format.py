"""The formatting module: one way to show sizes, dims, counts, tables and reprs."""

from __future__ import annotations

import numpy as np
import pytest

import labeled_spaces as ls
from labeled_spaces._format import (
    call_repr,
    clipped,
    elided,
    format_bytes,
    format_count,
    format_dims,
    format_duration,
    format_extent,
    format_sizes,
    results_lines,
    space_lines,
    table,
    with_units,
)


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (999, "999 B"), (1000, "1 kB"), (4e6, "4 MB"), (4.25e6, "4.25 MB"),
    (1.5e9, "1.5 GB"), (3e13, "30 TB"),
])
def test_bytes_in_powers_of_1000(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0.0 µs"), (4e-4, "400.0 µs"), (0.25, "250.0 ms"), (1.0, "1.0 s"), (3600.0, "60.0 min"),
    (119.9, "119.9 s"), (9000.0, "2.5 h"),
])
def test_durations_in_the_unit_that_keeps_them_short(seconds, text):
    assert format_duration(seconds) == text


def test_counts_separate_thousands_and_say_one_thing_singular():
    assert format_count(0, "block") == "0 blocks"
    assert format_count(1, "combination") == "1 combination"
    assert format_count(1_234_567, "value") == "1,234,567 values"


def test_sizes_dims_and_units():
    assert format_sizes({}) == ""
    assert format_sizes({"k": 3, "noise": 12}) == "k: 3, noise: 12"
    assert format_dims(()) == "()" and format_dims(("k",)) == "(k)"
    assert with_units("1", "") == "1" and with_units("1", "ms") == "1 ms"


def test_extent_of_numbers_labels_and_nothing():
    assert format_extent(np.array([3, 1, 2]), "s") == "1 .. 3 s"
    assert format_extent(np.array([np.nan, 0.5, 2.0])) == "0.5 .. 2 and NaN"  # range, NaN aside
    assert format_extent(np.array(["only"])) == "'only'"
    assert format_extent(np.array(["b", "a", "c"])) == "'b' .. 'c'"  # first and last label
    assert format_extent(np.array([])) == "empty"


def test_extent_of_one_value_dates_and_nothing_but_nan():
    # a scalar or length-1 coordinate is its value, not the range "0.5 .. 0.5"
    assert format_extent(np.array(0.5), "s") == "0.5 s"
    assert format_extent(np.array([0.0])) == "0"
    assert format_extent(np.array([2.0, 2.0])) == "2"  # numbers all alike
    dates = np.array(["2020-01-01", "2020-01-02T06:00"], "datetime64[ns]")
    assert format_extent(dates) == "2020-01-01 .. 2020-01-02T06:00"  # not nanoseconds
    assert format_extent(dates[:1]) == "2020-01-01"
    assert format_extent(np.array([1, 3], "timedelta64[s]")) == "1 s .. 3 s"
    assert format_extent(np.array([1], "timedelta64[ms]")) == "1 ms"  # not "1 milliseconds"
    assert format_extent(np.array([np.nan, np.nan])) == "all NaN"
    assert format_extent(np.array(["NaT"], "datetime64[s]")) == "all NaT"
    long = format_extent(np.array(["x" * 300, "y"]))  # a long label is cut
    assert long == "'" + "x" * 36 + "... .. 'y'"


def test_clipped_and_elided():
    assert clipped("short") == "short"
    assert clipped("x" * 100) == "x" * 77 + "..."
    assert len(clipped("x" * 100, 10)) == 10
    assert elided([]) == "[]"
    assert elided(list("abcdef")) == "[a, b, c, d, e, f]"
    assert elided(list("abcdefg")) == "[a, b, c, ..., e, f, g]"


def test_call_repr_shows_texts_then_fields_by_repr():
    assert call_repr("Grid") == "Grid()"
    assert call_repr("A", "<3 points>", n=3, name="k") == "A(<3 points>, n=3, name='k')"


def test_table_pads_columns_to_their_widest_cell_and_ends_no_line_in_spaces():
    rows = [("a", "(a)", "x"), ("long", "(a, b)", "y", "tail"), ("c",)]
    assert table(rows) == [
        "  a     (a)     x",
        "  long  (a, b)  y  tail",
        "  c",
    ]
    assert table(rows, indent="", padded=1) == ["a     (a)  x", "long  (a, b)  y  tail", "c"]
    assert table([]) == []
    assert all(not line.endswith(" ") for line in table(rows))


def test_space_and_results_lines_with_no_dimension_of_the_space():
    assert space_lines("product", 1, {}, []) == [
        "<labeled_spaces.Space> N=1, mode='product', axes=0", "Dimensions:  ()", "Axes:"]
    # a space without dims: the outputs' own dims alone, no stray separator
    assert results_lines("Results", {}, None, True, [("y", (4,), ("t",), "float32")]) == [
        "<labeled_spaces.Results> (), lazy", "Outputs:", "    y (4,)  (t) float32"]


def test_the_reprs_of_the_package_read_as_before():
    space = ls.Space({"x": ls.GridAxis(0.0, 1.0, 5), "n": {"s": ls.UniformAxis(0.0, 1.0, 1000)}},
                     mode="product")
    assert repr(space).splitlines() == [
        "<labeled_spaces.Space> N=5000, mode='product', axes=2",
        "Dimensions:  (n.s: 1000, x: 5)",
        "Axes:",
        "    n.s  (n.s)  UniformAxis(low=0.0, high=1.0, n=1000)",
        "    x    (x)  GridAxis(low=0.0, high=1.0, n=5)",
    ]
    small = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
    results = ls.ParallelExecution(lambda s: {"y": s["k"] * np.ones(2)}, small,
                                   progress=False).run()
    assert repr(results).splitlines() == [
        "<labeled_spaces.ParallelResult> (k: 3)", "Outputs:", "    y (2,)  (k, y_dim_0) float32"]


def test_a_table_escapes_control_characters_before_it_pads():
    from labeled_spaces._format import table

    lines = table([("y\tz", "(k)", "float64"), ("k", "(k)", "int64")])
    assert lines == ["  y\\tz  (k)  float64", "  k     (k)  int64"]

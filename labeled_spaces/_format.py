"""Every repr and table, in one place: how the package shows sizes, dims, counts and objects.

The reprs of the axes, the grid, :class:`~labeled_spaces.Space` and
:class:`~labeled_spaces.Results`, the lines of ``labeled-spaces info`` and the
demo's summary are built here from plain values (names, sizes, texts), so
that one thing always reads the same wherever it is shown: sizes as
``k: 3, s: 2``, dimensions as ``(k, s)``, counts as ``5,000 combinations``,
bytes as ``4 MB``, columns two spaces apart. This module imports nothing of
the package: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "call_repr", "clipped", "elided", "format_bytes", "format_count", "format_dims",
    "format_duration", "format_extent", "format_sizes", "results_lines", "short_repr",
    "space_lines", "table", "with_units",
]


def format_bytes(n: float) -> str:
    """``n`` bytes in a unit a person reads at a glance (powers of 1000, 3 digits).

    Examples
    --------
    >>> from labeled_spaces._format import format_bytes
    >>> format_bytes(272e9), format_bytes(4e6), format_bytes(1500), format_bytes(12)
    ('272 GB', '4 MB', '1.5 kB', '12 B')
    """
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def format_duration(seconds: float) -> str:
    """A duration in the unit that keeps it short: µs, ms, s, min or h, one decimal.

    Examples
    --------
    >>> from labeled_spaces._format import format_duration
    >>> format_duration(2.5e-5), format_duration(0.0123), format_duration(75.04)
    ('25.0 µs', '12.3 ms', '75.0 s')
    >>> format_duration(600), format_duration(9000)
    ('10.0 min', '2.5 h')
    """
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def format_count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` things, with thousands separated: ``1 value``, ``5,000 combinations``.

    ``plural`` is the noun's plural where it is not the noun and an ``s``.

    Examples
    --------
    >>> from labeled_spaces._format import format_count
    >>> format_count(1, "value"), format_count(5000, "combination")
    ('1 value', '5,000 combinations')
    >>> format_count(1, "axis", "axes"), format_count(3, "axis", "axes")
    ('1 axis', '3 axes')
    """
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {plural or noun + 's'}"


def format_sizes(sizes: Mapping[Any, int]) -> str:
    """Dimensions with their sizes, as xarray shows them: ``k: 3, s: 2``.

    Examples
    --------
    >>> from labeled_spaces._format import format_sizes
    >>> format_sizes({"k": 3, "s": 2})
    'k: 3, s: 2'
    """
    return ", ".join(f"{d}: {n}" for d, n in sizes.items())


def format_dims(dims: Iterable[Any]) -> str:
    """Dimension names in parentheses: ``(k, s)``; ``()`` for none.

    Examples
    --------
    >>> from labeled_spaces._format import format_dims
    >>> format_dims(["k", "time"]), format_dims(())
    ('(k, time)', '()')
    """
    return f"({', '.join(map(str, dims))})"


def with_units(text: str, units: Any = None) -> str:
    """``text`` followed by its units, where there are any.

    Examples
    --------
    >>> from labeled_spaces._format import with_units
    >>> with_units("0.5", "rad/ms"), with_units("0.5", None)
    ('0.5 rad/ms', '0.5')
    """
    return f"{text} {units}" if units else text


def format_extent(values: Any, units: Any = None) -> str:
    """What a coordinate spans: ``low .. high`` of numbers and dates, the first and last of labels.

    One value (a scalar or length-1 coordinate, or numbers all alike) is shown
    alone; dates as ISO text, labels as their repr, cut to 40 characters.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces._format import format_extent
    >>> format_extent(np.array([0.0, 0.25, 0.5]), "ms"), format_extent(np.array(["a", "b"]))
    ('0 .. 0.5 ms', "'a' .. 'b'")
    >>> format_extent(np.array(0.5), "s"), format_extent(np.array(["2020-01-02"], "M8[ns]"))
    ('0.5 s', '2020-01-02')
    >>> format_extent(np.array([np.nan])), format_extent(np.array([]))
    ('all NaN', 'empty')
    >>> format_extent(np.array([np.nan, 1.0, np.inf])), format_extent(np.array([True, False]))
    ('1 .. inf and NaN', 'False, True')
    """
    values = np.asarray(values)
    if values.size == 0:
        return "empty"
    flat = values.reshape(-1)
    if values.dtype.kind == "b":  # the values it holds, not a range
        return ", ".join(str(v) for v in np.unique(flat).tolist())
    missing = ""
    if values.dtype.kind in "iufMm":  # numbers, dates and durations: their range, NaN/NaT aside
        known = flat[~np.isnan(flat)] if values.dtype.kind in "fMm" else flat
        gap = "NaN" if values.dtype.kind == "f" else "NaT"
        if known.size == 0:
            return with_units(f"all {gap}", units)
        missing = f" and {gap}" if known.size < flat.size else ""
        low, high = _value_text(known.min()), _value_text(known.max())
    else:
        low, high = _value_text(flat[0]), _value_text(flat[-1])
    alone = values.size == 1 or (values.dtype.kind in "iufMm" and low == high)
    return with_units(low if alone else f"{low} .. {high}", units) + missing


def _value_text(value: Any) -> str:
    """One coordinate value: a number as ``:g``, a date as ISO text, else its repr (clipped)."""
    value = np.asarray(value)
    if value.dtype.kind in "iuf":
        return f"{value.item():g}"
    if value.dtype.kind == "M":
        return str(np.datetime_as_string(value, unit="auto"))
    if value.dtype.kind == "m":  # in its own unit, which numpy spells "1 seconds"
        unit, count = np.datetime_data(value.dtype)  # m8[15m]: counts of 15 minutes
        amount = int(value.astype(np.int64)) * count
        return f"{amount}" if unit == "generic" else f"{amount} {unit}"
    return clipped(repr(value.item()), 40)  # plain str/int, not np.str_('...') reprs


def printable(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\x1b``), the rest as it is.

    Examples
    --------
    >>> from labeled_spaces._format import printable
    >>> print(printable("a\\x1b[31mb\\nc é"))
    a\\x1b[31mb\\nc é
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def clipped(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` where it was cut.

    Examples
    --------
    >>> from labeled_spaces._format import clipped
    >>> clipped(repr(list(range(40))), 20)
    '[0, 1, 2, 3, 4, ...'
    """
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(value: Any, limit: int = 100) -> str:
    """``repr(value)`` for a message: as it is if short, else on one line and cut to ``limit``.

    A message names the value it refuses; a list of a million labels or a
    long string must not make it a million characters long.

    Examples
    --------
    >>> from labeled_spaces._format import short_repr
    >>> short_repr("abc"), short_repr(list(range(100)), 20)
    ("'abc'", '[0, 1, 2, 3, 4, 5...')
    """
    text = repr(value)
    return text if len(text) <= limit else clipped(" ".join(text.split()), limit)


def elided(shown: Sequence[str], edge: int = 3) -> str:
    """A list of texts in brackets, its middle elided beyond ``2 * edge`` items.

    Examples
    --------
    >>> from labeled_spaces._format import elided
    >>> elided(["'a'", "'b'"]), elided([str(i) for i in range(10)], edge=2)
    ("['a', 'b']", '[0, 1, ..., 8, 9]')
    """
    items = list(shown)
    if len(items) > 2 * edge:
        items = [*items[:edge], "...", *items[-edge:]]
    return f"[{', '.join(items)}]"


def call_repr(callee: str, /, *shown: str, **fields: Any) -> str:
    """How the call that builds an object reads: ``callee(shown, ..., field=repr, ...)``.

    ``shown`` are texts given as they are (elided values, a description);
    ``fields`` are shown by their ``repr`` (any name, ``name`` too).

    Examples
    --------
    >>> from labeled_spaces._format import call_repr
    >>> call_repr("GridAxis", low=0.0, high=1.0, n=3, name="k")
    "GridAxis(low=0.0, high=1.0, n=3, name='k')"
    """
    parts = [*shown, *(f"{key}={value!r}" for key, value in fields.items())]
    return f"{callee}({', '.join(parts)})"


def table(rows: Iterable[Sequence[str]], indent: str = "  ", padded: int | None = None
          ) -> list[str]:
    """Rows of cells as lines, cells two spaces apart, columns padded to their widest cell.

    The first ``padded`` columns are padded (default: all but each row's
    last cell); a row's last cell never is, so no line ends in spaces.
    Control characters in a cell are escaped first (:func:`printable`), so
    a name read from a file keeps its column and its line.

    Examples
    --------
    >>> from labeled_spaces._format import table
    >>> print("\\n".join(table([("k", "(k)", "float64"), ("noise", "(noise)", "int64")])))
      k      (k)      float64
      noise  (noise)  int64
    """
    rows = [[printable(cell) for cell in row] for row in rows]
    columns = max((len(row) for row in rows), default=0)
    pad = columns - 1 if padded is None else padded
    widths = [max((len(row[c]) for row in rows if len(row) > c + 1), default=0)
              for c in range(pad)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[c]) if c < pad and c < len(row) - 1 else cell
                 for c, cell in enumerate(row)]
        lines.append(indent + "  ".join(cells))
    return lines


def space_lines(mode: str, n: int, sizes: Mapping[str, int],
                axes: Sequence[tuple[str, str, str]],
                point: Mapping[str, Any] | None = None, groups: int = 0) -> list[str]:
    """The repr of a Space: combinations, mode, axes, dimensions, one line per axis.

    ``axes`` holds ``(name, dimension, repr)`` per axis; a space of a single
    point (no axis left) shows the labels ``point`` it was selected at instead.
    The first line reads as TVB-Optim's ``Space(N=6, mode='product', axes=2)``
    (``groups=`` only when axes are grouped), so code that reads it keeps
    working; the lines below it are xarray's layout.

    Examples
    --------
    >>> from labeled_spaces._format import space_lines
    >>> print("\\n".join(space_lines("product", 6, {"k": 3, "s": 2},
    ...                              [("k", "k", "GridAxis(...)"), ("s", "s", "[...]")])))
    <labeled_spaces.Space> N=6, mode='product', axes=2
    Dimensions:  (k: 3, s: 2)
    Axes:
        k  (k)  GridAxis(...)
        s  (s)  [...]
    """
    grouped = f", groups={groups}" if groups else ""
    lines = [f"<labeled_spaces.Space> N={n}, mode={mode!r}, axes={len(axes)}{grouped}",
             f"Dimensions:  ({format_sizes(sizes)})", "Axes:"]
    if point is not None:
        lines[-1] = "Point:       " + ", ".join(f"{k}={v!r}" for k, v in point.items())
    return lines + table([(name, f"({dim})", shown) for name, dim, shown in axes],
                         indent="    ", padded=1)


def results_lines(kind: str, sizes: Mapping[str, int], computed: int | None, lazy: bool,
                  outputs: Iterable[tuple[str, tuple[int, ...], Sequence[str], Any]]
                  ) -> list[str]:
    """The repr of Results: sizes, how much is computed, one line per output.

    ``computed`` is None when every combination is; ``outputs`` holds
    ``(variable, own shape, all dims, dtype)`` per output.

    Examples
    --------
    >>> from labeled_spaces._format import results_lines
    >>> print("\\n".join(results_lines("Results", {"k": 3}, 2, False,
    ...                                [("y", (4,), ("k", "time"), "float32")])))
    <labeled_spaces.Results> (k: 3), partial (2 computed)
    Outputs:
        y (4,)  (k, time) float32
    """
    state = "" if computed is None else f", partial ({computed:,} computed)"
    lazy_text = ", lazy" if lazy else ""
    lines = [f"<labeled_spaces.{kind}> ({format_sizes(sizes)}){state}{lazy_text}", "Outputs:"]
    lines += [f"    {var} {shape}  {format_dims(dims)} {dtype}"
              for var, shape, dims, dtype in outputs]
    return lines

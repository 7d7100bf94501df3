"""What the demo shows: where synchrony sets in, the printed summary and the figure.

The figure (:func:`plot_demo`) shows synchrony against coupling per noise
level, and the simulated functional connectivity. It is drawn on a bare
:class:`matplotlib.figure.Figure` (no ``pyplot``), which renders PNG with the
Agg canvas and leaves the session's backend alone, so it works on a machine
without a display and does not change a notebook's backend. ``matplotlib`` is an optional dependency
(``pip install "labeled_spaces[examples]"``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._format import format_dims, format_sizes, table, with_units

__all__ = ["DPI", "FIGURE_PIXELS", "SYNCHRONY", "plot_demo", "summarize_demo",
           "synchrony_onset"]

#: the order parameter above which the network counts as synchronised
SYNCHRONY = 0.5

#: size of the saved figure, (width, height) in pixels
FIGURE_PIXELS = (1200, 800)
DPI = 100
# panels per row of the order-parameter facets: 11 noise levels make two rows of 6
_FACET_COLUMNS = 6


def synchrony_onset(order: xr.DataArray, threshold: float = SYNCHRONY, along: str = "coupling"
                    ) -> dict[Any, float | None]:
    """Where synchrony sets in: the first label along ``along`` where ``order >= threshold``.

    Parameters
    ----------
    order : xarray.DataArray
        Two-dimensional: ``along`` and one other dimension (the demo's
        ``noise``), labeled by coordinates.
    threshold : float, default 0.5
        The order parameter that counts as synchronised.
    along : str, default "coupling"
        The dimension to scan, in the order of its coordinate.

    Returns
    -------
    dict
        ``{label of the other dimension: first label along "along", or None}``
        (None where ``order`` stays below ``threshold``).

    Raises
    ------
    ValueError
        If ``order`` does not have ``along`` and exactly one other dimension.

    Examples
    --------
    >>> import xarray as xr
    >>> from labeled_spaces.examples.figures import synchrony_onset
    >>> order = xr.DataArray([[0.1, 0.1], [0.6, 0.2], [0.9, 0.4]], dims=("coupling", "noise"),
    ...                      coords={"coupling": [0.0, 0.1, 0.2], "noise": [0.0, 0.5]})
    >>> synchrony_onset(order)
    {0.0: 0.1, 0.5: None}
    """
    others = [d for d in order.dims if d != along]
    if along not in order.dims or len(others) != 1:
        raise ValueError(f"order must have the dimension {along!r} and one other, got dims "
                         f"{order.dims}")
    (other,) = others
    values = np.asarray(order.transpose(other, along).values)
    labels = np.asarray(order[along].values)
    onset: dict[Any, float | None] = {}
    for key, curve in zip(order[other].values.tolist(), values, strict=True):
        above = np.flatnonzero(curve >= threshold)  # NaN (unfinished) never counts
        onset[key] = float(labels[above[0]]) if above.size else None
    return onset


def summarize_demo(ds: xr.Dataset, title: str | None = None,
                   files: Mapping[Any, Any] | None = None) -> str:
    """The printed summary of the demo: sizes, synchrony onset per noise level, files.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with ``order`` over ``(coupling, noise)``.
    title : str, optional
        A first line (what was run).
    files : mapping, optional
        ``{path: what it is}``, listed at the end.

    Returns
    -------
    str

    Examples
    --------
    >>> import xarray as xr
    >>> from labeled_spaces.examples.figures import summarize_demo
    >>> ds = xr.Dataset({"order": (("coupling", "noise"), [[0.1, 0.1], [0.7, 0.2]])},
    ...                 coords={"coupling": ("coupling", [0.0, 0.2], {"units": "rad/ms"}),
    ...                         "noise": [0.0, 0.5]})
    >>> print(summarize_demo(ds, files={"demo.nc": "netCDF"}))
    dims: coupling: 2, noise: 2
    outputs: order (coupling, noise)
    synchrony (order >= 0.5) sets in, per noise level:
      noise = 0: at coupling = 0.2 rad/ms
      noise = 0.5: not reached
    files:
      demo.nc  netCDF
    """
    order = ds["order"]
    lines = [] if title is None else [title]
    lines.append("dims: " + format_sizes(ds.sizes))
    lines.append("outputs: " + ", ".join(f"{name} {format_dims(var.dims)}"
                                         for name, var in ds.data_vars.items()
                                         if name != "computed"))
    lines.append(f"synchrony (order >= {SYNCHRONY:g}) sets in, per noise level:")
    k_units, noise_units = ds["coupling"].attrs.get("units"), ds["noise"].attrs.get("units")
    for noise, at in synchrony_onset(order).items():
        where = "not reached" if at is None else f"at coupling = {with_units(f'{at:g}', k_units)}"
        lines.append(f"  noise = {with_units(f'{noise:g}', noise_units)}: {where}")
    if files:
        lines.append("files:")
        lines += table([(str(p), str(what)) for p, what in files.items()])
    return "\n".join(lines)


def _label(name: str, attrs: Mapping[str, Any]) -> str:
    units = attrs.get("units")
    return f"{name} ({units})" if units else name


def _hemisphere_ticks(labels: np.ndarray) -> tuple[list[float], list[str], list[float]]:
    """Tick positions and names at the middle of each run of one hemisphere, and the borders.

    TVB's region names start with ``l_``/``r_``; other names give no ticks.
    """
    sides = [{"l_": "left", "r_": "right"}.get(str(x)[:2], "") for x in labels]
    if not all(sides):
        return [], [], []
    ticks, names, borders, start = [], [], [], 0
    for k in range(1, len(sides) + 1):
        if k == len(sides) or sides[k] != sides[start]:
            ticks.append((start + k - 1) / 2)
            names.append(sides[start])
            if k < len(sides):
                borders.append(k - 0.5)
            start = k
    return ticks, names, borders


def plot_demo(ds: xr.Dataset, path: str | os.PathLike, n_fc: int = 3) -> Path:
    """Draw the demo's results into a PNG of :data:`FIGURE_PIXELS`.

    Top: ``order`` against ``coupling``, one panel per ``noise`` level, with
    the synchrony threshold and its onset marked. Bottom: ``fc`` at the
    lowest noise for ``n_fc`` couplings: the weakest, the synchrony onset
    (else the middle one) and the strongest.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with ``order`` over ``(coupling, noise)`` and ``fc`` over
        ``(coupling, noise, region, region_to)``; lazy (dask-backed) ones
        are read only where drawn.
    path : str or path-like
        The PNG to write.
    n_fc : int, default 3
        Number of FC panels (at most the number of couplings).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np, xarray as xr
    >>> import matplotlib.image
    >>> from labeled_spaces.examples.figures import FIGURE_PIXELS, plot_demo
    >>> regions = ["r_a", "r_b", "l_a", "l_b"]
    >>> ds = xr.Dataset(
    ...     {"order": (("coupling", "noise"), [[0.1, 0.1], [0.6, 0.3], [0.9, 0.5]]),
    ...      "fc": (("coupling", "noise", "region", "region_to"), np.zeros((3, 2, 4, 4)))},
    ...     coords={"coupling": [0.0, 0.1, 0.2], "noise": [0.0, 0.5],
    ...             "region": regions, "region_to": regions})
    >>> png = plot_demo(ds, pathlib.Path(tempfile.mkdtemp()) / "demo.png")
    >>> matplotlib.image.imread(png).shape[:2] == FIGURE_PIXELS[::-1]
    True
    """
    from matplotlib.figure import Figure

    order = ds["order"].transpose("coupling", "noise").load()
    coupling, noise = ds["coupling"], ds["noise"]
    onset = synchrony_onset(order)
    k_label, noise_units = _label("coupling K", coupling.attrs), noise.attrs.get("units", "")

    fig = Figure(figsize=(FIGURE_PIXELS[0] / DPI, FIGURE_PIXELS[1] / DPI), dpi=DPI,
                 layout="constrained")
    # matplotlib's stub: one SubFigure or an array; 2 x 1 gives the array
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.2, 1.0))  # type: ignore[misc]

    n_noise = noise.size
    ncols = min(n_noise, _FACET_COLUMNS)
    nrows = math.ceil(n_noise / ncols)
    axes = top.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, level in zip(axes, noise.values.tolist(), strict=False):
        ax.plot(coupling.values, order.sel(noise=level).values, marker=".", color="C0")
        ax.axhline(SYNCHRONY, color="0.6", linestyle=":", linewidth=1)
        if onset[level] is not None:
            ax.axvline(onset[level], color="C3", linewidth=1)
        ax.set_title(f"noise {level:g} {noise_units}".rstrip(), fontsize=9)
        ax.set_ylim(0.0, 1.0)
    for ax in axes[n_noise:]:
        ax.set_visible(False)
    # the lowest visible panel of each column gets the coupling axis (with a hidden last
    # panel, that one is in the row above)
    for ax in list(axes)[max(n_noise - ncols, 0):n_noise]:
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel(k_label, fontsize=8)
    for ax in axes[::ncols]:
        ax.set_ylabel("order R", fontsize=8)
    top.suptitle("synchrony against global coupling, one panel per noise level "
                 f"(red: first R >= {SYNCHRONY:g})", fontsize=11)

    lowest = float(noise.values.min())
    fc = ds["fc"].sel(noise=lowest)
    at_onset = onset[lowest]
    picks = [0, coupling.size // 2, coupling.size - 1]
    if at_onset is not None:
        picks[1] = int(np.flatnonzero(coupling.values == at_onset)[0])
    picks = sorted(set(picks))[:n_fc]
    panels = bottom.subplots(1, len(picks), squeeze=False).ravel()
    ticks, names, borders = _hemisphere_ticks(np.asarray(ds["region"].values))
    image = None
    for ax, k in zip(panels, picks, strict=True):
        matrix = fc.isel(coupling=k).transpose("region", "region_to").values
        image = ax.imshow(matrix, vmin=-1.0, vmax=1.0, cmap="RdBu_r", interpolation="nearest")
        r = float(order.isel(coupling=k).sel(noise=lowest))
        k_units = coupling.attrs.get("units", "")
        ax.set_title(f"K = {float(coupling.values[k]):g} {k_units}".rstrip() + f", R = {r:.2f}",
                     fontsize=9)
        ax.set_xticks(ticks, names, fontsize=8)
        ax.set_yticks(ticks, names, fontsize=8, rotation=90, va="center")
        for b in borders:
            ax.axhline(b, color="k", linewidth=0.5)
            ax.axvline(b, color="k", linewidth=0.5)
    bottom.colorbar(image, ax=list(panels), shrink=0.9, label="correlation of sin theta")
    bottom.suptitle(f"simulated functional connectivity at noise {lowest:g} {noise_units}"
                    .rstrip(), fontsize=11)

    target = Path(os.fspath(path))
    fig.savefig(target, dpi=DPI)
    return target

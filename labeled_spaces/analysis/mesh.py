"""Where to sample next: a Delaunay mesh of the points so far and its worst edges.

Points live in the unit box (each axis scaled to ``[0, 1]``, logarithmically
for a log axis). The mesh is ``scipy.spatial.Delaunay`` of all points; the
output's deviation from linear interpolation is estimated per edge, from the
gradients at its two ends (the volume-weighted mean of the gradients of the
simplices around each vertex):

``dev(i, j) = |v_i + g_i . (p_j - p_i) - v_j| + |v_j + g_j . (p_i - p_j) - v_i|``

which is about ``|d^T H d|`` along the edge ``d``, the curvature that linear
interpolation misses there. An edge's loss weighs it by the square root of
the volume it serves (an equal share of each simplex around it), as
python-adaptive's Learner2D weighs a triangle's deviation by the square root of
its area, plus a small volume term that keeps flat regions from being starved:
``loss = dev * sqrt(V) + 0.01 * V``. The next points are the midpoints of the
edges with the largest losses, all chosen at once (sorting every edge's loss).

Scoring edges rather than simplices is what lets a batch of points follow a
thin feature: an edge crossing a ridge has a large ``dev``, one running along
it a small one, so a batch splits the crossing edges of many neighbouring
simplices (up to all edges of one simplex) instead of one centroid each, and
distinct edges have distinct midpoints, so a batch never repeats a point (but
for crossing edges in the flat slivers of a degenerate mesh, which are weeded out).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import Delaunay, cKDTree

__all__ = ["AREA_WEIGHT", "edge_losses", "next_points"]

#: weight of the plain volume term of an edge's loss (keeps flat regions sampled)
AREA_WEIGHT = 0.01

# simplices flatter than this (relative to a unit simplex) get no gradient of their own
_FLAT = 1e-12


def _scaled_values(values: np.ndarray) -> np.ndarray:
    """Values divided by their finite range; non-finite values become the finite mean."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros_like(values)
    values = np.where(finite, values, values[finite].mean())
    span = float(np.ptp(values))
    return values / span if span > 0 else values - values


def edge_losses(points: np.ndarray, values: np.ndarray, mesh: Delaunay | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Every edge of the Delaunay mesh of ``points`` and its loss, worst first.

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, d)`` points in the unit box (``d`` = 2 or 3).
    values : numpy.ndarray
        ``(n,)`` real values of the output driving the refinement.
    mesh : scipy.spatial.Delaunay, optional
        The mesh of ``points``, when already built.

    Returns
    -------
    edges : numpy.ndarray
        ``(e, 2)`` vertex indices of each edge (smaller first), by falling loss
        (ties in the order of the edges' vertex indices).
    losses : numpy.ndarray
        ``(e,)`` their losses.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.analysis.mesh import edge_losses
    >>> points = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]])
    >>> edges, losses = edge_losses(points, points[:, 0] ** 2)
    >>> len(edges), bool(losses[0] >= losses[-1])
    (8, True)
    """
    mesh = Delaunay(points) if mesh is None else mesh
    simplices = mesh.simplices
    n, d = points.shape
    corners = points[simplices]                         # (m, d + 1, d)
    span = corners[:, 1:] - corners[:, :1]              # (m, d, d)
    volume = np.abs(np.linalg.det(span)) / math.factorial(d)
    v = _scaled_values(values)
    rise = v[simplices[:, 1:]] - v[simplices[:, :1]]    # (m, d)
    solid = volume > _FLAT / math.factorial(d)
    gradient = np.zeros((len(simplices), d))
    gradient[solid] = np.linalg.solve(span[solid], rise[solid][..., None])[..., 0]
    # each vertex: the volume-weighted mean gradient of the simplices around it
    corner_of = simplices.ravel()
    weight = np.bincount(corner_of, np.repeat(volume, d + 1), minlength=n)
    weighted = np.repeat(gradient * volume[:, None], d + 1, axis=0)
    vertex_gradient = np.stack([np.bincount(corner_of, weighted[:, a], minlength=n)
                                for a in range(d)], axis=1)
    # numpy's stub types bincount as int even with float weights
    vertex_gradient /= np.where(weight > 0, weight, 1.0)[:, None]  # type: ignore[misc]
    # every edge once, with an equal share of each simplex it belongs to
    pairs = np.array([(a, b) for a in range(d + 1) for b in range(a + 1, d + 1)])
    all_edges = np.sort(simplices[:, pairs].reshape(-1, 2), axis=1)
    codes, first, where = np.unique(all_edges[:, 0] * n + all_edges[:, 1],
                                    return_index=True, return_inverse=True)
    edges = all_edges[first]
    share = np.bincount(where.ravel(), np.repeat(volume / len(pairs), len(pairs)),
                        minlength=len(edges))
    i, j = edges[:, 0], edges[:, 1]
    step = points[j] - points[i]
    deviation = (np.abs(v[i] + np.sum(vertex_gradient[i] * step, axis=1) - v[j])
                 + np.abs(v[j] - np.sum(vertex_gradient[j] * step, axis=1) - v[i]))
    losses = deviation * np.sqrt(share) + AREA_WEIGHT * share
    order = np.argsort(-losses, kind="stable")
    return edges[order], losses[order]


def next_points(points: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` points to sample next: midpoints of the edges with the largest losses.

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, d)`` points so far, in the unit box.
    values : numpy.ndarray
        ``(n,)`` the output driving the refinement at those points.
    k : int
        How many new points.

    Returns
    -------
    numpy.ndarray
        ``(k, d)`` new points, distinct from each other and from ``points``.

    Notes
    -----
    A small mesh may have fewer edges than ``k``: the midpoints found are then
    added with linearly interpolated values, and the mesh of all of them
    gives the rest (each pass is one vectorised step; a mesh of ``n`` points
    has about ``3n`` edges in 2-D, so few passes are ever needed). The same
    inputs always give the same points.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.analysis.mesh import next_points
    >>> grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 5)] * 2, indexing="ij"), -1)
    >>> points = grid.reshape(-1, 2)
    >>> step = np.tanh((points[:, 0] - 0.5) / 0.05)
    >>> new = next_points(points, step, 6)
    >>> new.shape, bool(np.all(np.abs(new[:, 0] - 0.5) < 0.25))
    ((6, 2), True)
    """
    points = np.asarray(points, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    known = cKDTree(points)
    chosen: list[np.ndarray] = []
    need = k
    while need > 0:
        mesh = Delaunay(points)
        edges, _ = edge_losses(points, values, mesh)
        middle = 0.5 * (points[edges[:, 0]] + points[edges[:, 1]])
        # never sample twice: a vertex qhull left out could sit on an edge, and in the
        # flat slivers of a degenerate mesh (a cube's corners) two edges may cross
        middle = middle[:2 * need + 64]
        middle = middle[known.query(middle, k=1)[0] > 1e-12]
        _, first = np.unique(np.round(middle, 12), axis=0, return_index=True)
        middle = middle[np.sort(first)][:need]
        if not len(middle):  # pragma: no cover - a mesh always has an edge to split
            raise RuntimeError("no edge left to split")
        chosen.append(middle)
        need -= len(middle)
        if need:
            guess = LinearNDInterpolator(mesh, values)(middle)
            points = np.concatenate([points, middle])
            values = np.concatenate([values, guess])
            known = cKDTree(points)
    return np.concatenate(chosen)

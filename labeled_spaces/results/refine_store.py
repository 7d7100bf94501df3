"""The store of a refinement: one zarr store of every point so far, with its rounds inside.

``refine(..., store=PATH)`` makes ``PATH`` a zarr store whose root holds the
results over all points computed so far, laid out as a run's store of the
space of those points (``Results.to_xarray()``: the outputs and axis values
over ``point``, the coordinate ``round``, the attrs, a done mask that is all
done) plus the attr ``labeled_spaces:refine`` (see
:class:`~labeled_spaces.results.refined.Refinement`), so that
``open_results(PATH)`` gives back RefineResults and ``xarray.open_zarr(PATH)``
reads them without this package. Each round streams into its own store
inside it, ``PATH/round_000.zarr``, ``round_001.zarr``, ..., which a rerun
resumes or reads back; xarray and zarr read the root's consolidated metadata
and never look into them.

After each round the root is brought up to date: its arrays are chunked
along ``point`` in a fixed step, and the chunks from the one holding the
round's first point on are written (each file whole beside itself, then
renamed over the old one), then the arrays' metadata, then the root's
``zarr.json`` last. Until that last rename a reader sees the points before
the round, whole: a crash while the root is written leaves it as it was,
and the next run writes it again.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._codec import jsonable
from .._schema import OUTPUTS_ATTR, REFINE_ATTR
from ..grid import Blocks
from ..space import Space
from .names import Outputs
from .refined import POINT, ROUND, Refinement
from .store_files import store_metadata, stored_layout
from .store_format import (
    DONE,
    ChunkCodec,
    array_node,
    chunk_key,
    coordinate_chunk,
    done_mark,
    listed_chunks,
    replace_file,
    root_node,
)
from .store_writer import read_description, store_attrs, store_state

__all__ = ["POINT", "StoredRoot", "holds_rounds", "points_from", "root_damage", "round_done",
           "round_store", "root_step", "stored_root", "write_root"]

#: the root's chunks along ``point`` hold at least this many points
MIN_STEP = 256

_ROUND_NAME = re.compile(r"round_\d{3,}\.zarr")


def round_store(path: Path, k: int) -> str:
    """The store of round ``k`` inside the refine store ``path``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from labeled_spaces.results.refine_store import round_store
    >>> round_store(Path("refined.zarr"), 3)
    'refined.zarr/round_003.zarr'
    """
    return os.fspath(path / f"round_{k:03d}.zarr")


def holds_rounds(path: Path) -> bool:
    """Whether the folder ``path`` holds the store of a round of refine (one listing).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from labeled_spaces.results.refine_store import holds_rounds
    >>> folder = Path(tempfile.mkdtemp())
    >>> holds_rounds(folder), (folder / "round_000.zarr").mkdir(), holds_rounds(folder)
    (False, None, True)
    """
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(_ROUND_NAME.fullmatch(name) for name in names)


def round_done(path: str) -> bool:
    """Whether the store of a round holds every block (a rerun reads it back).

    Examples
    --------
    >>> from labeled_spaces.results.refine_store import round_done
    >>> round_done("no/such/round_000.zarr")
    False
    """
    if not (Path(path) / "zarr.json").is_file():
        return False
    try:
        state = store_state(path)
    except (OSError, ValueError):  # the executor says what is wrong with it
        return False
    return state is not None and bool(state.done.all())


def root_step(batch: int) -> int:
    """Points per chunk of a new root: ``batch``, and at least :data:`MIN_STEP`.

    Examples
    --------
    >>> from labeled_spaces.results.refine_store import root_step
    >>> root_step(20), root_step(1000)
    (256, 1000)
    """
    return max(int(batch), MIN_STEP)


@dataclass(frozen=True)
class StoredRoot:
    """What the root of a refine store holds.

    Attributes
    ----------
    refinement : Refinement
        How the refinement was asked for.
    points : int
        The points it holds (the first ones of the refinement).
    step : int
        Points per chunk along ``point``.
    outputs : tuple of str
        The names of its outputs (key paths), as the attrs list them.
    """

    refinement: Refinement
    points: int
    step: int
    outputs: tuple[str, ...] = ()


def stored_root(path: Path) -> StoredRoot | None:
    """The root of the refine store ``path``; None where it has none (new, or rounds only).

    Raises
    ------
    ValueError
        For a zarr store that refine did not make, or a root whose
        description cannot be read, naming the path.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from labeled_spaces.results.refine_store import stored_root
    >>> print(stored_root(Path(tempfile.mkdtemp())))
    None
    """
    if not (path / "zarr.json").is_file() and not (path / ".zgroup").is_file():
        return None
    where = f"store={str(path)!r}"
    attrs = store_attrs(path, where)
    if REFINE_ATTR not in attrs:
        raise ValueError(f"{where} is a zarr store that refine did not make (no {REFINE_ATTR} "
                         "attr); refusing to write into it: give a new path")
    refinement = Refinement.from_json(attrs[REFINE_ATTR])
    held = read_description(path, attrs)
    if len(held["shape"]) != 1:
        raise ValueError(f"{where} must hold its points over one dimension, got the "
                         f"shape {held['shape']}")
    # the chunks along point: the root's own (its done mask's blocks are no longer than it)
    try:
        meta = json.loads((path / "zarr.json").read_text())["consolidated_metadata"]
        node = meta["metadata"][POINT]
        step = node["chunk_grid"]["configuration"]["chunk_shape"][0]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise ValueError(f"{where} has no readable chunks of {POINT!r} ({err!r}); give a new "
                         "path, or remove it") from None
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise ValueError(f"{where} must chunk {POINT!r} by a positive integer, got {step!r}")
    try:
        names = json.loads(attrs.get(OUTPUTS_ATTR, "[]"))
    except (TypeError, ValueError):
        names = []
    outputs = tuple(n for n in names if isinstance(n, str)) if isinstance(names, list) else ()
    return StoredRoot(refinement, int(held["shape"][0]), step, outputs)


def root_damage(path: Path) -> str | None:
    """What is missing or unreadable in the root of the refine store ``path`` (None: whole).

    Every block must be marked done with its outputs' chunks there
    (:func:`~labeled_spaces.results.store_writer.store_state`), and every
    array the root's metadata lists (outputs, coordinates such as the axes
    and ``round``, the done mask) must have each of its chunk files, readable:
    a rerun rewrites a root that is not whole from its rounds.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from labeled_spaces.results.refine_store import root_damage
    >>> root_damage(Path(tempfile.mkdtemp()))
    'no readable zarr.json'
    """
    try:
        nodes = json.loads((path / "zarr.json").read_text())["consolidated_metadata"]["metadata"]
        state = store_state(path)
    except (OSError, ValueError, KeyError, TypeError) as err:
        return "no readable zarr.json" if isinstance(err, (OSError, KeyError, TypeError)) \
            else str(err)
    if state is None or not state.done.all():
        return "blocks not marked done, or an output's chunk missing"
    for name, node in nodes.items():
        if not isinstance(node, dict) or node.get("node_type") != "array":
            continue
        found = _array_damage(path / name, node)
        if found:
            return f"{name!r}: {found}"
    return None


def _array_damage(folder: Path, node: dict[str, Any]) -> str | None:
    """What is missing or unreadable among the chunk files of one array of the root."""
    try:
        shape = [int(n) for n in node["shape"]]
        chunks = [int(n) for n in node["chunk_grid"]["configuration"]["chunk_shape"]]
        codecs = [c["name"] for c in node["codecs"]]
    except (KeyError, TypeError, ValueError) as err:
        return f"unreadable metadata ({err!r})"
    if not (folder / "zarr.json").is_file():
        return "no zarr.json"
    if 0 in shape:
        return None
    counts = [math.ceil(n / c) for n, c in zip(shape, chunks, strict=True)]
    listed = set(listed_chunks(folder, len(shape)))
    codec = None
    dtype = node.get("data_type")
    if isinstance(dtype, str) and dtype != "string" and codecs[-1] in ("blosc", "zstd"):
        try:
            codec = ChunkCodec(np.dtype(dtype), chunks, codecs[-1])
        except TypeError:
            return f"an unknown data type {dtype!r}"
    for position in itertools.product(*(range(c) for c in counts)):
        if position not in listed:
            return f"the chunk {chunk_key(position)} is missing"
        if codec is not None:
            file = folder / chunk_key(position)
            try:
                codec.decode(file.read_bytes(), str(file))
            except (OSError, ValueError):
                return f"the chunk {chunk_key(position)} is unreadable"
    return None


def points_from(loaded: Sequence[Sequence[np.ndarray]], lo: int) -> list[np.ndarray]:
    """Per output, its values at the points from ``lo`` on, from each round's outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.results.refine_store import points_from
    >>> rounds = [[np.arange(4)], [np.arange(4, 6)], [np.arange(6, 9)]]
    >>> points_from(rounds, 3)[0].tolist()
    [3, 4, 5, 6, 7, 8]
    """
    tails = []
    for leaf in range(len(loaded[0])):
        parts, at = [], 0
        for arrays in loaded:
            if at + len(arrays[leaf]) > lo:
                parts.append(arrays[leaf][max(lo - at, 0):])
            at += len(arrays[leaf])
        tails.append(np.concatenate(parts))
    return tails


def _along_point(space: Space, rounds: np.ndarray | None, step: int
                 ) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """The numeric coordinates on ``point`` (and ``round``): chunked as the outputs are."""
    dim = space.dims[0]
    coords = {str(name): c.variable for name, c in space.coords.items() if c.dims == (dim,)}
    if rounds is not None:
        coords[ROUND] = xr.Variable(dim, rounds)
    along = {}
    for name, var in coords.items():
        values = np.asarray(var.values)
        if values.dtype.kind in "biuf" and step > 0:
            along[name] = (values, jsonable(dict(var.attrs)))
    return along


def write_root(path: Path, space: Space, outputs: Outputs, refinement: Refinement,
               arrays: Sequence[np.ndarray], first: int, step: int) -> None:
    """Bring the root of the refine store ``path`` up to the points of ``space``.

    Parameters
    ----------
    path : Path
        The refine store.
    space : Space
        The zip space of every point so far (over ``point``).
    outputs : Outputs
        The outputs' labels.
    refinement : Refinement
        Goes into the attrs; gives each point's round.
    arrays : sequence of numpy.ndarray
        Per output, its values at the points from ``first - first % step``
        to the last.
    first : int
        The first point the root may not hold yet: the chunks from the one
        holding it on are written.
    step : int
        Points per chunk along ``point`` (the root's, where it has one).

    Examples
    --------
    >>> import tempfile, jax, numpy as np, xarray as xr
    >>> from pathlib import Path
    >>> from labeled_spaces import DataAxis, Space
    >>> from labeled_spaces.results import Outputs
    >>> from labeled_spaces.results.refined import Box, Refinement
    >>> from labeled_spaces.results.refine_store import write_root
    >>> space = Space({"x": DataAxis([0.0, 1.0, 0.5]), "y": DataAxis([0.0, 1.0, 0.5])},
    ...               mode="zip", dim="point")
    >>> outputs = Outputs.build(space, jax.tree.structure(0.0), [()], [np.float32])
    >>> box = Box(("x", "y"), np.zeros(2), np.ones(2), np.zeros(2, bool))
    >>> path = Path(tempfile.mkdtemp()) / "refined.zarr"
    >>> write_root(path, space, outputs, Refinement(box, 2, 1, 3, None),
    ...            [np.array([0.0, 2.0, 1.0], np.float32)], 0, 256)
    >>> xr.open_zarr(path)["round"].values.tolist()
    [0, 0, 1]
    """
    n = space.N
    # blocks of ``step`` points (one of all, while there are fewer): each block one chunk
    nodes, files, attrs = store_metadata(space, outputs, Blocks((n,), (min(step, n),)))
    dim = space.dims[0]
    for var, shape in zip(outputs.var_names, outputs.shapes, strict=True):
        nodes[var]["chunk_grid"]["configuration"]["chunk_shape"] = [step, *shape]
    rounds = None if ROUND in nodes else refinement.rounds_of(np.arange(n))
    along = _along_point(space, rounds, step)
    for name, (values, var_attrs) in along.items():
        nodes[name] = array_node((n,), (step,), values.dtype, [dim], var_attrs, "zstd")
        files.pop(f"{name}/{chunk_key((0,))}", None)
    if rounds is not None:
        attrs["coordinates"] = " ".join(sorted({*attrs.get("coordinates", "").split(),
                                                ROUND}))
    attrs[REFINE_ATTR] = refinement.to_json()
    lo = first - first % step
    layout = stored_layout(outputs)
    codecs = [ChunkCodec(dtype, (step, *shape)) for dtype, shape in layout]
    for b in range(lo // step, math.ceil(n / step)):
        start, stop = b * step, min((b + 1) * step, n)
        for var, (_, shape), codec, array in zip(outputs.var_names, layout, codecs, arrays,
                                                 strict=True):
            replace_file(os.fspath(path / var / chunk_key((b,) + (0,) * len(shape))),
                         codec.encode(array[start - lo:stop - lo]))
        for name, (values, _) in along.items():
            replace_file(os.fspath(path / name / chunk_key((b,))),
                         coordinate_chunk(values[start:stop], (step,)))
        replace_file(os.fspath(path / DONE / chunk_key((b,))), done_mark())
    for relative, data in files.items():  # the output coordinates: whole, as before
        if not relative.endswith("zarr.json"):
            replace_file(os.fspath(path / relative), data)
    for name, node in nodes.items():
        replace_file(os.fspath(path / name / "zarr.json"), json.dumps(node).encode())
    # last: readers take the root's consolidated metadata, so they see this round only now
    replace_file(os.fspath(path / "zarr.json"), json.dumps(root_node(attrs, nodes)).encode())

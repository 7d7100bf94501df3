"""Growing a store along one dimension, in place, so that a crash at any moment is harmless.

When a run extends a store's space by the prefix rule
(:mod:`labeled_spaces.results.growth`), the store is rewritten for the grown
space without touching any stored result: the outputs keep their chunks
(the blocks do not move: the grid only gains positions along one
dimension), and only metadata, the new coordinate chunks and the done
marks change. :func:`plan_growth` decides everything first and writes
nothing (a growth that cannot be made is refused there, the store left
untouched); :meth:`GrowthPlan.apply` then writes, in an order that keeps
the store readable and resumable whatever moment a crash stops it:

1. the done marks of the stored block that the new labels fill up (the
   last, partial one along the dimension, when the store's length is not a
   multiple of its blocks) are removed: that block is computed again;
2. the grown coordinates are written as more chunks of their stored chunk
   shape (new files; a partial last chunk is replaced whole, and keeps its
   stored labels where they were), which the old metadata does not see;
3. the metadata of every array, then the root's (with its consolidated
   copy, the attrs of the grown space and the run identity) replace the old
   ones, each whole or not at all; the root's is the moment the store
   becomes the grown one.

Stopped before 3, the store is the old one (one block less done), and the
same run grows it again; after it, the store is the grown one with its new
blocks to compute.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..grid import Blocks
from ..space import Space
from .growth import Growth
from .names import Outputs
from .store_files import store_metadata
from .store_format import (
    DONE,
    chunk_key,
    coordinate_chunk,
    is_simple_coordinate,
    listed_chunks,
    replace_file,
    root_node,
)
from .store_writer import StoreState, StoreWriteError

__all__ = ["GrowthPlan", "plan_growth"]

logger = logging.getLogger("labeled_spaces")


@dataclass(frozen=True)
class GrowthPlan:
    """Everything a growth writes, decided before anything is written.

    Attributes
    ----------
    path : pathlib.Path
        The store.
    growth : Growth
        The dimension grown and its lengths.
    blocks : Blocks
        The grown store's tiling (the stored block shape over the new grid).
    refill : int or None
        The block position along the grown dimension whose stored blocks are
        computed again (the new labels fill them up), or None.
    files : dict
        ``{relative path: bytes}``: the coordinates' new chunks, then every
        array's metadata, then the root's (written last).
    """

    path: Path
    growth: Growth
    blocks: Blocks
    refill: int | None
    files: dict[str, bytes]

    def kept(self, position: tuple[int, ...]) -> bool:
        """Whether a stored block at ``position`` (per dimension) stays done."""
        return self.refill is None or position[self.growth.axis] != self.refill

    def done_after(self, state: StoreState) -> set[int]:
        """The blocks (numbers in the grown tiling) that stay done, from the stored state."""
        return {int(np.ravel_multi_index(p, self.blocks.counts))
                for p in zip(*np.nonzero(state.done), strict=True) if self.kept(tuple(p))}

    def apply(self) -> None:
        """Grow the store (see the module documentation for the order, and why)."""
        growth = self.growth
        logger.info("growing %s: %d -> %d in %s%s", growth.dim, growth.old, growth.new,
                    self.path, "" if self.refill is None else
                    f" (the stored blocks at position {self.refill} along {growth.dim} are "
                    "computed again: the new labels fill them up)")
        folder = self.path / DONE
        stored = -(-growth.old // self.blocks.step[growth.axis])
        try:
            for position in list(listed_chunks(folder, len(self.blocks.counts))):
                along = position[growth.axis]
                if along == self.refill or along >= stored:  # refilled, or left by a crash
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(folder / chunk_key(position))
            for relative, data in self.files.items():
                target = self.path / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                replace_file(str(target), data)
        except OSError as err:
            raise StoreWriteError(
                err.errno or errno.EIO, f"cannot grow the store {str(self.path)!r} "
                f"({err.strerror or err}); its stored blocks are kept, and running again "
                "grows it", err.filename or str(self.path)) from err


def _coordinate_chunks(name: str, values: np.ndarray, axis: int, chunk: list[int],
                       growth: Growth) -> dict[str, bytes]:
    """The chunks of a grown coordinate from the first one the new labels reach."""
    size = chunk[axis]
    files = {}
    for q in range(growth.old // size, -(-growth.new // size)):
        piece = values[(slice(None),) * axis + (slice(q * size, (q + 1) * size),)]
        position = [0] * values.ndim
        position[axis] = q
        files[f"{name}/{chunk_key(position)}"] = coordinate_chunk(piece, chunk)
    return files


def _refuse(path: Path, growth: Growth, why: str) -> NoReturn:
    raise ValueError(f"store={str(path)!r} would grow along {growth}, but {why}; it is left as "
                     "it is: give a new path, or pass overwrite=True to replace it")


def plan_growth(path: Path, held: dict[str, Any], space: Space, outputs: Outputs,
                growth: Growth) -> GrowthPlan:
    """What growing the store at ``path`` (described by ``held``) for ``space`` writes.

    Reads the store's root metadata and writes nothing.

    Raises
    ------
    ValueError
        When the store cannot grow in place: it holds variables this run does
        not make (added with xarray), or a coordinate along the grown
        dimension that xarray encodes (dates, durations, complex numbers).
    """
    try:
        root = json.loads((path / "zarr.json").read_text())
        stored_nodes = dict(root["consolidated_metadata"]["metadata"])
    except (OSError, ValueError, KeyError, TypeError):
        _refuse(path, growth, "its root metadata (zarr.json, consolidated) cannot be read")
    blocks = Blocks(space.shape, held["step"])
    nodes, _, attrs = store_metadata(space, outputs, blocks)
    extra = sorted(n for n in stored_nodes if n not in nodes and not n.startswith(
        "labeled_spaces/"))
    if extra:
        _refuse(path, growth, f"it holds variables this run does not make ({', '.join(extra)})")
    coords = {str(n): c.variable for n, c in space.coords.items()}
    coord_files: dict[str, bytes] = {}
    merged = {}
    for name, node in nodes.items():
        held_node = stored_nodes.get(name)
        var = coords.get(name)
        if var is None or growth.dim not in var.dims:
            # outputs and the done mask take the new shape; other coordinates are unchanged
            merged[name] = node if held_node is None or var is None else held_node
            continue
        if not is_simple_coordinate(var) or held_node is None:
            _refuse(path, growth, f"its coordinate {name} ({var.dtype}) is written only whole")
        chunk = list(held_node["chunk_grid"]["configuration"]["chunk_shape"])
        grown = dict(node)
        grown["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": chunk}}
        merged[name] = grown
        coord_files.update(_coordinate_chunks(name, np.asarray(var.values),
                                              var.dims.index(growth.dim), chunk, growth))
    files = dict(coord_files)
    for name, node in merged.items():
        files[f"{name}/zarr.json"] = json.dumps(node).encode()
    files["zarr.json"] = json.dumps(root_node(attrs, merged)).encode()  # the last one
    step = blocks.step[growth.axis]
    refill = growth.old // step if growth.old % step else None
    return GrowthPlan(path, growth, blocks, refill, files)

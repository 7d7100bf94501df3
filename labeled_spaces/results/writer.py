"""Writing finished blocks into an existing zarr store, from any process (dask workers too).

A :class:`StoreWriter` is what a store hands the workers that write their
own blocks (``ZarrSink.worker_writer()``): picklable (it pickles as its path
and layout, and opens the store lazily in the process that writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..grid import Block

__all__ = ["DONE", "StoreWriter"]

DONE = "labeled_spaces/done"  # the per-block completion mask, in a subgroup


class StoreWriter:
    """Writes finished blocks into an existing store; usable in any process (dask workers).

    Parameters
    ----------
    path : str
        The store.
    var_names : sequence of str
        The outputs' variables, in output order.
    step : sequence of int
        The block (chunk) shape over the space's dimensions.
    """

    def __init__(self, path: str, var_names: Sequence[str], step: Sequence[int]) -> None:
        self.path = str(path)
        self.var_names = list(var_names)
        self.step = tuple(step)
        self._group: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "var_names": self.var_names, "step": self.step,
                "_group": None}

    def _open(self) -> Any:
        if self._group is None:
            import zarr

            # the arrays first, the group last: threads of one dask worker share this
            # writer, and one that sees the group must find the arrays set too
            group = zarr.open_group(self.path, mode="r+", use_consolidated=False)
            self._arrays = [group[v] for v in self.var_names]
            self._done = group[DONE]
            self._group = group
        return self._group

    def write(self, block: Block, leaves: Sequence[np.ndarray]) -> None:
        """Write a whole block's outputs as its region, then mark the block done."""
        self._open()
        region = block.region
        for array, leaf in zip(self._arrays, leaves, strict=True):
            data = np.asarray(leaf)
            if data.dtype != array.dtype:  # bfloat16, stored widened
                data = data.astype(array.dtype)
            array[region] = data
        position = tuple(o // s for o, s in zip(block.origin, self.step, strict=True))
        self._done[position] = True  # only after the data: a half-written block is redone

    def done_blocks(self) -> np.ndarray:
        """The per-block completion mask (shape: blocks per dimension)."""
        self._open()
        return np.asarray(self._done[...], dtype=bool)

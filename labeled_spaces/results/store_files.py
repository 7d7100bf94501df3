"""What a store of a run holds: its metadata nodes, coordinate files and attrs.

The store (:mod:`labeled_spaces.results.store`) writes these once when it
makes a store; growing a store along a dimension
(:mod:`labeled_spaces.results.store_growth`) writes the nodes and attrs of
the grown space over the old ones. Both build them here, so a grown store
says exactly what a fresh store of the grown space would.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._codec import jsonable
from .._schema import DTYPE_ATTR, STORE_ATTR, STORE_FORMAT
from ..grid import Blocks
from ..space import Space
from .names import Outputs
from .recorded import identity_attrs
from .store_format import DONE, array_node, coordinate_nodes, group_node, root_node

__all__ = ["float_storage", "store_files", "store_metadata", "stored_layout"]

def float_storage(dtype: Any) -> np.dtype:
    """The dtype a variable is stored in: bfloat16 (which zarr lacks) as float32.

    Examples
    --------
    >>> import jax.numpy as jnp, numpy as np
    >>> from labeled_spaces.results.store_files import float_storage
    >>> float_storage(np.dtype(jnp.bfloat16)), float_storage(np.float64)
    (dtype('float32'), dtype('float64'))
    """
    return np.dtype(np.float32) if str(dtype) == "bfloat16" else np.dtype(dtype)


def stored_layout(outputs: Outputs) -> list[tuple[np.dtype, tuple[int, ...]]]:
    """Each output's stored dtype (:func:`float_storage`) and own shape, as written.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.results import Outputs
    >>> from labeled_spaces.results.store_files import stored_layout
    >>> space = Space({"k": GridAxis(0.0, 1.0, 2)}, mode="product")
    >>> stored_layout(Outputs.build(space, jax.tree.structure(0.0), [(3,)], [np.float16]))
    [(dtype('float16'), (3,))]
    """
    return [(float_storage(d), tuple(s)) for d, s in zip(outputs.dtypes, outputs.shapes,
                                                         strict=True)]


def store_metadata(space: Space, outputs: Outputs, blocks: Blocks
                   ) -> tuple[dict[str, dict], dict[str, bytes], dict[str, Any]]:
    """The nodes, coordinate chunk files and root attrs of a store of ``space``'s run.

    Returns ``(nodes, files, attrs)``: ``nodes[path]`` the ``zarr.json`` of
    every array and subgroup (outputs chunked by ``blocks.step``, the done
    mask, the coordinates), ``files[relative path]`` the coordinates'
    files, ``attrs`` the root group's attributes (the space's, the
    outputs', the run identity and the store's description).
    """
    coords = {str(name): c.variable for name, c in space.coords.items()}
    coords.update({name: c.variable() for name, c in outputs.coords.items()})
    nodes, files, others = coordinate_nodes(coords)
    stored_vars = []
    for var, dims, shape, dtype, attrs in zip(outputs.var_names, outputs.dims, outputs.shapes,
                                              outputs.dtypes, outputs.attrs, strict=True):
        stored = float_storage(dtype)
        attrs = dict(attrs)
        if stored != dtype:
            attrs[DTYPE_ATTR] = str(dtype)
        nodes[var] = array_node(space.shape + tuple(shape), blocks.step + tuple(shape), stored,
                                (*space.dims, *dims), jsonable(attrs))
        stored_vars.append({"var": var, "shape": list(shape), "dtype": str(stored)})
    nodes["labeled_spaces"] = group_node()
    nodes[DONE] = array_node(blocks.counts, (1,) * len(blocks.counts), np.dtype(bool), None, {},
                             "zstd")
    description = {"format": STORE_FORMAT, "shape": list(blocks.shape), "step": list(blocks.step),
                   "vars": stored_vars}
    attrs = {**space.attrs, **outputs.file_attrs(), **identity_attrs(space, outputs),
             STORE_ATTR: json.dumps(description)}
    if others:
        attrs["coordinates"] = " ".join(others)
    return nodes, files, attrs


def store_files(space: Space, outputs: Outputs, blocks: Blocks) -> dict[str, bytes]:
    """Every metadata and coordinate file of a new store, by relative path."""
    nodes, files, attrs = store_metadata(space, outputs, blocks)
    files = dict(files)
    for path, node in nodes.items():
        files[f"{path}/zarr.json"] = json.dumps(node).encode()
    files["zarr.json"] = json.dumps(root_node(attrs, nodes)).encode()
    return files

"""The zarr store: results streamed to disk block by block, resumable after any crash.

A store is a zarr group laid out exactly like ``Results.to_xarray()``: the
space's dimensions and coordinates, each output a variable chunked by the
compute blocks (so a block is written as whole chunks, never
read-modify-write), the output coordinates, and the attrs from which the
Space is rebuilt. Beside it, the array ``labeled_spaces/done`` (one chunk
per block) marks each block finished once its data is written, so a block a
crash left half-written is recomputed. ``xarray.open_zarr(path)`` reads the
results without this package; unfinished blocks read as NaN (the fill
value) for floating-point outputs.

A store is created whole before the first block, from a lazy template. A
rerun with the same path checks that the store was made for the same space
and outputs (refusing it otherwise, untouched), adopts its blocks, and skips
the finished ones.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..grid import Block, Blocks
from ..space import Space
from .files import DTYPE_ATTR
from .names import Outputs
from .results import Results
from .writer import DONE, StoreWriter

__all__ = ["DONE", "STORE_ATTR", "StoreWriter", "ZarrSink", "open_store", "store_description"]

logger = logging.getLogger("labeled_spaces")

STORE_ATTR = "labeled_spaces:store"
FORMAT = 1
# attrs that must agree for a store to be resumed (versions may differ)
_SPACE_KEYS = ("mode", "dim", "key", "key_impl", "axes", "state", "selection")


def store_description(outputs: Outputs, blocks: Blocks) -> dict[str, Any]:
    """What a store records of its layout: blocks and outputs (for the resume check)."""
    return {
        "format": FORMAT,
        "model": outputs.fingerprint,
        "shape": list(blocks.shape),
        "step": list(blocks.step),
        "outputs": [
            {"name": n, "var": v, "dims": list(d), "shape": list(s), "dtype": str(t),
             "attrs": a}
            for n, v, d, s, t, a in zip(outputs.names, outputs.var_names, outputs.dims,
                                        outputs.shapes, outputs.dtypes,
                                        [_plain(a) for a in outputs.attrs], strict=True)
        ],
        "output_coords": {
            name: {"dims": list(c.dims), "dtype": str(c.values.dtype),
                   "values": _plain(c.values), "attrs": _plain(c.attrs)}
            for name, c in outputs.coords.items()
        },
    }


def _plain(value: Any) -> Any:
    """JSON-ready, comparable values (arrays as lists, NaN kept as a string)."""
    from .._codec import jsonable

    return json.loads(json.dumps(jsonable(value), default=str))


def _differences(stored: Any, now: Any, where: str = "") -> list[str]:
    """The places where two descriptions differ, each as ``where: the store has X, this run Y``.

    Lists of outputs are compared output by output (by name), so the message
    names the output and the field that differ.
    """
    if isinstance(stored, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(stored) | set(now), key=str):
            found += _differences(stored.get(key), now.get(key), f"{where}.{key}".lstrip("."))
        return found
    if isinstance(stored, list) and isinstance(now, list) and len(stored) == len(now) and all(
            isinstance(x, dict) and "name" in x for x in (*stored, *now)):
        found = []
        for a, b in zip(stored, now, strict=True):
            label = a["name"] if a["name"] == b["name"] else f"{a['name']}/{b['name']}"
            found += _differences(a, b, f"{where}[{label!r}]")
        return found
    if stored != now:
        return [f"{where}: the store has {_short(stored)}, this run {_short(now)}"]
    return []


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _codecs() -> tuple[Any, ...]:
    """How outputs are compressed: Blosc LZ4 with byte shuffling.

    On 400 MB of smooth float32 traces it wrote 614 MB/s to 249 MB, where
    zarr's default (Zstd level 0) wrote 137 MB/s to 320 MB, and no
    compression 713 MB/s to 400 MB: a store should not slow a sweep down.
    """
    from zarr.codecs import BloscCodec

    return (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)


def _float_storage(dtype: np.dtype) -> np.dtype:
    """The dtype a variable is stored in: bfloat16 (which zarr lacks) as float32."""
    return np.dtype(np.float32) if str(dtype) == "bfloat16" else dtype


def _is_store(path: Path) -> bool:
    return (path / "zarr.json").exists() or (path / ".zgroup").exists()


def open_store(path: str | os.PathLike) -> xr.Dataset:
    """The store at ``path`` as a lazy (dask-backed) Dataset, exactly as written.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing path, or one that is not a zarr store.
    """
    target = Path(os.fspath(path))
    if not target.exists():
        raise FileNotFoundError(f"path must be an existing zarr store, got {str(target)!r}")
    if not _is_store(target):
        raise ValueError(f"path must be a zarr store, got {str(target)!r} (no zarr metadata)")
    return xr.open_zarr(target, consolidated=None, chunks={})


class ZarrSink:
    """Results streamed into a zarr store at ``path`` (created, or resumed).

    Parameters
    ----------
    path : str
        A ``.zarr`` directory: created when missing, resumed when it holds a
        store for the same space and outputs, refused otherwise.
    space : Space
        The space being run.
    result_type : type, default Results
        The class of the (lazy) Results returned.
    overwrite : bool, default False
        Replace a store that labeled_spaces made at ``path`` rather than resume it.
    """

    #: the results are on disk: many small blocks, so a crash loses little (see plan.py)
    persistent = True

    def __init__(self, path: str, space: Space, result_type: type[Results] = Results,
                 overwrite: bool = False) -> None:
        self.path = str(path)
        self.space = space
        self.result_type = result_type
        self.overwrite = overwrite
        self.outputs: Outputs | None = None
        self.blocks: Blocks | None = None
        self.writer: StoreWriter | None = None
        self._stored: tuple[Outputs, dict[str, Any]] | None = None  # what _check found

    # -- resuming ---------------------------------------------------------
    def _check_ours(self) -> dict[str, Any]:
        """The attrs of the store at ``path``, after checking that this package made it."""
        if not _is_store(Path(self.path)):
            raise ValueError(
                f"store={self.path!r} exists but is not a zarr store; refusing to overwrite "
                "it: give a new path, or remove it"
            )
        import zarr

        attrs = dict(zarr.open_group(self.path, mode="r").attrs)
        if STORE_ATTR not in attrs:
            raise ValueError(
                f"store={self.path!r} is a zarr store that labeled_spaces did not make; "
                "refusing to write into it"
            )
        return attrs

    def _check(self, outputs: Outputs) -> dict[str, Any]:
        """The stored description, after checking the store was made for this run (once)."""
        if self._stored is not None and self._stored[0] is outputs:
            return self._stored[1]
        attrs = self._check_ours()
        stored = json.loads(attrs[STORE_ATTR])
        mine = self.space.attrs
        space_diff = _differences(
            {k: attrs.get(f"labeled_spaces:{k}") for k in _SPACE_KEYS},
            {k: mine.get(f"labeled_spaces:{k}") for k in _SPACE_KEYS})
        if space_diff:
            raise ValueError(
                f"store={self.path!r} was made for another space, so it is left as it is; "
                f"{'; '.join(space_diff)}. Give a new path to run this space"
            )
        now = store_description(outputs, Blocks(stored["shape"], stored["step"]))
        out_diff = _differences({k: stored.get(k) for k in ("shape", "outputs",
                                                            "output_coords")},
                                {k: now[k] for k in ("shape", "outputs", "output_coords")})
        if out_diff:
            raise ValueError(
                f"store={self.path!r} holds other outputs than this run makes (structure, "
                f"dtype or labels), so it is left as it is; {'; '.join(out_diff)}"
            )
        if stored.get("model") and now["model"] and stored["model"] != now["model"]:
            # a warning, not a refusal: another JAX version traces the same model differently
            warnings.warn(
                f"store={self.path!r} was made by a model that JAX traced differently from "
                "this run's (the model's code, a constant it closes over or an array it is "
                "given changed; or the JAX version did); resuming keeps the blocks the other "
                "model computed. Give a new path to compute everything with this model",
                stacklevel=4,
            )
        self._stored = (outputs, stored)
        return stored

    def preferred_step(self, outputs: Outputs) -> tuple[int, ...] | None:
        """The block shape of an existing store (after checking it fits this run), else None.

        With ``overwrite``, a store that this package made is removed first.
        """
        if self.overwrite and Path(self.path).exists():
            self._check_ours()
            shutil.rmtree(self.path)
        if not Path(self.path).exists():
            return None
        return tuple(self._check(outputs)["step"])

    def worker_writer(self) -> StoreWriter:
        """A picklable writer for dask workers (an absolute path: theirs may differ)."""
        return StoreWriter(os.path.abspath(self.path), self.outputs.var_names, self.blocks.step)

    # -- the Sink protocol ------------------------------------------------
    def open(self, outputs: Outputs, blocks: Blocks) -> set[int]:
        self.outputs, self.blocks = outputs, blocks
        self.writer = StoreWriter(self.path, outputs.var_names, blocks.step)
        if Path(self.path).exists():
            stored = self._check(outputs)
            if tuple(stored["step"]) != blocks.step:
                raise ValueError(f"store={self.path!r} is chunked {stored['step']}, this run "
                                 f"{list(blocks.step)}")
            mask = self.writer.done_blocks().reshape(-1)
            done = {int(k) for k in np.flatnonzero(mask)}
            logger.info("resuming: %d of %d blocks already stored in %s", len(done),
                        len(blocks), self.path)
            return done
        self._create(outputs, blocks)
        return set()

    def _template(self, outputs: Outputs, blocks: Blocks) -> tuple[xr.Dataset, dict]:
        import dask.array as da

        space = self.space
        data, encoding = {}, {}
        for var, dims, shape, dtype, attrs in zip(outputs.var_names, outputs.dims,
                                                  outputs.shapes, outputs.dtypes,
                                                  outputs.attrs, strict=True):
            stored = _float_storage(dtype)
            attrs = dict(attrs)
            if stored != dtype:
                attrs[DTYPE_ATTR] = str(dtype)
            chunks = blocks.step + tuple(shape)
            lazy = da.empty(space.shape + tuple(shape), chunks=chunks, dtype=stored)
            data[var] = xr.Variable((*space.dims, *dims), lazy, attrs)
            fill = np.nan if stored.kind in "fc" else None
            encoding[var] = {"chunks": chunks, "_FillValue": fill, "compressors": _codecs()}
        coords = {name: c.variable() for name, c in outputs.coords.items()}
        attrs = {**space.attrs, **outputs.file_attrs(),
                 STORE_ATTR: json.dumps(store_description(outputs, blocks))}
        ds = xr.Dataset(data, coords=space.coords, attrs=attrs)
        if coords:
            ds = ds.assign_coords(coords)
        # text labels as variable-length strings: zarr v3 specifies those, not fixed-width
        # unicode (which it writes with a warning that other libraries may not read it)
        text = {name: var.astype(object) for name, var in ds.coords.items()
                if var.dtype.kind == "U"}
        return (ds.assign_coords(text) if text else ds), encoding

    def _create(self, outputs: Outputs, blocks: Blocks) -> None:
        """Make the whole store beside ``path`` and rename it there, so a store is whole or absent.

        A crash while the store is being made leaves only a hidden directory
        beside it (``.name.creating-*``), never a half-made store that a rerun
        would refuse.
        """
        import zarr

        target = Path(self.path)
        template, encoding = self._template(outputs, blocks)
        target.parent.mkdir(parents=True, exist_ok=True)  # as zarr would make them
        making = Path(tempfile.mkdtemp(prefix=f".{target.name}.creating-", dir=target.parent))
        try:
            with warnings.catch_warnings():
                # zarr warns that consolidated metadata is not part of its v3 specification;
                # xarray reads it, and plain xarray.open_zarr(path) then warns about nothing
                warnings.filterwarnings("ignore", message="Consolidated metadata")
                template.to_zarr(making, mode="w", compute=False, encoding=encoding,
                                 consolidated=False)
                group = zarr.open_group(str(making), mode="r+")
                group.require_group("labeled_spaces").create_array(
                    "done", shape=blocks.counts, chunks=(1,) * len(blocks.counts),
                    dtype="bool", fill_value=False)
                zarr.consolidate_metadata(str(making))
            os.rename(making, target)  # atomic; fails if another run made the store first
        except BaseException:
            shutil.rmtree(making, ignore_errors=True)
            raise
        logger.info("created store %s: %d blocks of %s", self.path, len(blocks), blocks.step)

    def write(self, block: Block, leaves: Sequence[np.ndarray], count: int | None = None
              ) -> None:
        if count is not None:
            return  # a store keeps whole blocks only: this one is computed again on resume
        self.writer.write(block, leaves)

    def done(self) -> np.ndarray:
        return self.blocks.done_mask(self.writer.done_blocks())

    def _results(self, done: np.ndarray | None) -> Results:
        import dask.array as da
        import zarr

        # dask arrays straight over the zarr arrays (unwritten chunks read as the fill
        # value, NaN): xarray.open_zarr would decode again what this run already knows
        group = zarr.open_group(self.path, mode="r")
        arrays = []
        for var, dtype in zip(self.outputs.var_names, self.outputs.dtypes, strict=True):
            data = da.from_zarr(group[var])
            native = np.dtype(dtype).newbyteorder("=")
            if data.dtype != native or data.dtype.byteorder not in "=|":
                # bfloat16 is stored widened; and zarr names the byte order ("<f4"), which
                # netCDF4 takes for another than its "native" one, with a warning
                data = data.map_blocks(lambda block, t=native: block.astype(t), dtype=native)
            arrays.append(data)
        return self.result_type.from_outputs(self.space, self.outputs, arrays, done)

    def close(self) -> Results:
        done = self.done()
        return self._results(None if done.all() else done)

    def partial(self) -> Results | None:
        if self.outputs is None:
            return None
        return self._results(self.done())



"""Writing and reading the blocks of a store: the writer, and the per-block done state.

:class:`StoreWriter` writes a finished block's chunks and then its done
mark; it is what dask workers are handed. :func:`store_state` says, per
block, what is marked done and whose chunks are there, from one listing of
the store's folders; :func:`done_mask` turns it into a grid-shaped mask
that stays lazy for big grids.
"""

from __future__ import annotations

import errno
import itertools
import json
import math
import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import warn_user
from .._schema import STORE_ATTR
from .._timing import median_seconds
from ..grid import Block, Blocks
from .store_format import (
    DONE,
    ChunkCodec,
    chunk_key,
    done_mark,
    listed_chunks,
    write_file,
)

__all__ = ["StoreState", "StoreWriteError", "StoreWriter", "done_mask",
           "lazy_variable", "read_description", "root_attrs", "store_attrs", "store_state",
           "timed_write"]

#: a done mask of up to this many combinations is a NumPy array; larger ones are lazy
EAGER_DONE = 1 << 20
#: a timed write (:func:`timed_write`) writes at most this many bytes a block
TIMED_WRITE_BYTES = 32 << 20


class StoreWriteError(OSError):
    """A block could not be written into a store (disk full, permission): names the path."""


def root_attrs(path: Path) -> dict[str, Any]:
    """The root group's attrs, read straight from its metadata (zarr 3 or 2)."""
    meta = path / "zarr.json"
    if meta.is_file():
        return dict(json.loads(meta.read_text()).get("attributes") or {})
    legacy = path / ".zattrs"
    return dict(json.loads(legacy.read_text())) if legacy.is_file() else {}


def store_attrs(path: Path, where: str) -> dict[str, Any]:
    """:func:`root_attrs` of a store a run is to write into, ``where`` (``store='a.zarr'``).

    Raises
    ------
    ValueError
        Metadata that cannot be read, naming ``where`` and what to do.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from labeled_spaces.results.store_writer import store_attrs
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "zarr.json").write_text("{not json")
    >>> store_attrs(folder, "store='a.zarr'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: store='a.zarr' cannot be read as a zarr store (...); give a new path, or remove it
    """
    try:
        return root_attrs(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{where} cannot be read as a zarr store ({err}); give a new path, "
                         "or remove it") from None


@dataclass(frozen=True)
class StoreState:
    """Which blocks of a store are finished, per block (never per combination).

    Attributes
    ----------
    blocks : Blocks
        The store's tiling (its chunks).
    marked : numpy.ndarray of bool
        Per block (shape ``blocks.counts``): marked done.
    present : numpy.ndarray of bool
        Per block: every output's chunk file is there.
    mask_lost : bool
        The store's done mask is gone (a partial copy, a deleted folder): no
        block is known to be finished, so none is counted done. A chunk file
        that is there may be half-written, as only the mark, written after
        it, says it is whole.
    """

    blocks: Blocks
    marked: np.ndarray
    present: np.ndarray
    mask_lost: bool = False

    @property
    def done(self) -> np.ndarray:
        """Per block: marked done and its chunks present."""
        return self.marked & self.present

    @property
    def missing(self) -> int:
        """Blocks marked done whose chunks are gone (a partial copy, a deleted chunk)."""
        return int(np.sum(self.marked & ~self.present))


def read_description(path: Path, attrs: dict[str, Any]) -> dict[str, Any]:
    try:
        held = json.loads(attrs[STORE_ATTR])
        Blocks(held["shape"], held["step"])
        return held
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"store {str(path)!r} has no readable {STORE_ATTR!r} attr: {err}"
                         ) from None


def _marked(path: Path, counts: tuple[int, ...]) -> np.ndarray:
    """The done mask per block, from the done array's chunk files (one listing)."""
    mask = np.zeros(counts, dtype=bool)
    codec = ChunkCodec(np.bool_, (1,) * len(counts), "zstd")
    folder = path / DONE
    for position in listed_chunks(folder, len(counts)):
        if any(p >= c for p, c in zip(position, counts, strict=True)):
            continue
        file = folder / chunk_key(position)
        mask[position] = bool(codec.decode(file.read_bytes(), str(file)).reshape(-1)[0])
    return mask


def store_state(path: str | os.PathLike) -> StoreState | None:
    """The per-block state of a store (None for results that no run streamed, e.g. a copy).

    A store a run made whose done mask is gone from its ``labeled_spaces``
    group has no block done (``mask_lost``), never every block. Without that
    group it is a copy written by xarray (``open_zarr(store).to_zarr(copy)``,
    which keeps the attrs but not the group): complete, as any such copy.

    Lists each output's chunk files once, so a block marked done whose
    chunks went missing is found without reading any data.

    Raises
    ------
    ValueError
        For a store holding a symbolic link.
    """
    target = Path(os.fspath(path))
    attrs = root_attrs(target)
    if STORE_ATTR not in attrs or not (target / DONE).parent.is_dir():
        return None
    held = read_description(target, attrs)
    blocks = Blocks(held["shape"], held["step"])
    counts = tuple(blocks.counts)
    mask_lost = not (target / DONE).is_dir()
    marked = np.zeros(counts, dtype=bool) if mask_lost else _marked(target, counts)
    present = np.ones(counts, dtype=bool)
    for var in held.get("vars", []):
        if int(np.prod(var["shape"])) == 0:
            continue  # an empty output has no chunk to miss
        here = np.zeros(counts, dtype=bool)
        own = len(var["shape"])
        for position in listed_chunks(target / var["var"], len(counts) + own):
            head = position[:len(counts)]
            if all(p < c for p, c in zip(head, counts, strict=True)):
                here[head] = True
        present &= here
    return StoreState(blocks, marked, present, mask_lost)


def done_mask(blocks: Blocks, per_block: np.ndarray) -> Any:
    """The grid-shaped done mask of per-block flags: NumPy when small, else lazy (dask).

    A lazy mask is built chunk by chunk (one chunk per block) when read, so a
    store of 1.6e9 combinations never holds a mask of one byte per combination.
    """
    per_block = np.asarray(per_block, dtype=bool).reshape(blocks.counts)
    n = int(np.prod(blocks.shape))
    if n <= EAGER_DONE:
        return blocks.done_mask(per_block)
    import dask.array as da

    chunks = _chunks(blocks.shape, blocks.step)

    def fill(block_info: Any = None) -> np.ndarray:
        info = block_info[None]
        return np.full(info["chunk-shape"], per_block[tuple(info["chunk-location"])])

    name = f"labeled-spaces-done-{uuid.uuid4().hex}"
    return da.map_blocks(fill, chunks=chunks, dtype=bool, name=name, meta=np.array((), bool))


class StoreWriter:
    """Writes finished blocks into an existing store; usable in any process (dask workers).

    Each block's chunks are encoded here and written as files, then the
    block is marked done: a file of a few bytes written beside and renamed
    into place (no round trip through zarr), so that a reader never sees a
    block marked done before its data, nor a half-written mark.

    Parameters
    ----------
    path : str
        The store.
    var_names : sequence of str
        The outputs' variables, in output order.
    step : sequence of int
        The block (chunk) shape over the space's dimensions.
    layout : sequence of (dtype, shape), optional
        Each output's stored dtype and own shape; read from the store when
        not given.

    Raises
    ------
    StoreWriteError
        (an ``OSError``) from :meth:`write`, naming the file that could not
        be written.
    """

    def __init__(self, path: str, var_names: Sequence[str], step: Sequence[int],
                 layout: Sequence[tuple[Any, tuple[int, ...]]] | None = None) -> None:
        self.path = str(path)
        self.var_names = list(var_names)
        self.step = tuple(step)
        self.layout = None if layout is None else [(np.dtype(d), tuple(s)) for d, s in layout]
        self._codecs: list[ChunkCodec] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_codecs": None}

    def _setup(self) -> list[ChunkCodec]:
        if self._codecs is None:
            layout = self.layout
            if layout is None:
                held = read_description(Path(self.path), root_attrs(Path(self.path)))
                by_var = {v["var"]: (np.dtype(v["dtype"]), tuple(v["shape"]))
                          for v in held["vars"]}
                layout = [by_var[v] for v in self.var_names]
            self._codecs = [ChunkCodec(d, self.step + s) for d, s in layout]
        return self._codecs

    def _write(self, relative: str, data: bytes) -> None:
        target = os.path.join(self.path, relative)
        try:
            write_file(target, data)
        except OSError as err:
            raise StoreWriteError(
                err.errno or errno.EIO,
                f"cannot write into the store {self.path!r} ({err.strerror or err}); the "
                "blocks finished so far are kept, and running again resumes", target) from err

    def write(self, block: Block, leaves: Sequence[np.ndarray]) -> None:
        """Write a whole block's outputs as its chunks, then mark the block done."""
        codecs = self._setup()
        position = tuple(o // s for o, s in zip(block.origin, self.step, strict=True))
        for var, codec, leaf in zip(self.var_names, codecs, leaves, strict=True):
            own = (0,) * (len(codec.chunk) - len(position))
            self._write(f"{var}/{chunk_key(position + own)}", codec.encode(leaf))
        self._mark(position)  # only after the data: a half-written block is redone

    def _mark(self, position: tuple[int, ...]) -> None:
        relative = f"{DONE}/{chunk_key(position)}"
        temporary = f"{relative}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        self._write(temporary, done_mark())
        try:  # a mark is whole or absent
            os.replace(os.path.join(self.path, temporary), os.path.join(self.path, relative))
        except OSError as err:
            raise StoreWriteError(err.errno or errno.EIO, f"cannot mark a block done in the "
                                  f"store {self.path!r} ({err.strerror or err})",
                                  os.path.join(self.path, relative)) from err

    def done_blocks(self) -> np.ndarray:
        """The per-block completion mask (shape: blocks per dimension)."""
        held = read_description(Path(self.path), root_attrs(Path(self.path)))
        return _marked(Path(self.path), tuple(Blocks(held["shape"], held["step"]).counts))


def _read_chunk(file: str, shape: tuple[int, ...], codec: ChunkCodec, dtype: np.dtype
                ) -> np.ndarray:
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except FileNotFoundError:  # not written yet: the fill value, as zarr reads it
        return np.full(shape, codec.fill, dtype=dtype)
    return codec.decode(raw, file)[tuple(slice(0, n) for n in shape)].astype(dtype)


def _chunks(shape: Sequence[int], step: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(min(s, size - o) for o in range(0, size, s)) if size else (0,)
                 for size, s in zip(shape, step, strict=True))


def lazy_variable(path: str, var: str, codec: ChunkCodec, shape: tuple[int, ...],
                  step: tuple[int, ...], dtype: Any = None) -> Any:
    """A dask array over a variable's chunk files (a missing chunk reads as the fill value).

    The graph is built directly (one task per chunk file), with no tokenizing
    and nothing read until it is computed. Chunks are cast to ``dtype``
    (default: the stored one, in native byte order).
    """
    dtype = np.dtype(codec.dtype if dtype is None else dtype).newbyteorder("=")
    import dask.array as da

    chunks = _chunks(shape, step)
    folder = os.path.join(path, var)
    name = f"labeled-spaces-{var}-{uuid.uuid4().hex}"
    graph = {}
    for location in itertools.product(*(range(len(c)) for c in chunks)):
        extent = tuple(c[k] for c, k in zip(chunks, location, strict=True))
        graph[(name, *location)] = (_read_chunk, os.path.join(folder, chunk_key(location)),
                                    extent, codec, dtype)
    return da.Array(graph, name, chunks, meta=np.empty((0,) * len(shape), dtype))


def timed_write(var_names: Sequence[str], step: Sequence[int],
                layout: Sequence[tuple[Any, tuple[int, ...]]]) -> float:
    """Seconds :meth:`StoreWriter.write` takes for one block of ``step``, measured.

    Blocks of random bytes (which compress as little as results do) are
    written into a scratch store in the system's temporary directory, never
    beside the store, which stays untouched; the first write (it makes the
    folders) is not counted, the median of the next ones is
    (:func:`~labeled_spaces._timing.median_seconds`). The scratch
    block holds the block's combinations in a row (the same files, the same
    bytes), at most :data:`TIMED_WRITE_BYTES` of them, scaled to the whole.
    Where the temporary directory cannot be written: 0, with a warning.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.results.store_writer import timed_write
    >>> timed_write(["y"], (4, 8), [(np.dtype("float32"), (16,))]) > 0
    True
    """
    lanes = math.prod(step)
    per_lane = sum(np.dtype(d).itemsize * math.prod(s) for d, s in layout)
    part = max(1, min(lanes, TIMED_WRITE_BYTES // max(1, per_lane)))
    rng = np.random.default_rng(0)
    leaves = []
    for dtype, shape in layout:
        dtype = np.dtype(dtype)
        raw = rng.integers(0, 256, size=part * math.prod(shape) * dtype.itemsize, dtype=np.uint8)
        if dtype.kind == "b":
            raw &= 1
        leaves.append(raw.view(dtype).reshape((part, *shape)))
    try:
        with tempfile.TemporaryDirectory(prefix="labeled-spaces-timed-write-") as scratch:
            writer = StoreWriter(scratch, var_names, (part,), layout)
            positions = itertools.count()

            def write_one() -> None:  # each write a new block: new files, as in a run
                k = next(positions)
                writer.write(Block(k, (k * part,), (part,), k * part), leaves)

            seconds = median_seconds(write_one, at_least=2)  # the first makes the folders
    except OSError as err:
        warn_user(f"explain(time=True) could not time writing a block in the temporary "
                  f"directory ({err.strerror or err}); its estimate leaves writing out")
        return 0.0
    return seconds * lanes / part

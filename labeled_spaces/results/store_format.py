"""The bytes of a store: zarr v3 metadata built in memory, chunks encoded in the calling thread.

A store is written as zarr (format 3) would write it, so that zarr and
``xarray.open_zarr`` read it, but without a round trip through zarr's event
loop for every array and chunk: the whole hierarchy's metadata (each node's
``zarr.json``, and the root's consolidated copy) is built once in memory and
written once per file, and a block's chunks are encoded here with the same
codecs (Blosc LZ4 for outputs, Zstd for coordinates and done marks) and
written as plain files. What zarr would need to read back, nothing here does.

Coordinates of kinds that xarray encodes by convention (dates, durations,
complex numbers, 0-d or empty arrays) are encoded by xarray itself, in
memory.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._codec import jsonable

__all__ = [
    "ChunkCodec", "DONE", "array_node", "chunk_key", "coordinate_chunk", "coordinate_nodes",
    "done_mark", "group_node", "is_simple_coordinate", "listed_chunks", "replace_file",
    "root_node", "write_file",
]

DONE = "labeled_spaces/done"  # the per-block completion mask, in a subgroup
_NAN_B64 = base64.b64encode(np.array(np.nan, "<f8").tobytes()).decode()
_KEYS = {"name": "default", "configuration": {"separator": "/"}}
_ZSTD = {"name": "zstd", "configuration": {"level": 0, "checksum": False}}
_ENCODING = {"bool": "bool", "int8": "int8", "int16": "int16", "int32": "int32",
             "int64": "int64", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32",
             "uint64": "uint64", "float16": "float16", "float32": "float32",
             "float64": "float64", "complex64": "complex64", "complex128": "complex128"}


def _blosc(itemsize: int) -> dict[str, Any]:
    """Blosc LZ4 with byte shuffling: on smooth float32 traces, 614 MB/s to 62% of the size."""
    return {"name": "blosc", "configuration": {"typesize": itemsize, "cname": "lz4",
                                               "clevel": 5, "shuffle": "shuffle",
                                               "blocksize": 0}}


def _bytes_codec(dtype: np.dtype) -> dict[str, Any]:
    if dtype.itemsize == 1:
        return {"name": "bytes"}
    return {"name": "bytes", "configuration": {"endian": "little"}}


def array_node(shape: Sequence[int], chunks: Sequence[int], dtype: np.dtype,
               dims: Sequence[str] | None, attrs: Mapping[str, Any], compressor: str = "blosc"
               ) -> dict[str, Any]:
    """The ``zarr.json`` of a numeric or boolean array, as xarray writes it (NaN fill for floats).

    ``compressor`` is ``"blosc"`` (outputs) or ``"zstd"`` (coordinates, done marks).
    """
    dtype = np.dtype(dtype)
    attributes = dict(attrs)
    if dtype.kind == "f":
        fill: Any = "NaN"
        attributes["_FillValue"] = _NAN_B64
    elif dtype.kind == "c":
        fill = ["NaN", "NaN"]
    elif dtype.kind == "b":
        fill = False
    else:
        fill = 0
    node: dict[str, Any] = {
        "shape": [int(n) for n in shape], "data_type": _ENCODING[dtype.name],
        "chunk_grid": {"name": "regular",
                       "configuration": {"chunk_shape": [max(1, int(n)) for n in chunks]}},
        "chunk_key_encoding": _KEYS, "fill_value": fill,
        "codecs": [_bytes_codec(dtype),
                   _blosc(dtype.itemsize) if compressor == "blosc" else _ZSTD],
        "attributes": attributes,
    }
    if dims is not None:
        node["dimension_names"] = list(dims)
    node.update({"zarr_format": 3, "node_type": "array", "storage_transformers": []})
    return node


def _string_node(shape: Sequence[int], dims: Sequence[str], attrs: Mapping[str, Any]
                 ) -> dict[str, Any]:
    return {
        "shape": list(shape), "data_type": "string",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shape)}},
        "chunk_key_encoding": _KEYS, "fill_value": "",
        "codecs": [{"name": "vlen-utf8", "configuration": {}}, _ZSTD],
        "attributes": dict(attrs), "dimension_names": list(dims),
        "zarr_format": 3, "node_type": "array", "storage_transformers": [],
    }


def group_node(attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``zarr.json`` of a group."""
    return {"attributes": dict(attrs or {}), "zarr_format": 3, "node_type": "group"}


def root_node(attrs: Mapping[str, Any], nodes: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The root ``zarr.json``: its attrs and every other node's metadata (consolidated)."""
    members = {path: dict(node) for path, node in nodes.items()}
    for path, node in members.items():
        if node["node_type"] == "group":  # as zarr consolidates a subgroup
            members[path] = {**node, "consolidated_metadata": {
                "kind": "inline", "must_understand": False, "metadata": {}}}
    return {"attributes": dict(attrs), "zarr_format": 3,
            "consolidated_metadata": {"kind": "inline", "must_understand": False,
                                      "metadata": members},
            "node_type": "group"}


def chunk_key(position: Sequence[int]) -> str:
    """The file of the chunk at ``position`` in an array's folder (zarr's default encoding)."""
    return "/".join(["c", *map(str, position)])


class ChunkCodec:
    """Encodes whole chunks of one array as zarr's codecs would, and decodes them.

    Parameters
    ----------
    dtype : numpy dtype
        The stored dtype.
    chunk : sequence of int
        The chunk shape (edge chunks are padded to it with ``fill``).
    compressor : str
        ``"blosc"`` or ``"zstd"``.
    """

    def __init__(self, dtype: Any, chunk: Sequence[int], compressor: str = "blosc") -> None:
        from numcodecs import Blosc, Zstd

        self.dtype = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 \
            else np.dtype(dtype)
        self.chunk = tuple(max(1, int(n)) for n in chunk)
        self.fill = {"f": np.nan, "c": complex(np.nan, np.nan)}.get(self.dtype.kind, 0)
        self.codec = (Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE, blocksize=0,
                            typesize=self.dtype.itemsize)
                      if compressor == "blosc" else Zstd(level=0, checksum=False))

    def encode(self, data: np.ndarray) -> bytes:
        """The bytes of a chunk holding ``data`` (its leading part, at an edge)."""
        data = np.asarray(data)
        if data.shape != self.chunk:
            full = np.full(self.chunk, self.fill, dtype=self.dtype)
            full[tuple(slice(0, n) for n in data.shape)] = data
            data = full
        return bytes(self.codec.encode(np.ascontiguousarray(data, dtype=self.dtype)))

    def decode(self, raw: bytes, where: str = "a chunk") -> np.ndarray:
        """The chunk (full chunk shape) held by ``raw``, read from the file ``where``.

        Raises
        ------
        ValueError
            For bytes that are not such a chunk (a damaged or truncated
            file), naming ``where``: the codec's own error (blosc's
            ``RuntimeError``, a reshape) says neither which file nor what to do.
        """
        try:
            return np.frombuffer(self.codec.decode(raw), dtype=self.dtype).reshape(self.chunk)
        except Exception as err:  # noqa: BLE001 - each codec fails in its own way
            what = " ".join(str(err).split()) or "no message"
            raise ValueError(
                f"the chunk file {where!r} is damaged and cannot be read ({type(err).__name__}"
                f": {what}); remove it and run again: its block is computed anew") from None


@functools.cache
def done_mark() -> bytes:
    """The encoded chunk of one finished block in the done mask (one ``True``)."""
    return ChunkCodec(np.bool_, (1,), "zstd").encode(np.ones(1, bool))


def write_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (made or replaced), never through a symbolic link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def replace_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: beside it, then renamed over it."""
    temporary = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        write_file(temporary, data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def listed_chunks(folder: Path, ndim: int) -> Iterator[tuple[int, ...]]:
    """The positions of the chunk files an array's folder holds (one listing, no reads).

    Raises ``ValueError`` at a symbolic link: a store is written only within itself.
    """
    root = folder / "c"
    if ndim == 0:
        if root.is_file():
            yield ()
        return
    if not root.exists():
        return
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            if os.path.islink(os.path.join(top, name)):
                raise ValueError(
                    f"the store holds a symbolic link at {os.path.join(top, name)!r}; refusing "
                    "to read or write through it (a store is written only within itself)")
        rel = os.path.relpath(top, root)
        head = () if rel == "." else tuple(rel.split(os.sep))
        if len(head) != ndim - 1:
            continue
        for name in files:
            parts = (*head, name)
            # a chunk key is digits only: int() also reads "-1" (the last block, counted done
            # by a file that is no chunk), "+1", " 1" and "1_0"
            if all(p.isascii() and p.isdigit() for p in parts):
                yield tuple(int(p) for p in parts)
            # else not a chunk (a temporary file of another tool)


def is_simple_coordinate(coord: xr.Variable) -> bool:
    """Whether a coordinate is written here (numbers, booleans, text), not by xarray."""
    if coord.ndim == 0 or coord.size == 0:
        return False
    kind = coord.dtype.kind
    if kind in "biuf":
        return coord.dtype.name in _ENCODING
    if kind == "U":
        return True
    if kind == "O":
        return all(isinstance(v, str) for v in np.asarray(coord.values).reshape(-1))
    return False


def coordinate_chunk(values: np.ndarray, chunk: Sequence[int]) -> bytes:
    """The bytes of a coordinate's chunk of shape ``chunk`` holding ``values`` (its leading part).

    Numbers with the coordinates' Zstd codec; text as zarr's variable-length
    UTF-8 strings, padded with empty strings at an edge.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "UO":
        return ChunkCodec(values.dtype, chunk, "zstd").encode(values)
    from numcodecs import VLenUTF8, Zstd

    full = np.full(tuple(chunk), "", dtype=object)
    full[tuple(slice(0, n) for n in values.shape)] = values.astype(object)
    raw = VLenUTF8().encode(full.reshape(-1))
    return bytes(Zstd(level=0, checksum=False).encode(raw))


def coordinate_nodes(coords: Mapping[str, xr.Variable]
                     ) -> tuple[dict[str, dict], dict[str, bytes], list[str]]:
    """Metadata and chunk files of coordinates, and the names of the non-index ones.

    Returns ``(nodes, files, others)``: ``nodes[name]`` the ``zarr.json`` of
    each, ``files[relative path]`` the bytes of every file to write (their
    ``zarr.json`` included), ``others`` the coordinates that are not a
    dimension's index (xarray lists them in the root's ``coordinates`` attr).
    """
    nodes: dict[str, dict] = {}
    files: dict[str, bytes] = {}
    hard = {}
    for name, var in coords.items():
        if not is_simple_coordinate(var):
            hard[name] = var
            continue
        attrs = jsonable(dict(var.attrs))
        values = np.asarray(var.values)
        if values.dtype.kind in "UO":
            node = _string_node(values.shape, [str(d) for d in var.dims], attrs)
        else:
            node = array_node(values.shape, values.shape, values.dtype,
                              [str(d) for d in var.dims], attrs, "zstd")
        nodes[name] = node
        files[f"{name}/{chunk_key((0,) * values.ndim)}"] = coordinate_chunk(values, values.shape)
    if hard:  # dates, durations, complex, 0-d: xarray encodes them, in memory
        import zarr

        held: dict[str, Any] = {}
        # text as zarr's variable-length strings, as above: numpy's fixed-width text has
        # no zarr v3 specification (zarr warns that it may change without notice)
        hard = {name: var.astype(object) if var.dtype.kind == "U" else var
                for name, var in hard.items()}
        with warnings.catch_warnings():
            # bytes labels (numpy "S") have no zarr v3 specification yet either, and no
            # stable form to write them in: zarr warns at every store, which reads them back
            warnings.filterwarnings("ignore", category=zarr.errors.UnstableSpecificationWarning)
            xr.Dataset(coords=hard).to_zarr(zarr.storage.MemoryStore(held), zarr_format=3,
                                            consolidated=False, mode="w")
        for key, buffer in held.items():
            if key == "zarr.json":
                continue
            raw = buffer.to_bytes()
            name, _, rest = key.partition("/")
            if rest == "zarr.json":
                nodes[name] = json.loads(raw)
            else:
                files[key] = raw
    for name, node in nodes.items():
        files[f"{name}/zarr.json"] = json.dumps(node).encode()
    others = sorted(n for n, v in coords.items() if not (v.ndim == 1 and v.dims[0] == n))
    return nodes, files, others

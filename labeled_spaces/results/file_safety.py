"""Reading a file as data only: what is checked before any of its data is read.

Opening a netCDF file or zarr store of results (``open_results``, the
``info`` command) goes through :func:`reading` and :func:`open_dataset`:

- only a regular file or a directory is opened (never a pipe or a device),
  and a store must hold only its own files and folders (no symbolic links);
- an HDF5 (netCDF4) file must keep all its data inside itself: a variable
  with external storage, a virtual dataset or an external link, which make
  the HDF5 library read other files, is refused before anything is read;
- a refusal's message quotes at most :data:`MAX_MESSAGE` characters, however
  much the file's attrs hold;
- everything the file's metadata and attrs claim is bounded by the file's
  own size (see :func:`labeled_spaces._codec.decode_budget`): the
  coordinates xarray loads when it opens a file are counted before it
  does, so a 5 kB file that claims a 2**30-point dimension is refused.

Each refusal is a ``ValueError`` that names the file and what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._codec import charge, decode_budget, read_json
from .._paths import check_openable, checked_size
from .._schema import COMPLEX_ATTR
from .refine_store import holds_rounds

__all__ = ["MAX_MESSAGE", "check_hdf5", "open_dataset", "reading"]

#: a refusal's message beyond this many characters is elided in its middle
MAX_MESSAGE = 2000

# what one element of a variable-length (string, object) coordinate is counted
_VLEN_BYTES = 16


@contextmanager
def reading(path: Any) -> Iterator[Path]:
    """Check ``path`` and bound what may be decoded from it while the block runs.

    Yields the path. Raises ``FileNotFoundError`` for a missing path and a
    ``ValueError`` for a pipe, a device, a link inside a store, and (inside
    the block) for a claim beyond the file's size or JSON nested too deep.
    """
    target = check_openable(path, "path", "zarr store or netCDF file")
    size = checked_size(target)
    with decode_budget(size, f"{target}"):
        try:
            yield target
        except RecursionError:
            raise ValueError(f"{str(target)!r} holds metadata nested too deep to be results"
                             ) from None
        except (ValueError, TypeError) as err:
            # a refusal that quotes what the file holds (a 2 MB mode, an outputs list of
            # 10**6 names) says so in a bounded message: its head and tail, the middle elided
            text = str(err)
            if len(text) > MAX_MESSAGE:
                err.args = (f"{text[:MAX_MESSAGE - 300]} ... ({len(text) - MAX_MESSAGE + 100:,} "
                            f"characters elided) ... {text[-200:]}",)
            raise


def check_hdf5(path: Path) -> bool:
    """Refuse an HDF5 file that would make the reader read other files; whether it is HDF5.

    Every link is visited without being followed: external links, and
    datasets with external storage or a virtual layout (which map other
    files), are a ``ValueError`` naming the object.
    """
    import h5py

    if not h5py.is_hdf5(path):
        return False  # netCDF3 (classic) files refer to nothing outside themselves
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{str(path)!r} cannot be read as an HDF5 (netCDF4) file: {err}"
                         ) from None
    with handle:
        problems: list[str] = []

        def visit(name: str, link: Any) -> None:
            if isinstance(link, h5py.ExternalLink):
                problems.append(f"{name!r} is a link to {link.filename!r}")
                return
            if not isinstance(link, h5py.HardLink):
                return  # a soft link names a path inside this file
            item = handle.get(name)
            if isinstance(item, h5py.Dataset):
                if item.is_virtual:
                    problems.append(f"the variable {name!r} is a virtual dataset (data from "
                                    "other files)")
                elif item.id.get_create_plist().get_external_count() > 0:
                    problems.append(f"the variable {name!r} keeps its data in another file "
                                    "(HDF5 external storage)")

        handle.visititems_links(visit)
    if problems:
        raise ValueError(f"a file must hold its data itself; {str(path)!r}: "
                         f"{'; '.join(problems[:3])}")
    return True


def _charge_coordinates(path: Path, variables: list[tuple[str, tuple[str, ...],
                                                         tuple[int, ...], int]]) -> None:
    """Count the coordinates xarray loads on opening (1-D, named as their dimension)."""
    for name, dims, shape, itemsize in variables:
        if len(dims) == 1 and dims[0] == name:
            count = int(np.prod(shape, dtype=np.float64))
            charge(count * max(itemsize, 1), f"the coordinate {name!r} of {str(path)!r} "
                                             f"({count:,} values)")


def _netcdf_layout(path: Path) -> tuple[bool, list[tuple[str, tuple[str, ...],
                                                         tuple[int, ...], int]]]:
    """Whether the file holds complex values (see ``write_netcdf``), and its variables."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            layout = []
            for name, var in nc.variables.items():
                dtype = var.dtype
                itemsize = _VLEN_BYTES if dtype is str or getattr(dtype, "kind", "O") == "O" \
                    else np.dtype(dtype).itemsize
                layout.append((str(name), tuple(var.dimensions), tuple(var.shape), itemsize))
            return COMPLEX_ATTR in nc.ncattrs(), layout
    except OSError as err:
        raise ValueError(f"path must be a netCDF file or zarr store, got {str(path)!r}: "
                         f"{err}") from None


def _zarr_layout(path: Path) -> list[tuple[str, tuple[str, ...], tuple[int, ...], int]]:
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        layout = []
        for name, array in group.arrays():
            dims = getattr(array.metadata, "dimension_names", None) \
                or array.attrs.get("_ARRAY_DIMENSIONS") or ()
            if not isinstance(dims, (list, tuple)):  # what the file says, checked
                raise TypeError(f"array {name!r} names its dimensions {dims!r}")
            dtype = np.dtype(array.dtype) if isinstance(array.dtype, np.dtype) else None
            itemsize = _VLEN_BYTES if dtype is None or dtype.kind == "O" else dtype.itemsize
            layout.append((str(name), tuple(str(d) for d in dims), tuple(array.shape),
                           itemsize))
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"path must be a netCDF file or zarr store, got {str(path)!r}: "
                         f"{err}") from None
    return layout


def _is_store(path: Path) -> bool:
    return (path / "zarr.json").exists() or (path / ".zgroup").exists()


def open_dataset(path: Path) -> xr.Dataset:
    """The netCDF file or zarr store at ``path``, lazily, after the checks above.

    Call inside :func:`reading`. netCDF files are opened with
    ``auto_complex`` only where they say they hold complex values (netCDF4
    would read a real variable with a last dimension of length 2 named ``c``
    as complex). Names, dtypes and attrs are as in the file.
    """
    if path.is_dir():
        if not _is_store(path):
            if holds_rounds(path):  # refine's store in its first round, or an earlier version's
                raise ValueError(
                    f"{str(path)!r} holds rounds of refine but no results over all points yet: "
                    "a refine still running or stopped in its first round, or a store made by "
                    "an earlier version; run refine again with the same arguments and store= "
                    "this path to write them (the finished rounds and blocks are read back, "
                    "not computed)")
            raise ValueError(f"path must be a zarr store, got {str(path)!r} (no zarr metadata)")
        _charge_coordinates(path, _zarr_layout(path))
        try:
            ds = xr.open_zarr(path, consolidated=None, chunks={})
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"path must be a netCDF file or zarr store, got {str(path)!r}: "
                             f"{err}") from None
    else:
        check_hdf5(path)
        auto_complex, layout = _netcdf_layout(path)
        _charge_coordinates(path, layout)
        try:
            ds = xr.open_dataset(path, chunks={}, auto_complex=auto_complex)
        except (OSError, ValueError) as err:
            raise ValueError(f"path must be a netCDF file or zarr store, got {str(path)!r}: "
                             f"{err}") from None
    for name, value in ds.attrs.items():  # JSON held as objects by zarr: bounded too
        if isinstance(value, (dict, list)):
            read_json(value, str(name))
    return ds


def file_kind(path: Path) -> str:
    """``"zarr store"`` or ``"netCDF file"``."""
    return "zarr store" if os.path.isdir(path) else "netCDF file"

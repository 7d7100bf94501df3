"""The zarr store: results streamed to disk block by block, resumable after any crash.

A store is a zarr (format 3) group laid out exactly like
``Results.to_xarray()``: the space's dimensions and coordinates, each output
a variable chunked by the compute blocks (so a block is written as whole
chunks, never read-modify-write), the output coordinates, and the attrs
from which the Space is rebuilt, with the run identity
(:mod:`labeled_spaces.results.identity`). Beside it, the array
``labeled_spaces/done`` (one chunk per block) marks each block finished
once its data is written, so a block a crash left half-written is
recomputed. ``xarray.open_zarr(path)`` reads the results without this
package; unfinished blocks read as NaN (the fill value) for floating-point
outputs.

A store is made whole beside its path (``.name.creating-PID-*``) and renamed
there, so it is whole or absent; its metadata is built in memory and
written once (:mod:`labeled_spaces.results.store_format`). A rerun with the
same path resumes only the same run: any difference in its inputs is
refused, naming it, and the store is left untouched; ``overwrite=True``
replaces it (the new store is made beside it, then swapped in). A run whose
space extends the store's along one dimension by the prefix rule grows it
in place (:mod:`labeled_spaces.results.growth`,
:mod:`labeled_spaces.results.store_growth`). A block
marked done counts only while its chunks are there, and the done state is
kept per block, never per combination
(:mod:`labeled_spaces.results.store_writer`). Two runs that create the same
store at once: the second adopts the first's store and resumes it.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._format import format_count
from .._paths import checked_size, holds_something, process_running
from .._schema import KEY_KIND_ATTR, STORE_ATTR
from ..axes.keys import typed_key
from ..grid import Block, Blocks
from ..space import Space
from .growth import find_growth
from .identity import RunIdentity, run_identity
from .names import Outputs
from .preview import StorePreview
from .results import Results
from .store_files import float_storage, store_files, stored_layout
from .store_format import DONE, ChunkCodec, write_file
from .store_growth import GrowthPlan, plan_growth
from .store_writer import (
    StoreState,
    StoreWriteError,
    StoreWriter,
    done_mask,
    lazy_variable,
    read_description,
    store_attrs,
    store_state,
    timed_write,
)

__all__ = ["DONE", "StoreState", "StoreWriteError", "StoreWriter", "ZarrSink",
           "done_mask", "open_store", "store_state"]

logger = logging.getLogger("labeled_spaces")

#: a ``.creating-*`` or ``.replaced-*`` folder this old is a leftover even if its pid lives
STALE_SECONDS = 24 * 3600


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


def _refuse_links(target: Path) -> None:
    """A ``ValueError`` for any symbolic link inside the store: it is written only within itself."""
    for top, dirs, files in os.walk(target):
        for name in dirs + files:
            where = os.path.join(top, name)
            if os.path.islink(where):
                raise ValueError(
                    f"store={str(target)!r} holds a symbolic link at {where!r}; refusing to "
                    "write through it (a store is written only within itself): give a new "
                    "path, or replace the link by the folder or file itself")


def _leftover(folder: Path) -> bool:
    """Whether a ``.creating-*``/``.replaced-*`` folder was left by a run that is gone."""
    try:
        age = time.time() - folder.stat().st_mtime
    except OSError:
        return False
    if age > STALE_SECONDS:
        return True
    tail = folder.name.rsplit("-", 2)
    try:
        pid = int(tail[-2])
    except (IndexError, ValueError):
        return False  # not named by this version: only its age tells
    return not process_running(pid)


def _clean_leftovers(target: Path) -> None:
    """Remove what killed runs left beside ``target`` while creating or replacing it."""
    prefixes = tuple(f".{target.name}.{kind}-" for kind in ("creating", "replaced"))
    for name in os.listdir(target.parent):
        folder = target.parent / name
        if name.startswith(prefixes) and folder.is_dir() and not folder.is_symlink() \
                and _leftover(folder):
            logger.info("removing %s, left by a run that was killed", folder)
            shutil.rmtree(folder, ignore_errors=True)


# a Space's key, by whether it is raw (a resumed store's key may be the other kind)
_KINDS = {True: "raw uint32 data (jax.random.PRNGKey)", False: "a typed key (jax.random.key)"}


class ZarrSink:
    """Results streamed into a zarr store at ``path`` (created, or resumed).

    Parameters
    ----------
    path : str
        A ``.zarr`` directory: created when missing, resumed when it holds a
        store of the same run (see :mod:`labeled_spaces.results.identity`),
        refused otherwise.
    space : Space
        The space being run.
    result_type : type, default Results
        The class of the (lazy) Results returned.
    overwrite : bool, default False
        Replace an existing store (made by labeled_spaces) instead of
        resuming it.
    """

    #: the results are on disk: many small blocks, so a crash loses little (see plan.py)
    persistent = True

    def __init__(self, path: str, space: Space, result_type: type[Results] = Results,
                 overwrite: bool = False) -> None:
        self.path = str(path)
        self.space = space
        self.result_type = result_type
        self.overwrite = bool(overwrite)
        self.outputs: Outputs | None = None
        self.blocks: Blocks | None = None
        self.writer: StoreWriter | None = None
        self._finished: set[int] = set()
        self._stored: tuple[Outputs, dict[str, Any]] | None = None  # what _check found
        #: the growth that _check planned and open() makes (see results.store_growth)
        self.growth: GrowthPlan | None = None

    # -- resuming ---------------------------------------------------------
    def _attrs(self) -> dict[str, Any]:
        target = Path(self.path)
        if not _is_store(target):
            raise ValueError(
                f"store={self.path!r} exists but is not a zarr store; refusing to overwrite "
                "it: give a new path, or remove it"
            )
        attrs = store_attrs(target, f"store={self.path!r}")
        if STORE_ATTR not in attrs:
            raise ValueError(
                f"store={self.path!r} is a zarr store that labeled_spaces did not make; "
                "refusing to write into it"
            )
        return attrs

    def _check(self, outputs: Outputs) -> dict[str, Any]:
        """The stored description, after checking the store was made by this run (once).

        A run that extends the store along one dimension by the prefix rule
        (:mod:`labeled_spaces.results.growth`) is not refused: the growth is
        planned here (nothing written) and made by :meth:`open`.
        """
        if self._stored is not None and self._stored[0] is outputs:
            return self._stored[1]
        attrs = self._attrs()
        stored = RunIdentity.from_attrs(attrs)
        if stored is None:
            raise ValueError(
                f"store={self.path!r} records no run identity (an earlier version of "
                "labeled_spaces made it), so nothing says it was made by this run; it is "
                "left as it is: give a new path, or pass overwrite=True to replace it")
        held = read_description(Path(self.path), attrs)
        now, where = run_identity(self.space, outputs), f"store={self.path!r}"
        growth, refusal = find_growth(stored, now, held["shape"], self.space, where)
        if refusal:
            raise ValueError(refusal)
        self.growth = None if growth is None else plan_growth(
            Path(self.path), held, self.space, outputs, growth)
        # a model given keys (KeyAxis, PointKey) traces apart with typed keys and raw ones
        raw = attrs.get(KEY_KIND_ATTR) == "raw"
        keyed = self.space.layout.keys is not None and raw == typed_key(self.space.key)
        stored.check_program(now, where, f"the Space's key was {_KINDS[raw]} and is "
                             f"{_KINDS[not raw]} now, so the model gets its keys in another "
                             "form with the same data" if keyed else "")
        self._stored = (outputs, held)
        return held

    def preferred_step(self, outputs: Outputs) -> tuple[int, ...] | None:
        """The block shape of an existing store (after checking it fits this run), else None."""
        if self.overwrite or not holds_something(self.path):
            return None
        return tuple(self._check(outputs)["step"])

    def preview(self, outputs: Outputs, blocks: Blocks) -> StorePreview:
        """What this run would find in the store, read without writing anything (explain())."""
        if self.overwrite or not holds_something(self.path):
            held = holds_something(self.path)
            return StorePreview(self.path, "replaced" if held else "new", 0,
                                checked_size(Path(self.path)) if held else 0)
        self._check(outputs)
        found = store_state(self.path)
        plan: GrowthPlan | None = self.growth
        if found is None:
            done: set[int] = set()
        elif plan is not None:
            done = plan.done_after(found)
        else:
            done = {int(k) for k in np.flatnonzero(found.done.reshape(-1))}
        state = f"growing {plan.growth}" if plan is not None else (
            "complete" if len(done) == len(blocks) else "resumed")
        return StorePreview(self.path, state, len(done), checked_size(Path(self.path)))

    def _resume(self, outputs: Outputs, blocks: Blocks) -> set[int]:
        stored = self._check(outputs)
        if tuple(stored["step"]) != blocks.step:
            raise ValueError(f"store={self.path!r} is chunked {stored['step']}, this run "
                             f"{list(blocks.step)}; give the same chunk_size, a new path, or "
                             "overwrite=True")
        _refuse_links(Path(self.path))
        state = store_state(self.path)
        if state is None or state.mask_lost:  # refused before a growth writes anything
            raise ValueError(f"store={self.path!r} has no done mask ({DONE}); it is left as "
                             "it is: give a new path, or overwrite=True")
        if self.growth is not None:
            self.growth.apply()
            self.growth = None
            state = store_state(self.path)
            assert state is not None, "a grown store keeps its done mask"
        if state.missing:
            logger.warning("%d blocks of %s are marked done but their chunks are missing "
                           "(a partial copy?): computing them again", state.missing,
                           self.path)
        done = {int(k) for k in np.flatnonzero(state.done.reshape(-1))}
        logger.info("resuming: %d of %d blocks already stored in %s", len(done), len(blocks),
                    self.path)
        return done

    def worker_writer(self) -> StoreWriter:
        """A picklable writer for dask workers (an absolute path: theirs may differ)."""
        assert self.outputs is not None and self.blocks is not None, "open() comes first"
        return StoreWriter(os.path.abspath(self.path), self.outputs.var_names,
                           self.blocks.step, stored_layout(self.outputs))

    def write_seconds(self, outputs: Outputs, blocks: Blocks) -> float:
        """Seconds one block takes to write, timed on a scratch store (explain(time=True))."""
        return timed_write(outputs.var_names, blocks.step, stored_layout(outputs))

    # -- the Sink protocol ------------------------------------------------
    def open(self, outputs: Outputs, blocks: Blocks) -> set[int]:
        self.outputs, self.blocks = outputs, blocks
        self.writer = StoreWriter(self.path, outputs.var_names, blocks.step, stored_layout(outputs))
        target = Path(self.path)
        if holds_something(target) and not self.overwrite:  # an empty folder: a new store
            self._finished = self._resume(outputs, blocks)
        elif self._create(outputs, blocks):
            self._finished = set()
        else:  # another run created it first: resume it, if it is this run's
            logger.info("store %s was created by another run meanwhile: resuming it",
                        self.path)
            self._finished = self._resume(outputs, blocks)
        return set(self._finished)

    def _create(self, outputs: Outputs, blocks: Blocks) -> bool:
        """Make the whole store beside ``path`` and rename it there; False if another run won.

        A crash while the store is being made leaves only a hidden folder
        beside it (``.name.creating-PID-*``), never a half-made store; such
        leftovers are removed once their run is gone. With ``overwrite``
        the old store is swapped out and removed only once the new one is
        whole.
        """
        target = Path(self.path)
        replacing = self.overwrite and holds_something(target)
        if replacing:
            self._attrs()  # only a store of ours is replaced
        files = store_files(self.space, outputs, blocks)
        target.parent.mkdir(parents=True, exist_ok=True)  # as zarr would make them
        _clean_leftovers(target)
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        making = target.parent / f".{target.name}.creating-{tag}"
        try:
            os.mkdir(making)
            for relative, data in files.items():
                write_file(str(making / relative), data)
            if replacing:
                old = target.parent / f".{target.name}.replaced-{tag}"
                os.rename(target, old)
                os.rename(making, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                try:
                    os.rename(making, target)  # atomic; fails if another run made it first
                except OSError as err:
                    if err.errno in (errno.EEXIST, errno.ENOTEMPTY) and _is_store(target):
                        shutil.rmtree(making, ignore_errors=True)
                        return False
                    raise
        except OSError as err:
            shutil.rmtree(making, ignore_errors=True)
            raise StoreWriteError(err.errno or errno.EIO,
                                  f"cannot create the store {self.path!r} "
                                  f"({err.strerror or err})", err.filename or self.path
                                  ) from err
        except BaseException:
            shutil.rmtree(making, ignore_errors=True)
            raise
        logger.info("%s store %s: %s of %s", "replaced" if replacing else "created",
                    self.path, format_count(len(blocks), "block"), blocks.step)
        return True

    def write(self, block: Block, leaves: Sequence[np.ndarray], count: int | None = None
              ) -> None:
        if count is not None:
            return  # a store keeps whole blocks only: this one is computed again on resume
        assert self.writer is not None, "open() comes first"
        self.writer.write(block, leaves)
        self._finished.add(block.index)

    def _per_block(self) -> np.ndarray:
        """Per block: finished (by this process, or marked on disk by dask workers)."""
        blocks = self.blocks
        assert blocks is not None and self.writer is not None, "open() comes first"
        per_block = np.zeros(len(blocks), dtype=bool)
        per_block[sorted(self._finished)] = True
        if not per_block.all():
            per_block |= self.writer.done_blocks().reshape(-1)
        return per_block

    def done(self) -> Any:
        assert self.blocks is not None, "open() comes first"
        return done_mask(self.blocks, self._per_block())

    def _results(self, per_block: np.ndarray | None) -> Results:
        blocks, outputs = self.blocks, self.outputs
        assert blocks is not None and outputs is not None, "open() comes first"
        arrays = []
        for var, dtype, shape in zip(outputs.var_names, outputs.dtypes, outputs.shapes,
                                     strict=True):
            stored = float_storage(dtype)
            codec = ChunkCodec(stored, blocks.step + tuple(shape))
            # bfloat16 is stored widened; and the little-endian dtype ("<f4") is another
            # than netCDF4's "native" one, which it would warn about: chunks are read as
            # the output's dtype, in native byte order
            data = lazy_variable(self.path, var, codec, blocks.shape + tuple(shape),
                                 blocks.step + tuple(shape), dtype)
            arrays.append(data)
        done = None if per_block is None else done_mask(blocks, per_block)
        return self.result_type.from_outputs(self.space, outputs, arrays, done)

    def close(self) -> Results:
        per_block = self._per_block()
        return self._results(None if per_block.all() else per_block)

    def partial(self) -> Results | None:
        if self.outputs is None:
            return None
        return self._results(self._per_block())

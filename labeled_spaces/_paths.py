"""Paths: what may be opened, and temporary files beside a target that a rename puts in place.

A file is data, so it is opened only when it is a regular file or a
directory: a named pipe would make a reader wait forever, and a device
would hand it endless bytes. Files and folders written through a temporary
name are created by the operating system's own calls with the usual modes
(0o666 and 0o777 less the umask), as ``open()`` and ``mkdir`` would make
them, so a renamed result has the permissions the user expects. Their
names hold the process id (``.{name}.{pid}-{random}.tmp``), so leftovers
of a killed write are told from a write in progress: only our own pattern,
only from processes no longer running and only when untouched for a while
is ever removed.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import os
import re
import secrets
import stat
import time
from pathlib import Path

__all__ = [
    "STALE_AFTER",
    "check_openable",
    "checked_size",
    "holds_something",
    "make_temp_beside",
    "process_running",
    "remove_stale_leftovers",
]

# a leftover untouched for this many seconds, of a process no longer running, is stale
STALE_AFTER = 600.0


def holds_something(path: str | os.PathLike) -> bool:
    """Whether ``path`` exists and is not an empty folder (one made for a store to fill).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from labeled_spaces._paths import holds_something
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> holds_something(folder), holds_something(folder / "missing"), holds_something("/etc")
    (False, False, True)
    """
    target = Path(os.fspath(path))
    if target.is_dir() and not target.is_symlink():
        with os.scandir(target) as entries:
            return next(entries, None) is not None
    return os.path.lexists(target)


def check_openable(path: str | os.PathLike, what: str = "path",
                   expected: str = "file or directory") -> Path:
    """``path`` as a Path, refused with a ``ValueError`` unless a regular file or directory.

    Symbolic links are followed (a link to a pipe is a pipe). A missing path
    is a ``FileNotFoundError``.

    Examples
    --------
    >>> import os, tempfile
    >>> from labeled_spaces._paths import check_openable
    >>> fifo = os.path.join(tempfile.mkdtemp(), "pipe")
    >>> os.mkfifo(fifo)
    >>> check_openable(fifo)
    Traceback (most recent call last):
    ...
    ValueError: path must be a regular file or a directory, got a named pipe (FIFO) at '...pipe'
    """
    target = Path(os.fspath(path))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} must be an existing {expected}, got {str(target)!r}"
                                f"{_nearest_sibling(target)}") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return target
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else
            "a character device" if stat.S_ISCHR(mode) else
            "a block device" if stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "neither a file nor a directory")
    raise ValueError(f"{what} must be a regular file or a directory, got {kind} at "
                     f"{str(target)!r}")


def _nearest_sibling(target: Path, most: int = 10_000) -> str:
    """``; did you mean 'sweep.zarr'?`` for a close name beside a missing ``target``, or ``""``.

    Only the first ``most`` entries of the folder are read (a huge folder is
    not listed for a hint); a missing folder is named as such.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from labeled_spaces._paths import _nearest_sibling
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "sweep.zarr").mkdir()
    >>> _nearest_sibling(folder / "sweep.zar")
    "; did you mean 'sweep.zarr'?"
    >>> _nearest_sibling(folder / "nowhere" / "x.nc")[:15]
    '; there is no f'
    """
    parent = target.parent
    if not parent.is_dir():
        return f"; there is no folder {str(parent)!r}"
    names: list[str] = []
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        for entry in itertools.islice(entries, most):
            names.append(entry.name)
    close = difflib.get_close_matches(target.name, names, n=1, cutoff=0.8)
    return f"; did you mean {close[0]!r}?" if close else ""


def checked_size(path: Path) -> int:
    """Bytes held by a file, or by the files of a directory, which must hold only those.

    Inside a directory (a zarr store) every entry must be a regular file or
    a directory: a symbolic link (which could point anywhere), a pipe or a
    device is a ``ValueError`` naming it. The size bounds what the file may
    make a reader build (see :func:`labeled_spaces._codec.decode_budget`).

    Examples
    --------
    >>> import os, pathlib, tempfile
    >>> from labeled_spaces._paths import checked_size
    >>> store = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (store / "zarr.json").write_text("{}")
    >>> checked_size(store)
    2
    >>> os.symlink("/etc/passwd", store / "c")
    >>> checked_size(store)
    Traceback (most recent call last):
    ...
    ValueError: a store must hold only its own files and folders, got the symbolic link ...
    """
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        return int(info.st_size)
    total = 0
    pending = [path]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    raise ValueError(f"a store must hold only its own files and folders, got "
                                     f"the symbolic link {entry.path!r}")
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                else:
                    raise ValueError(f"a store must hold only its own files and folders, got "
                                     f"{entry.path!r}, which is neither")
    return total


def _leftover_pattern(target: Path, tag: str, suffix: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(target.name)}\.{re.escape(tag)}(\d+)-[0-9a-f]{{16}}"
                      rf"{re.escape(suffix)}")


def make_temp_beside(target: str | os.PathLike, tag: str = "", suffix: str = ".tmp",
                     directory: bool = False) -> Path:
    """A new empty file (or folder) beside ``target``, to be renamed onto it when complete.

    Named ``.{target name}.{tag}{pid}-{random}{suffix}`` and created with
    ``O_CREAT | O_EXCL`` (``mkdir`` for a folder) and mode 0o666 (0o777), so
    the umask applies as for any new file; ``tempfile.mkstemp`` would give
    0o600 and a renamed result would keep it.

    Examples
    --------
    >>> import os, pathlib, tempfile
    >>> from labeled_spaces._paths import make_temp_beside
    >>> tmp = make_temp_beside(pathlib.Path(tempfile.mkdtemp()) / "sweep.nc")
    >>> tmp.name.startswith(".sweep.nc.") and tmp.name.endswith(".tmp"), tmp.stat().st_size
    (True, 0)
    """
    target = Path(os.fspath(target))
    while True:
        name = f".{target.name}.{tag}{os.getpid()}-{secrets.token_hex(8)}{suffix}"
        path = target.parent / name
        try:
            if directory:
                os.mkdir(path, 0o777)
            else:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:  # pragma: no cover - 64 random bits collide
            continue
        return path


def process_running(pid: int) -> bool:
    """Whether process ``pid`` (which named a leftover) may still be running on this machine.

    Only a process known to be gone is not: another user's process, or one
    that cannot be asked, counts as running, so its files are left alone.

    Examples
    --------
    >>> import os
    >>> from labeled_spaces._paths import process_running
    >>> process_running(os.getpid()), process_running(2**40)
    (True, False)
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # no process has such a number
        return False
    except OSError:  # another user's process (PermissionError), or one we cannot ask
        return True
    return True


def remove_stale_leftovers(target: str | os.PathLike, tag: str = "", suffix: str = ".tmp",
                           stale_after: float = STALE_AFTER) -> list[Path]:
    """Remove the leftovers of killed writes to ``target``; return what was removed.

    Only names made by :func:`make_temp_beside` for ``target`` with the same
    ``tag`` and ``suffix`` are considered, and of those only plain files (or
    folders, never links) owned by this user, of a process that is not
    running, untouched for ``stale_after`` seconds: a write in progress in
    another process, on this machine or another one sharing the folder, is
    left alone.
    """
    import shutil

    target = Path(os.fspath(target))
    pattern = _leftover_pattern(target, tag, suffix)
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or process_running(int(match.group(1))):
            continue
        path = target.parent / name
        try:
            info = path.lstat()
        except OSError:
            continue
        if (info.st_uid != os.geteuid() or now - info.st_mtime < stale_after
                or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode))):
            continue
        try:
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed

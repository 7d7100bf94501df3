"""Argument checks shared by axes, spaces and executors, with one wording.

Every failure reads ``"{name} must be {expected}, got {value!r}"``, naming the argument,
what it should have been and what was given, as a ``TypeError`` (wrong kind of value) or a
``ValueError`` (right kind, bad value).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import inspect
import math
import numbers
import traceback
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn, overload

import numpy as np

from ._format import short_repr

__all__ = ["fail", "silenced", "user_stacklevel", "warn_user", "check_bool", "check_label",
           "check_callable", "check_int", "check_positive_int", "check_real", "check_shape",
           "name_list", "closest", "closest_name", "integer_scalar"]


def fail(name: str, expected: str, value: Any, exc: type[Exception] = ValueError,
         detail: str = "") -> NoReturn:
    """Raise ``exc("{name} must be {expected}, got {value!r}{detail}")``, a long repr cut short.

    Examples
    --------
    >>> from labeled_spaces._checks import fail
    >>> fail("n", "an integer", "5", TypeError)
    Traceback (most recent call last):
    ...
    TypeError: n must be an integer, got '5'
    """
    raise exc(f"{name} must be {expected}, got {short_repr(value)}{detail}")


def integer_scalar(value: Any) -> int | None:
    """``value`` as a Python int if it is an integer (int, NumPy integer, 0-d integer array).

    Booleans are not integers here. Returns None for anything else.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces._checks import integer_scalar
    >>> integer_scalar(np.array(3)), integer_scalar(True), integer_scalar(2.0)
    (3, None, None)
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(value, "ndim", None) == 0 and np.issubdtype(
        np.dtype(dtype), np.integer
    ):
        return int(value)
    return None


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """An integer of at least ``minimum`` (NumPy integers and 0-d integer arrays too).

    Examples
    --------
    >>> from labeled_spaces._checks import check_int
    >>> check_int("n", 3)
    3
    >>> check_int("n", 0)
    Traceback (most recent call last):
    ...
    ValueError: n must be >= 1, got 0
    """
    checked = integer_scalar(value)
    if checked is None:
        fail(name, "an integer", value, TypeError, f" ({type(value).__name__})")
    if checked < minimum:
        fail(name, f">= {minimum}", checked)
    return checked


@overload
def check_positive_int(name: str, value: Any, *, allow_none: Literal[False] = False) -> int: ...


@overload
def check_positive_int(name: str, value: Any, *, allow_none: bool) -> int | None: ...


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    """A positive integer (or None where ``allow_none``): an executor option such as ``n_vmap``.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces._checks import check_positive_int
    >>> check_positive_int("chunk_size", np.array(64))
    64
    >>> check_positive_int("n_vmap", 0)
    Traceback (most recent call last):
    ...
    ValueError: n_vmap must be a positive integer, got 0
    """
    if value is None and allow_none:
        return None
    checked = integer_scalar(value)
    if checked is None:
        fail(name, "a positive integer" + (" or None" if allow_none else ""), value, TypeError)
    if checked < 1:
        fail(name, "a positive integer", value)
    return checked


def check_real(name: str, value: Any) -> numbers.Real:
    """A finite real number (a 0-d array is read as its scalar); returned as given.

    Examples
    --------
    >>> from labeled_spaces._checks import check_real
    >>> check_real("low", 0.5)
    0.5
    >>> check_real("low", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: low must be finite, got nan
    """
    if isinstance(value, (bool, np.bool_)) or (
        getattr(value, "dtype", None) is not None and np.asarray(value).dtype == bool
    ):
        fail(name, "a real number", value, TypeError, " (bool)")
    if getattr(value, "ndim", None) == 0 and hasattr(value, "dtype"):
        value = np.asarray(value).item()
    if not isinstance(value, numbers.Real):
        fail(name, "a real number", value, TypeError, f" ({type(value).__name__})")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # a Fraction or int beyond float64
        fail(name, "a real number that fits in float64", value)
    if not finite:
        fail(name, "finite", value)
    return value


def name_list(name: str, value: Any, expected: str) -> list[str]:
    """A name, or a sequence or 1-D array of names, as a list of str.

    Anything else is a ``TypeError`` naming ``name`` and ``expected``.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces._checks import name_list
    >>> name_list("wrt", "a", "an axis name"), name_list("wrt", np.array(["a", "b"]), "names")
    (['a'], ['a', 'b'])
    >>> name_list("wrt", [1], "an axis name or a sequence of axis names")
    Traceback (most recent call last):
    ...
    TypeError: wrt must be an axis name or a sequence of axis names, got [1]
    """
    names = [value] if isinstance(value, str) else value
    if isinstance(names, np.ndarray) and names.ndim == 1:  # an array of names is a sequence
        names = [str(n) if isinstance(n, str) else n for n in names.tolist()]
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        fail(name, expected, value, TypeError)
    return list(names)


def check_shape(name: str, shape: Any) -> tuple[int, ...] | None:
    """None, an int, or a sequence of positive ints, as a tuple.

    Examples
    --------
    >>> from labeled_spaces._checks import check_shape
    >>> check_shape("shape", 3), check_shape("shape", (2, 2))
    ((3,), (2, 2))
    """
    if shape is None:
        return None
    if integer_scalar(shape) is not None:
        shape = (integer_scalar(shape),)
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        fail(name, "None or a tuple of positive integers", shape, TypeError)
    return tuple(check_int(f"{name}[{k}]", s) for k, s in enumerate(shape))


def check_bool(name: str, value: Any) -> bool:
    """True or False (NumPy booleans too).

    Examples
    --------
    >>> from labeled_spaces._checks import check_bool
    >>> check_bool("progress", "no")
    Traceback (most recent call last):
    ...
    TypeError: progress must be True or False, got 'no'
    """
    if not isinstance(value, (bool, np.bool_)):
        fail(name, "True or False", value, TypeError)
    return bool(value)


def check_label(name: str, value: Any, expected: str = "a non-empty string") -> str:
    """A non-empty string: ``TypeError`` for another kind of value, ``ValueError`` for ``""``.

    Examples
    --------
    >>> from labeled_spaces._checks import check_label
    >>> check_label("dim", "")
    Traceback (most recent call last):
    ValueError: dim must be a non-empty string, got ''
    """
    if not isinstance(value, str) or not value:  # the type first: an array has no truth
        fail(name, expected, value, ValueError if isinstance(value, str) else TypeError)
    return value


def check_callable(name: str, value: Any) -> Any:
    """A callable, returned as given.

    Examples
    --------
    >>> from labeled_spaces._checks import check_callable
    >>> check_callable("model", 42)
    Traceback (most recent call last):
    ...
    TypeError: model must be callable, got 42 (int)
    """
    if not callable(value):
        fail(name, "callable", value, TypeError, f" ({type(value).__name__})")
    return value


def closest_name(word: str, options: Iterable[str]) -> str | None:
    """The option nearest to ``word`` where one is close (difflib's ratio 0.6), else None.

    Examples
    --------
    >>> from labeled_spaces._checks import closest_name
    >>> closest_name("n_vmapp", ["n_vmap", "chunk_size"]), closest_name("xyz", ["n_vmap"])
    ('n_vmap', None)
    """
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return match[0] if match else None


def closest(word: str, options: Iterable[str]) -> str:
    """A ``"; did you mean X?"`` hint for the option nearest to ``word``, or ``""``.

    Examples
    --------
    >>> from labeled_spaces._checks import closest
    >>> closest("n_vmapp", ["n_vmap", "n_pmap", "chunk_size"])
    '; did you mean n_vmap?'
    """
    match = closest_name(word, options)
    return f"; did you mean {match}?" if match is not None else ""


PACKAGE_DIR = Path(__file__).resolve().parent


def expected_failure(err: BaseException) -> bool:
    """Whether ``err`` is a failure to report in one line (exit code 2), not a bug.

    An ``OSError`` (a path, a permission, a full disk) always is; a
    ``ValueError`` or ``TypeError`` is when the package raised it on purpose
    (a ``raise`` statement in labeled_spaces: bad input, a damaged file).
    One raised inside a library, or by an operation that failed in our own
    code, is a bug, and keeps its traceback.

    Examples
    --------
    >>> from labeled_spaces.cli import expected_failure
    >>> from labeled_spaces._checks import fail
    >>> try:
    ...     fail("n", "an integer", "5", TypeError)
    ... except TypeError as err:
    ...     expected_failure(err)
    True
    >>> try:
    ...     None + 1
    ... except TypeError as err:
    ...     expected_failure(err)
    False
    """
    if isinstance(err, OSError):
        return True
    if not isinstance(err, (ValueError, TypeError)):
        return False
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    where = frames[-1]
    return _inside_package(where.filename) and (where.line or "").lstrip().startswith("raise")


def _inside_package(filename: str) -> bool:
    where = Path(filename)
    try:
        return where.is_absolute() and where.resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, RuntimeError):  # a file gone, a symlink loop: not ours to judge
        return False


def user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside labeled_spaces, seen from the caller.

    A warning given with it points at the user's line (their script, test or
    notebook cell) however deep in the package it was raised, which a fixed
    ``stacklevel`` only does for one call path.

    Examples
    --------
    >>> from labeled_spaces._checks import user_stacklevel
    >>> user_stacklevel()  # called from outside the package: the caller itself
    1
    """
    here = inspect.currentframe()
    level, frame = 1, here.f_back if here is not None else None
    while frame is not None and _ours(frame):
        frame, level = frame.f_back, level + 1
    return level


def _ours(frame: Any) -> bool:
    """A frame of the package, or code it generated and called itself.

    A dataclass's ``__init__`` runs as ``<string>``, with the globals of the
    module that defines the class, called from the package. A user's code
    without a file (``python -c``, ``exec``, an IPython cell
    ``<ipython-input-...>``) has the globals of ``__main__`` or the like, even
    where the package calls it (a model): its line is the user's.
    """
    filename = frame.f_code.co_filename
    if _inside_package(filename):
        return True
    module, caller = frame.f_globals.get("__name__"), frame.f_back
    return (filename.startswith("<") and isinstance(module, str)
            and module.partition(".")[0] == __name__.partition(".")[0]
            and caller is not None and _inside_package(caller.f_code.co_filename))


# beginnings of the messages warn_user leaves out in this context (this thread or task only)
_SILENCED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "labeled_spaces_silenced", default=())


@contextlib.contextmanager
def silenced(*starts: str) -> Iterator[None]:
    """Leave out :func:`warn_user`'s messages that begin with one of ``starts``, here only.

    Unlike ``warnings.catch_warnings`` it changes no process-wide state, so other threads
    keep their warnings and nothing is left filtered if contexts overlap.

    Examples
    --------
    >>> import warnings
    >>> from labeled_spaces._checks import silenced, warn_user
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with silenced("old news"):
    ...         warn_user("old news: n=3")
    ...         warn_user("news: n=5")
    >>> [str(w.message) for w in caught]
    ['news: n=5']
    """
    token = _SILENCED.set(_SILENCED.get() + starts)
    try:
        yield
    finally:
        _SILENCED.reset(token)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointed at the user's code: the first frame outside the package.

    Messages :func:`silenced` in this context are left out.

    Examples
    --------
    >>> import warnings
    >>> from labeled_spaces._checks import warn_user
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("n=3 is not a power of 2")
    >>> str(caught[0].message), caught[0].category.__name__
    ('n=3 is not a power of 2', 'UserWarning')
    """
    if message.startswith(_SILENCED.get()):
        return
    warnings.warn(message, category, stacklevel=user_stacklevel())

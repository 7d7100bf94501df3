"""Every cache of compiled programs, in one place, and :func:`clear_caches`.

Executors reuse a compiled program for the same model over a space of the
same structure; a Space reuses its compiled gather of point values. Each
such cache is a :class:`ProgramCache` created here, or an object registered
with :func:`hold_cache` (a Space's tables on the device), so that one call
empties them all.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ProgramCache", "clear_caches", "hold_cache"]

_CACHES: list[ProgramCache] = []
# objects that keep a cache of their own (a Layout's device tables), while they live
_HOLDERS: weakref.WeakSet = weakref.WeakSet()


def hold_cache(owner: Any) -> None:
    """Have :func:`clear_caches` call ``owner.clear_cache()`` for as long as ``owner`` lives.

    For caches kept on an object (one per Space, say) rather than in a
    :class:`ProgramCache`; ``owner`` is held weakly.

    Examples
    --------
    >>> from labeled_spaces._caches import clear_caches, hold_cache
    >>> class Tables:
    ...     def __init__(self):
    ...         self.cache = {"device": 1}
    ...     def clear_cache(self):
    ...         self.cache.clear()
    >>> tables = Tables()
    >>> hold_cache(tables)
    >>> clear_caches()
    >>> tables.cache
    {}
    """
    _HOLDERS.add(owner)


class ProgramCache:
    """Programs built once per ``(owner, key)``, kept while the owner lives.

    The owner is usually the model function: an entry never keeps it alive
    (weak keys), nor anything else the program was built for, as long as
    ``build`` returns a compiled executable rather than a closure over them.
    Owners that cannot be weakly referenced get no reuse.

    Examples
    --------
    >>> from labeled_spaces._caches import ProgramCache
    >>> cache = ProgramCache("example")
    >>> def model(x):
    ...     return x
    >>> cache.get(model, "k", lambda: 41) + cache.get(model, "k", lambda: 0)
    82
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._plain: dict[Hashable, Any] = {}
        _CACHES.append(self)

    def get(self, owner: Any, key: Hashable, build: Callable[[], Any]) -> Any:
        """What ``build()`` made for ``(owner, key)``, made once while the owner lives.

        ``owner=None`` keys on ``key`` alone (for programs that depend on
        nothing but the key).
        """
        if owner is None:
            if key not in self._plain:
                self._plain[key] = build()
            return self._plain[key]
        try:
            per_owner = self._entries.setdefault(owner, {})
        except TypeError:  # not weak-referenceable: no reuse across runs
            return build()
        if key not in per_owner:
            per_owner[key] = build()
        return per_owner[key]

    def clear(self) -> None:
        """Forget every program."""
        self._entries.clear()
        self._plain.clear()

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values()) + len(self._plain)


def clear_caches() -> None:
    """Empty every cache of compiled programs of labeled_spaces.

    Later runs compile again, and every Space puts its value tables on the
    device again. Useful to free memory, or after changing JAX
    configuration that compiled programs depend on.

    Examples
    --------
    >>> import labeled_spaces
    >>> labeled_spaces.clear_caches()
    """
    for cache in _CACHES:
        cache.clear()
    for owner in list(_HOLDERS):
        owner.clear_cache()

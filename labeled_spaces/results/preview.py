"""What a run would find in its sink before it starts: the store part of ``explain()``.

Its own module so that the sinks (:mod:`.store`) and the Sink seam
(:mod:`.sink`, which picks among them) both use it without importing each
other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StorePreview"]


@dataclass(frozen=True)
class StorePreview:
    """What a run would find in its sink before it starts.

    Attributes
    ----------
    where : str
        The store's path, or ``"memory"``.
    state : str
        ``"memory"``, ``"new"``, ``"replaced"`` (``overwrite=True``),
        ``"resumed"``, ``"complete"``, or ``"growing coupling: 11 -> 21"``.
    done : int
        Blocks already finished there (kept by a resumed or grown store).
    size_on_disk : int or None
        Bytes the store holds now (None in memory).
    """

    where: str
    state: str
    done: int = 0
    size_on_disk: int | None = None

"""How much memory there is, and refusing work that would not fit, before it starts."""

from __future__ import annotations

import time

import jax

from ._format import format_bytes

__all__ = ["available_memory", "device_memory", "refuse_beyond_memory"]


_SEEN: list[float] = [-1.0, 0.0]  # when last read, and what


def available_memory() -> int:
    """Bytes of memory available to this process now (psutil's ``available``).

    Read at most every 0.2 s: a run asks several times while it sets up, and
    each reading costs ~70 us.
    """
    now = time.monotonic()
    if now - _SEEN[0] > 0.2:
        try:
            import psutil

            _SEEN[1] = float(psutil.virtual_memory().available)
        except ImportError:  # pragma: no cover - psutil comes with distributed
            _SEEN[1] = float(4 * 2**30)
        _SEEN[0] = now
    return int(_SEEN[1])


def device_memory() -> int | None:
    """Bytes free on the first device of an accelerator; None on CPU or where JAX does not say.

    ``bytes_limit - bytes_in_use`` of the device's ``memory_stats()`` (the
    pool XLA allocates from, less what its buffers hold now).

    Examples
    --------
    >>> from labeled_spaces._memory import device_memory
    >>> device_memory() is None  # on a CPU the host's memory is the budget
    True
    """
    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None
    if not stats or "bytes_limit" not in stats:
        return None
    return max(0, int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))


def refuse_beyond_memory(nbytes: float, what: str, hint: str, limit: float | None = None) -> None:
    """Raise ``MemoryError`` before building ``nbytes`` that exceed ``limit`` (default: available).

    Examples
    --------
    >>> from labeled_spaces._memory import refuse_beyond_memory
    >>> refuse_beyond_memory(5e12, "to_xarray", "select a sub-space first")
    Traceback (most recent call last):
    ...
    MemoryError: to_xarray would need 5 TB, more than the ... available; select a sub-space first
    """
    if limit is None:
        limit = available_memory()
    if nbytes > limit:
        raise MemoryError(
            f"{what} would need {format_bytes(nbytes)}, more than the {format_bytes(limit)} "
            f"available; {hint}"
        )

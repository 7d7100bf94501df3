"""How much memory there is, and refusing work that would not fit, before it starts."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import jax

from ._format import format_bytes

__all__ = ["DEFAULT_CACHE_BYTES", "available_memory", "cache_bytes", "device_memory",
           "refuse_beyond_memory"]

# the last-level cache assumed where the OS does not say (a server core complex's L3)
DEFAULT_CACHE_BYTES = 32 * 2**20
_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}


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


def _cache_size(text: str) -> int | None:
    """Bytes of a sysfs cache size (``"32768K"``), None if unreadable."""
    text = text.strip().upper()
    scale = _UNITS.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in _UNITS else text
    return int(digits) * scale if digits.isdigit() and int(digits) > 0 else None


@functools.cache
def cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """Bytes of the CPU's last-level cache, as Linux reports it (else 32 MiB).

    The largest ``index*/size`` of the unified or data caches under ``root``;
    :data:`DEFAULT_CACHE_BYTES` where there is none (macOS, Windows, a
    container that hides sysfs).

    Examples
    --------
    >>> from labeled_spaces._memory import cache_bytes
    >>> cache_bytes() >= 2**16
    True
    >>> cache_bytes("/nonexistent") == DEFAULT_CACHE_BYTES
    True
    """
    sizes = []
    for index in sorted(Path(root).glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            size = _cache_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind != "Instruction" and size is not None:
            sizes.append(size)
    return max(sizes) if sizes else DEFAULT_CACHE_BYTES


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

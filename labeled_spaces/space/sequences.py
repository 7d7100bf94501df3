"""Column-wise generators of the scrambled Halton and Latin hypercube designs.

``scipy.stats.qmc.Halton`` evaluates every point digit by digit to full double
precision (53 digits in base 2), and ``LatinHypercube`` shuffles its columns one
after another: 0.3-0.6 s for 1e6 points in 8 dimensions on a 2-core machine,
5x the cost of drawing the same points uniformly (``benchmarks/designs.py``).
The designs here are the same constructions, built so that the work is one
vectorised pass per column:

- **Halton** (Owen's random digit permutations, as
  :func:`scipy.stats.qmc.van_der_corput` with ``scramble=True``): the value of
  an index is a sum over its base-``b`` digits of ``perm[j][digit_j] * b**-(j+1)``.
  The digits split at a fixed place per base: the low digits' partial sums are
  one table of at most 4096 entries (or ``base``), and the high digits'
  partial sums for the quotients below ``n / len(low table)`` are another
  (digits above a quotient's own are 0, one constant); the column is their
  outer sum. The additions are nested the same way whatever ``n`` is, so a
  column of ``n`` points is a prefix of a longer one bit for bit (a grown
  store of a Halton design keeps its points). The values equal scipy's for the
  same permutations up to the order of the additions (at most 2**-51 apart;
  ``tests/test_sequences.py`` checks it against ``van_der_corput``).
- **Latin hypercube** (``LatinHypercube``'s ``(perm - u) / n`` with one
  uniformly random permutation of ``1..n`` and one uniform jitter per column).
  The permutation comes from one integer sort of random keys with the index in
  their low bits (:func:`random_permutation`), ties shuffled: 2-3x faster than
  a Fisher-Yates shuffle of a million values, whose random jumps through the
  array dominate its cost.

Halton's digit permutations are drawn base after base from one generator
seeded by the key, the way ``scipy.stats.qmc.Halton`` draws them, so a design
equals ``Halton(d, scramble=True, rng=numpy.random.default_rng(seed))`` up to
the order of the additions (as Sobol designs equal scipy's ``Sobol`` with that
generator). Each Latin hypercube column draws from its own child of the
seed's ``SeedSequence`` (its permutation and jitter; scipy's one shuffle after
another cannot be split). So the points do not depend on how many threads
build them, and columns are built on a few threads where the design is large
(numpy's sorts, shuffles and arithmetic release the GIL).
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["BELOW_ONE", "halton_column", "halton_permutations", "primes", "random_permutation",
           "unit_columns_of"]

BELOW_ONE = float(np.nextafter(1.0, 0.0))
"""The largest double below 1: design values stay in ``[0, 1)``."""

THREADED_FROM = 1 << 18
"""Designs of at least this many values (points x columns) are built on threads."""


def primes(count: int) -> list[int]:
    """The first ``count`` primes (the Halton bases).

    Examples
    --------
    >>> from labeled_spaces.space.sequences import primes
    >>> primes(8)
    [2, 3, 5, 7, 11, 13, 17, 19]
    """
    # a sieve up to Rosser's bound: the n-th prime is below n (ln n + ln ln n) for n >= 6
    limit = 13 if count < 6 else int(count * (math.log(count) + math.log(math.log(count)))) + 1
    sieve = np.ones(limit + 1, dtype=bool)
    sieve[:2] = False
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p::p] = False
    return np.flatnonzero(sieve)[:count].tolist()


def halton_permutations(base: int, rng: np.random.Generator) -> np.ndarray:
    """Random digit permutations of one base: one row per digit a double resolves.

    As many rows as ``base**-(j+1)`` stays above ``2**-54`` (scipy's count), each
    a shuffled ``0..base-1``.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.space.sequences import halton_permutations
    >>> p = halton_permutations(3, np.random.default_rng(0))
    >>> p.shape, sorted(p[0].tolist())
    ((34, 3), [0, 1, 2])
    """
    count = math.ceil(54 / math.log2(base)) - 1
    rows = np.tile(np.arange(base, dtype=np.int64), (count, 1))
    for row in rows:
        rng.shuffle(row)
    return rows


def _digit_table(contributions: np.ndarray) -> np.ndarray:
    """Partial sums over every combination of digits, indexed by the number they spell."""
    table = np.zeros(1)
    for digit in contributions:  # digit j varies with stride base**j
        table = (digit[:, None] + table[None, :]).ravel()
    return table


LOW_TABLE = 4096
"""The low digits' table of a Halton column holds at most this many sums (or ``base``)."""


def _high_table(contributions: np.ndarray, count: int) -> np.ndarray:
    """Sums over the high digits (all the rest) for quotients ``0..count-1``.

    The sum for a quotient ``q`` is ``c[0][q % b] + (c[1][q // b % b] + (...))``,
    nested from the lowest digit outwards; digits above ``q``'s own are 0 and
    nest the same way whatever ``count`` is, so a table of more quotients holds
    the same sums, bit for bit.
    """
    base = contributions.shape[1]
    needed = 0
    while base**needed < count:
        needed += 1
    table = np.zeros(1)
    for digit in contributions[needed:][::-1]:  # the zero digits: one constant
        table = digit[0] + table
    for digit in contributions[:needed][::-1]:  # q = r + base * s: r varies fastest
        table = (table[:, None] + digit[None, :]).ravel()
    return table


def halton_column(n: int, base: int, permutations: np.ndarray,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Points ``0..n-1`` of a scrambled van der Corput sequence in ``base``.

    Parameters
    ----------
    n : int
        Number of points (indices ``0..n-1``).
    base : int
        The sequence's base (a prime, for Halton).
    permutations : numpy.ndarray
        ``(digits, base)`` random digit permutations (:func:`halton_permutations`).
    out : numpy.ndarray, optional
        A contiguous float64 array of length ``n`` to fill (else a new one).

    Returns
    -------
    numpy.ndarray
        float64 in ``[0, 1)``, shape ``(n,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.space.sequences import halton_column
    >>> identity = np.tile(np.arange(2), (52, 1))  # no scrambling: the plain sequence
    >>> halton_column(4, 2, identity).tolist()
    [0.0, 0.5, 0.25, 0.75]
    """
    column = np.empty(n) if out is None else out
    scale = float(base) ** -np.arange(1, len(permutations) + 1, dtype=np.float64)
    contributions = permutations * scale[:, None]
    low = 1  # a fixed split per base, so that n points are a prefix of more, bit for bit
    while low < len(contributions) - 1 and base ** (low + 1) <= LOW_TABLE:
        low += 1
    t_low = _digit_table(contributions[:low])
    t_high = _high_table(contributions[low:], -(-n // len(t_low)))
    full, rest = divmod(n, len(t_low))  # index = high * len(t_low) + low: rows of an outer sum
    np.add(t_high[:full, None], t_low[None, :],
           out=column[:full * len(t_low)].reshape(full, len(t_low)))
    if rest:
        np.add(t_high[full], t_low[:rest], out=column[full * len(t_low):])
    if t_high[:full + 1].max() + t_low.max() >= 1.0:  # rounding can reach 1 only at the top
        np.minimum(column, BELOW_ONE, out=column)
    return column


CHUNK = 1 << 16
"""Values per cache-sized chunk: tie checks and jitter work on this many at a time."""

KEY_BITS = 64
"""Bits of a sort key: the random part above, the index below (see :func:`random_permutation`)."""

SORTED_UP_TO = 1 << 26
"""Longer permutations are shuffled: their keys would keep too few random bits."""


def random_permutation(n: int, rng: np.random.Generator,
                       indices: np.ndarray | None = None) -> np.ndarray:
    """A uniformly random permutation of ``0..n-1``, by sorting random keys.

    Each index gets a key whose high bits are random (the bit generator's raw
    output) and whose low bits are the index itself, so one ``sort`` of
    integers (vectorised, and cache-friendly where Fisher-Yates jumps around
    the array) orders the indices by their random parts; indices whose random
    parts tie (about ``n**2 / 2**(65 - log2 n)`` pairs, 0.03 for a million)
    are then shuffled among themselves, so every permutation stays equally
    likely. 2-3x faster than ``Generator.shuffle`` for a million values here.
    Beyond :data:`SORTED_UP_TO` values it falls back to ``Generator.shuffle``.

    Parameters
    ----------
    n : int
    rng : numpy.random.Generator
    indices : numpy.ndarray, optional
        ``np.arange(n, dtype=np.uint64)``, when the caller already has it.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.space.sequences import random_permutation
    >>> sorted(random_permutation(5, np.random.default_rng(0)).tolist())
    [0, 1, 2, 3, 4]
    """
    n = operator.index(n)  # a numpy integer too: bit_length below
    if n > SORTED_UP_TO:
        perm = np.arange(n, dtype=np.int64)
        rng.shuffle(perm)
        return perm
    bits = max(1, (n - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    keys = rng.bit_generator.random_raw(n) if n else np.zeros(0, dtype=np.uint64)
    if KEY_BITS < 64:  # fewer random bits: only tests ask for them, to see ties resolved
        keys >>= np.uint64(64 - KEY_BITS)
    keys &= np.invert(low)
    keys |= np.arange(n, dtype=np.uint64) if indices is None else indices
    keys.sort()
    tied = _tied_neighbours(keys, low)
    keys &= low
    perm = keys.view(np.int64)
    start = 0
    while start < len(tied):  # runs of tied neighbours: i, i+1, ... share a random part
        stop = start
        while stop + 1 < len(tied) and tied[stop + 1] == tied[stop] + 1:
            stop += 1
        rng.shuffle(perm[tied[start]:tied[stop] + 2])
        start = stop + 1
    return perm


def _tied_neighbours(keys: np.ndarray, low: np.uint64) -> np.ndarray:
    """Positions ``i`` of sorted keys whose random part equals that of ``i + 1``.

    Two keys share their random (high) part exactly when their XOR is at most
    the index mask; checked in chunks, so no n-long temporary is made.
    """
    found = []
    buffer = np.empty(min(max(len(keys) - 1, 0), CHUNK), dtype=np.uint64)
    for start in range(0, len(keys) - 1, CHUNK):
        stop = min(start + CHUNK, len(keys) - 1)
        xor = np.bitwise_xor(keys[start:stop], keys[start + 1:stop + 1],
                             out=buffer[:stop - start])
        hits = np.flatnonzero(xor <= low)
        if len(hits):
            found.append(hits + start)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _lhs_column(column: np.ndarray, rng: np.random.Generator,
                indices: np.ndarray | None) -> None:
    """Fill ``column`` (length n) with ``(perm - u) / n``: one point in each of n strata.

    ``perm`` is a random permutation of ``1..n`` (:func:`random_permutation`, with
    ``indices`` its shared ``0..n-1``); the jitter is drawn and the column
    finished a cache-sized chunk at a time, in one pass.
    """
    n = len(column)
    perm = random_permutation(n, rng, indices)
    jitter = np.empty(min(n, CHUNK))
    for start in range(0, n, CHUNK):  # one pass, a cache-sized chunk at a time
        stop = min(start + CHUNK, n)
        part, u = column[start:stop], jitter[:stop - start]
        rng.random(out=u)
        u -= 1.0
        np.subtract(perm[start:stop], u, out=part)  # perm + 1 - u: 1..n minus the jitter
        part /= n
        np.minimum(part, BELOW_ONE, out=part)


def _workers(n: int, d: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(d, cpus or 1)) if n * d >= THREADED_FROM else 1


def unit_columns_of(mode: str, n: int, d: int, seed: Sequence[int]) -> np.ndarray:
    """An ``(n, d)`` Halton (``"halton"``) or Latin hypercube (``"lhs"``) design.

    Halton's permutations come base after base from the generator scipy's
    ``Halton`` draws them from when given ``numpy.random.default_rng(seed)``
    (that generator's first spawned child); a Latin hypercube's column ``k``
    draws from child ``k`` of ``numpy.random.SeedSequence(seed)``. So the
    same seed gives the same points bit for bit, whatever the number of
    threads, and the first columns of a wider design are those of a narrower
    one; the array is column-major (each column contiguous).

    Examples
    --------
    >>> from labeled_spaces.space.sequences import unit_columns_of
    >>> u = unit_columns_of("lhs", 4, 2, [0, 1])
    >>> sorted((u[:, 1] * 4).astype(int).tolist())
    [0, 1, 2, 3]
    >>> bool((unit_columns_of("halton", 5, 3, [0, 1]) < 1).all())
    True
    """
    out = np.empty((d, n))
    if mode == "halton":
        bases = primes(d)
        # scipy's engines draw from the first child of the generator they are given
        rng = np.random.default_rng(np.random.SeedSequence(list(seed)).spawn(1)[0])
        permutations = [halton_permutations(base, rng) for base in bases]  # in scipy's order

        def build(k: int) -> None:
            halton_column(n, bases[k], permutations[k], out=out[k])
    elif mode == "lhs":
        children = np.random.SeedSequence(list(seed)).spawn(d)
        # shared and read only; shuffled permutations (beyond SORTED_UP_TO) need none
        indices = np.arange(n, dtype=np.uint64) if n <= SORTED_UP_TO else None

        def build(k: int) -> None:
            _lhs_column(out[k], np.random.default_rng(children[k]), indices)
    else:
        raise ValueError(f"mode must be 'halton' or 'lhs', got {mode!r}")
    _each(build, d, _workers(n, d))
    return out.T


def _each(build: Callable[[int], None], d: int, workers: int) -> None:
    if workers == 1:
        for k in range(d):
            build(k)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="labeled_spaces-design") as ex:
        list(ex.map(build, range(d)))  # list(): re-raise a column's error here

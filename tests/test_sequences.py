"""The column-wise Halton and Latin hypercube generators behind mode="halton" | "lhs"."""

from fractions import Fraction

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import qmc

from labeled_spaces import Space, UniformAxis
from labeled_spaces.space import sequences
from labeled_spaces.space.design import SOBOL_BLOCK, design_rng, unit_design
from labeled_spaces.space.sequences import (
    BELOW_ONE,
    halton_column,
    halton_permutations,
    primes,
    random_permutation,
    unit_columns_of,
)


def _radical_inverse(index: int, base: int, permutations: np.ndarray) -> Fraction:
    """The scrambled radical inverse in exact arithmetic, digit by digit."""
    value, scale = Fraction(0), Fraction(1, base)
    for row in permutations:
        index, digit = divmod(index, base)
        value += int(row[digit]) * scale
        scale /= base
    return value


@given(n=st.integers(0, 3000), base=st.sampled_from([2, 3, 5, 7, 19, 229]),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_halton_column_is_the_exact_scrambled_radical_inverse(n, base, seed):
    perms = halton_permutations(base, np.random.default_rng(seed))
    column = halton_column(n, base, perms)
    assert column.shape == (n,) and column.dtype == np.float64
    assert ((0.0 <= column) & (column < 1.0)).all()
    for i in {min(i, n - 1) for i in (0, 1, n // 2, n - 1) if n}:
        exact = _radical_inverse(i, base, perms)
        assert abs(Fraction(float(column[i])) - exact) <= Fraction(1, 2**51), (i, column[i])


def test_halton_column_matches_scipys_van_der_corput_with_the_same_permutations():
    qmc_private = pytest.importorskip("scipy.stats._qmc")
    for n, base in [(1, 2), (8, 2), (1000, 3), (4097, 5), (2**17 + 3, 19), (5000, 229)]:
        perms = halton_permutations(base, np.random.default_rng(n))
        ours = halton_column(n, base, perms)
        theirs = qmc_private.van_der_corput(n, base, scramble=True, permutations=perms)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2.0**-51)


def test_unscrambled_permutations_give_the_plain_van_der_corput_sequence():
    identity = np.tile(np.arange(3), (33, 1))
    assert halton_column(9, 3, identity).tolist() == pytest.approx(
        [0, 1 / 3, 2 / 3, 1 / 9, 4 / 9, 7 / 9, 2 / 9, 5 / 9, 8 / 9], abs=1e-15)


@pytest.mark.parametrize("base", [2, 3, 5, 13])
def test_halton_values_stay_below_one_when_every_digit_maps_to_the_top(base):
    count = len(halton_permutations(base, np.random.default_rng(0)))
    top = np.tile(np.arange(base)[::-1], (count, 1))  # digit 0 -> base - 1
    assert top[0][0] == base - 1
    column = halton_column(base**2 + 1, base, top)
    assert column.max() <= BELOW_ONE


@pytest.mark.parametrize("mode", ["halton", "lhs"])
def test_points_do_not_depend_on_threads_or_on_later_columns(mode, monkeypatch):
    n = 3000
    monkeypatch.setattr(sequences, "THREADED_FROM", 0)  # every design on threads
    threaded = unit_columns_of(mode, n, 5, [7, 11])
    monkeypatch.setattr(sequences, "THREADED_FROM", 2**62)  # none
    serial = unit_columns_of(mode, n, 5, [7, 11])
    assert np.array_equal(threaded, serial)
    assert np.array_equal(unit_columns_of(mode, n, 3, [7, 11]), serial[:, :3])
    assert not np.array_equal(unit_columns_of(mode, n, 5, [7, 12]), serial)
    assert serial.flags.f_contiguous  # each column contiguous: axes read one column each


@given(n=st.integers(0, 5000), d=st.integers(1, 4), seed=st.integers(0, 2**31))
@settings(max_examples=40, deadline=None)
def test_latin_hypercube_has_one_point_in_every_stratum_of_every_column(n, d, seed):
    u = unit_columns_of("lhs", n, d, [seed])
    assert u.shape == (n, d) and ((0.0 <= u) & (u < 1.0)).all()
    for column in u.T:
        assert np.array_equal(np.sort(np.floor(column * n).astype(np.int64)), np.arange(n))


def test_latin_hypercube_columns_are_independent_permutations():
    u = unit_columns_of("lhs", 4096, 2, [3])
    strata = np.floor(u * 4096)
    assert abs(np.corrcoef(strata.T)[0, 1]) < 0.1
    assert not np.array_equal(strata[:, 0], strata[:, 1])


def test_bad_mode_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'halton' or 'lhs', got 'sobol'"):
        unit_columns_of("sobol", 4, 2, [0])


def test_primes_are_the_halton_bases():
    assert primes(10) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert primes(0) == []
    for count in (1, 5, 6, 7, 50, 1229):  # around the sieve bound's switch at 6
        found = primes(count)
        assert len(found) == count and all(isinstance(p, int) for p in found)
        assert all(p > 1 and all(p % q for q in range(2, int(p**0.5) + 1)) for p in found)
        assert found == sorted(set(found))
    assert primes(1229)[-1] == 9973  # the 1229th prime, the last below 10,000



@pytest.mark.filterwarnings("ignore:The balance properties:UserWarning")
@pytest.mark.parametrize("n", [1, 5, SOBOL_BLOCK, 2 * SOBOL_BLOCK + 3])
def test_sobol_built_in_blocks_is_scipys_sequence_bit_for_bit(n):
    key = jax.random.key(n)
    ours = unit_design("sobol", n, 3, key)
    theirs = qmc.Sobol(3, scramble=True, rng=design_rng(key)).random(n)
    assert np.array_equal(ours, theirs)
    assert ours.flags.f_contiguous


def test_sobol_beyond_scipys_point_limit_is_refused_before_drawing(monkeypatch):
    def drawn(self, n=1, **kwargs):
        raise AssertionError(f"drew {n} Sobol points for a design scipy cannot finish")

    monkeypatch.setattr(qmc.Sobol, "random", drawn)
    with pytest.raises(ValueError, match=r"n must be at most 2\*\*30 .* got 1073741825"):
        unit_design("sobol", 2**30 + 1, 1, jax.random.key(0))


@pytest.mark.parametrize("mode", ["halton", "lhs"])
def test_an_axis_added_after_the_others_leaves_their_points_unchanged(mode):
    # the CHANGELOG's claim at Space level: columns follow jax.tree order ("d" sorts last)
    axes = {name: UniformAxis(0.0, 1.0, 64) for name in "bc"}
    before = Space(axes, mode=mode, key=jax.random.key(2))
    after = Space({**axes, "d": UniformAxis(0.0, 1.0, 64)}, mode=mode, key=jax.random.key(2))
    for name in "bc":
        assert before.coords[name].values.tobytes() == after.coords[name].values.tobytes()


@pytest.mark.filterwarnings("ignore:The balance properties:UserWarning")
@pytest.mark.parametrize("mode", ["sobol", "halton"])
def test_sequence_designs_of_n_points_are_prefixes_of_longer_ones(mode):
    key = jax.random.key(9)
    long = unit_design(mode, 1000, 4, key)
    for n in (1, 7, 256, 999):
        assert np.array_equal(unit_design(mode, n, 4, key), long[:n])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 1000, 4099])
def test_random_permutation_is_a_permutation(n):
    perm = random_permutation(np.int64(n), np.random.default_rng(n))  # numpy ints too
    assert perm.dtype == np.int64 and np.array_equal(np.sort(perm), np.arange(n))


@pytest.mark.parametrize("key_bits", [64, 3])  # 3 bits: 1 random bit for n = 3, ties everywhere
def test_random_permutation_makes_every_order_equally_likely(key_bits, monkeypatch):
    monkeypatch.setattr(sequences, "KEY_BITS", key_bits)
    rng = np.random.default_rng(1)
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(6000):
        order = tuple(random_permutation(3, rng).tolist())
        counts[order] = counts.get(order, 0) + 1
    assert len(counts) == 6
    assert all(850 <= c <= 1150 for c in counts.values()), counts  # 1000 expected, sd 29


def test_random_permutation_resolves_long_runs_of_tied_keys(monkeypatch):
    monkeypatch.setattr(sequences, "KEY_BITS", 12)  # n = 1000: 10 index bits, 2 random bits
    perm = random_permutation(1000, np.random.default_rng(2))
    assert np.array_equal(np.sort(perm), np.arange(1000))
    # four runs of about 250 tied keys, each shuffled: far from sorted within its run
    assert np.mean(np.diff(perm) > 0) < 0.6


def test_random_permutation_shuffles_beyond_its_sorted_range(monkeypatch):
    monkeypatch.setattr(sequences, "SORTED_UP_TO", 10)
    perm = random_permutation(50, np.random.default_rng(3))
    assert np.array_equal(np.sort(perm), np.arange(50))
    assert not np.array_equal(perm, np.arange(50))

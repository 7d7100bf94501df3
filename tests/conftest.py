"""Shared helpers for the test suite."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest


def _assert_tree_equal(actual: Any, expected: Any, *, check_dtype: bool = True) -> None:
    """Same tree structure and bit-identical leaves (compared as NumPy arrays)."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for got, want in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape
        if check_dtype:
            assert got.dtype == want.dtype
        assert np.array_equal(got, want, equal_nan=got.dtype.kind in "fc")


@pytest.fixture
def assert_tree_equal():
    """``assert_tree_equal(actual, expected)``: equal structure, bit-identical leaves."""
    return _assert_tree_equal


@pytest.fixture(autouse=True, scope="session")
def _x64_off() -> None:
    """The suite runs with JAX's default 32-bit types (the int32 index paths rely on it)."""
    assert not jax.config.jax_enable_x64

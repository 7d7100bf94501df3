"""NumPyroAxis distributions in files: rebuilt identically, or refused asking for the state."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.distributions.transforms import AffineTransform, ExpTransform

from labeled_spaces import GridAxis, NumPyroAxis, Space
from labeled_spaces.axes import NotRebuildable

KEY = jax.random.key(11)
COV = jnp.array([[2.0, 0.5], [0.5, 1.0]])


def _mixture():
    return dist.MixtureSameFamily(dist.Categorical(probs=jnp.array([0.3, 0.7])),
                                  dist.Normal(jnp.array([-1.0, 1.0]), 0.5))


# name: (distribution, whether the file alone rebuilds it)
TABLE = {
    "Normal": (lambda: dist.Normal(0.5, 2.0), True),
    "LogNormal": (lambda: dist.LogNormal(0.0, 0.5), True),
    "Beta": (lambda: dist.Beta(2.0, 3.0), True),
    "Uniform": (lambda: dist.Uniform(-1.0, 2.0), True),
    "Dirichlet": (lambda: dist.Dirichlet(jnp.array([1.0, 2.0, 3.0])), True),
    "Categorical-probs": (lambda: dist.Categorical(probs=jnp.array([0.2, 0.3, 0.5])), True),
    "GaussianRandomWalk-5-steps": (lambda: dist.GaussianRandomWalk(0.5, num_steps=5), True),
    "MVN-covariance": (
        lambda: dist.MultivariateNormal(jnp.array([1.0, -1.0]), covariance_matrix=COV), True),
    "MVN-scale_tril": (
        lambda: dist.MultivariateNormal(jnp.array([1.0, -1.0]),
                                        scale_tril=jnp.linalg.cholesky(COV)), True),
    "MVN-precision": (
        lambda: dist.MultivariateNormal(jnp.array([1.0, -1.0]),
                                        precision_matrix=jnp.linalg.inv(COV)), True),
    "TruncatedNormal-low": (lambda: dist.TruncatedNormal(0.0, 1.0, low=0.5), True),
    "TruncatedNormal-low-high": (
        lambda: dist.TruncatedNormal(0.0, 1.0, low=-0.5, high=1.5), True),
    "expand": (lambda: dist.Normal(0.0, 1.0).expand([3]), True),
    "to_event": (lambda: dist.Normal(jnp.zeros(3), 1.0).to_event(1), True),
    "Transformed-Exp": (
        lambda: dist.TransformedDistribution(dist.Normal(0.0, 1.0), ExpTransform()), False),
    "MixtureSameFamily": (_mixture, True),
    "LKJ": (lambda: dist.LKJ(3, 2.0), True),
}


def _state(distribution):
    return {"p": NumPyroAxis(distribution, 3), "g": GridAxis(0.0, 1.0, 2), "dt": 0.1}


@pytest.mark.parametrize("name", list(TABLE))
def test_a_spec_rebuilds_the_identical_distribution_or_asks_for_the_state(
        name, assert_tree_equal):
    make, rebuildable = TABLE[name]
    state = _state(make())
    space = Space(state, mode="product", key=KEY)
    attrs = json.loads(json.dumps(space.attrs))  # as read back from a file
    if rebuildable:
        rebuilt = Space.from_attrs(attrs)
        original, again = space.axes[1].distribution, rebuilt.axes[1].distribution
        assert type(again) is type(original)
        assert (again.batch_shape, again.event_shape) == (original.batch_shape,
                                                          original.event_shape)
    else:
        with pytest.raises(NotRebuildable, match=r"Space\.from_attrs\(attrs, state=\.\.\.\)"):
            Space.from_attrs(attrs)
        rebuilt = Space.from_attrs(attrs, state=state)
        assert rebuilt.axes[1] is state["p"]
    # the draws are bit for bit those of the original, point by point
    assert rebuilt.sizes == space.sizes
    for i in range(len(space)):
        assert_tree_equal(rebuilt[i], space[i])
    np.testing.assert_array_equal(rebuilt.layout.tables[1], space.layout.tables[1])


def test_gaussian_random_walk_keeps_its_steps():
    space = Space(_state(dist.GaussianRandomWalk(0.5, num_steps=5)), mode="product")
    rebuilt = Space.from_attrs(json.loads(json.dumps(space.attrs)))
    assert rebuilt.axes[1].distribution.num_steps == 5
    assert rebuilt[0]["p"].shape == (5,)


def test_a_different_state_is_not_taken_for_the_saved_one():
    transformed = dist.TransformedDistribution(dist.Normal(0.0, 1.0), ExpTransform())
    space = Space(_state(transformed), mode="product")
    attrs = json.loads(json.dumps(space.attrs))
    other = _state(dist.TransformedDistribution(dist.Normal(0.0, 1.0), ExpTransform()))
    other["p"] = NumPyroAxis(other["p"].distribution, 4)  # not the saved axis: 4 draws
    with pytest.raises(NotRebuildable, match=r"the state's axis at 'p', .* is not the one"):
        Space.from_attrs(attrs, state=other)


@pytest.mark.parametrize(
    "distribution, text",
    [
        (dist.LogNormal(0.0, 0.5), "LogNormal(loc=0.0, scale=0.5)"),
        (dist.TransformedDistribution(dist.Normal(0.0, 1.0), ExpTransform()),
         "TransformedDistribution(base_distribution=Normal(loc=0.0, scale=1.0), "
         "transforms=[ExpTransform()])"),
        (dist.TransformedDistribution(dist.Normal(0.0, 1.0), AffineTransform(1.0, 2.0)),
         "TransformedDistribution(base_distribution=Normal(loc=0.0, scale=1.0), "
         "transforms=[AffineTransform(loc=1.0, scale=2.0)])"),
        (dist.Normal(0.0, 1.0).expand([3]),
         "ExpandedDistribution(base_dist=Normal(loc=0.0, scale=1.0), batch_shape=(3,))"),
        (dist.GaussianRandomWalk(0.5, num_steps=5), "GaussianRandomWalk(scale=0.5, num_steps=5)"),
    ],
    ids=["LogNormal", "Exp", "Affine", "expand", "GaussianRandomWalk"],
)
def test_repr_shows_the_parameters(distribution, text):
    shown = repr(NumPyroAxis(distribution, n=10))
    assert shown == f"NumPyroAxis({text}, n=10, sample_shape=(), broadcast_mode=False)"
    assert "object at 0x" not in shown

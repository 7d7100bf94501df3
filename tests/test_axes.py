"""Axes: values (bit-identical to TVB-Optim 0.4.0), labels, specs and argument checks."""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
import tvboptim.types.spaces as tv
import xarray as xr

from labeled_spaces import (
    AbstractAxis,
    DataAxis,
    GridAxis,
    LogGridAxis,
    NumPyroAxis,
    Space,
    UniformAxis,
    axis_from_spec,
)
from labeled_spaces import GridAxis as GridAxis_ours  # beside a user's class of that name

KEY = jax.random.key(42)

# (our axis, TVB-Optim's axis with the same arguments, expected values shape)
CASES = {
    "grid": (lambda m: m.GridAxis(0.0, 1.0, 11), (11,)),
    "grid-int-bounds": (lambda m: m.GridAxis(0, 3, 4), (4,)),
    "grid-n1": (lambda m: m.GridAxis(-1.0, 1.0, 1), (1,)),
    "grid-shape": (lambda m: m.GridAxis(-3.5, 2.25, 7, shape=(2, 3)), (7, 2, 3)),
    "grid-np-bounds": (lambda m: m.GridAxis(np.float32(0.1), np.float64(0.8), 5), (5,)),
    "grid-bfloat16-bounds": (
        lambda m: m.GridAxis(jnp.bfloat16(0.1), jnp.bfloat16(0.9), 5), (5,)
    ),
    "loggrid-float16-bounds": (lambda m: m.LogGridAxis(jnp.float16(0.1), 10.0, 4), (4,)),
    "uniform-bfloat16-bounds": (
        lambda m: m.UniformAxis(jnp.bfloat16(-1.0), jnp.bfloat16(2.0), 4), (4,)
    ),
    "loggrid": (lambda m: m.LogGridAxis(0.001, 1.0, 4), (4,)),
    "loggrid-shape": (lambda m: m.LogGridAxis(1e-3, 1e3, 7, shape=(3,)), (7, 3)),
    "uniform": (lambda m: m.UniformAxis(0.0, 1.0, 5), (5,)),
    "uniform-shape": (lambda m: m.UniformAxis(-2.0, 5.0, 4, shape=(2, 2)), (4, 2, 2)),
    "data-1d": (lambda m: m.DataAxis([1.0, 2.5, 3.7, 4.2]), (4,)),
    "data-int": (lambda m: m.DataAxis([3, 1, 2]), (3,)),
    "data-matrix": (lambda m: m.DataAxis(np.arange(12.0).reshape(3, 2, 2)), (3, 2, 2)),
    "numpyro": (lambda m: m.NumPyroAxis(dist.Normal(0.0, 1.0), 5), (5,)),
    "numpyro-sample-shape": (
        lambda m: m.NumPyroAxis(dist.Normal(1.0, 2.0), 4, sample_shape=(3,)),
        (4, 3),
    ),
    "numpyro-broadcast": (
        lambda m: m.NumPyroAxis(
            dist.Uniform(0.2, 0.8), 3, sample_shape=(2, 2), broadcast_mode=True
        ),
        (3, 2, 2),
    ),
    "numpyro-independent-2d": (
        lambda m: m.NumPyroAxis(dist.LogNormal(0.0, 1.0), 3, sample_shape=(2, 2)),
        (3, 2, 2),
    ),
}


class _Ours:
    GridAxis = GridAxis
    LogGridAxis = LogGridAxis
    UniformAxis = UniformAxis
    DataAxis = DataAxis
    NumPyroAxis = NumPyroAxis


@pytest.mark.parametrize("key", [None, KEY], ids=["key=None", "key=42"])
@pytest.mark.parametrize("case", list(CASES))
def test_values_bit_identical_to_tvboptim(case, key):
    make, shape = CASES[case]
    ours, ref = make(_Ours), make(tv)
    got = np.asarray(ours.generate_values(key))
    want = np.asarray(ref.generate_values(key))
    assert got.shape == want.shape == shape
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
    assert ours.size == ref.size == shape[0]


def test_data_axis_with_labels_has_tvboptims_values():
    values = np.array([[1.0, 0.5], [0.5, 1.0], [0.0, 0.2]])
    ours = DataAxis(values, labels=["s01", "s02", "s03"])
    got = np.asarray(ours.generate_values())
    assert np.array_equal(got, np.asarray(tv.DataAxis(values).generate_values()))
    assert got.dtype == np.float32
    assert list(ours.coordinate()) == ["s01", "s02", "s03"]
    assert np.array_equal(ours.value_coordinate(), values)
    assert ours.value_coordinate().dtype == np.float64


def test_grid_values_are_linspace():
    assert np.asarray(GridAxis(0.0, 1.0, 5).generate_values()).tolist() == [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    values = np.asarray(GridAxis(0.0, 1.0, 3, shape=(2,)).generate_values())
    assert values.tolist() == [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]


def test_loggrid_values_are_geomspace():
    values = np.asarray(LogGridAxis(0.01, 100.0, 5).generate_values())
    assert np.allclose(values, [0.01, 0.1, 1.0, 10.0, 100.0], rtol=1e-6)


def test_uniform_values_in_bounds_and_key_dependent():
    axis = UniformAxis(2.0, 3.0, 100)
    a = np.asarray(axis.generate_values(jax.random.key(1)))
    b = np.asarray(axis.generate_values(jax.random.key(2)))
    assert np.all((a >= 2.0) & (a < 3.0))
    assert not np.array_equal(a, b)
    # key=None means jax.random.key(0)
    assert np.array_equal(
        np.asarray(axis.generate_values()), np.asarray(axis.generate_values(jax.random.key(0)))
    )
    shaped = np.asarray(UniformAxis(2.0, 3.0, 4, shape=(3,)).generate_values(jax.random.key(1)))
    assert np.array_equal(shaped, np.repeat(a[:4, None], 3, axis=1))


def test_numpyro_broadcast_mode_one_draw_per_point():
    # shapes as in CASES, so JAX reuses its compiled sampling ops
    axis = NumPyroAxis(dist.Normal(0.0, 1.0), 5, sample_shape=(2, 3), broadcast_mode=True)
    values = np.asarray(axis.generate_values(KEY))
    assert values.shape == (5, 2, 3)
    draws = np.asarray(dist.Normal(0.0, 1.0).sample(KEY, (5,)))
    assert np.array_equal(values, np.broadcast_to(draws[:, None, None], (5, 2, 3)))
    independent = NumPyroAxis(dist.Normal(1.0, 2.0), 4, sample_shape=(3,))
    values = np.asarray(independent.generate_values(KEY))
    assert np.array_equal(values, np.asarray(dist.Normal(1.0, 2.0).sample(KEY, (4, 3))))
    assert len(np.unique(values)) == 12


# ---------------------------------------------------------------------------
# coordinates
# ---------------------------------------------------------------------------


def test_grid_coordinate_is_float64_and_exact():
    coord = GridAxis(0, 1, 11).coordinate()
    assert coord.dtype == np.float64
    assert coord.shape == (11,)
    assert 0.1 in coord
    assert coord[1] == 0.1
    assert coord[3] == 0.3  # np.linspace gives 0.30000000000000004 here
    assert coord.tolist() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def test_grid_coordinate_is_the_nearest_float_to_the_exact_point():
    assert GridAxis(0, 1, 4).coordinate().tolist() == [0.0, 1 / 3, 2 / 3, 1.0]
    assert GridAxis(-3.5, 2.25, 7).coordinate().tolist() == [
        -3.5,
        -2.5416666666666665,
        -1.5833333333333333,
        -0.625,
        0.3333333333333333,
        1.2916666666666667,
        2.25,
    ]
    assert GridAxis(-1.0, 1.0, 1).coordinate().tolist() == [-1.0]
    # bounds too fine for exact integer ratios: plain np.linspace
    assert np.array_equal(GridAxis(1e-300, 1.0, 3).coordinate(), [1e-300, 0.5, 1.0])
    fine = GridAxis(np.float32(0.1), 0.8, 5).coordinate()
    assert np.array_equal(fine, np.linspace(float(np.float32(0.1)), 0.8, 5))


def test_grid_coordinate_sel_by_typed_decimal():
    axis = GridAxis(0.1, 0.8, 5)
    coord = axis.coordinate()
    assert coord.tolist() == [0.1, 0.275, 0.45, 0.625, 0.8]
    da = xr.DataArray(np.arange(5), coords={"x": coord}, dims="x")
    assert int(da.sel(x=0.45)) == 2
    space = Space({"x": axis, "y": GridAxis(0.0, 1.0, 3)}, mode="product")
    sub = space.sel(x=0.45)
    assert sub.sizes == {"y": 3}
    assert sub[0]["x"] == np.asarray(axis.generate_values())[2]
    assert float(space.to_xarray().sel(x=0.45, y=0.5)["x_values"]) == pytest.approx(0.45)


def test_loggrid_coordinate():
    coord = LogGridAxis(0.001, 1.0, 4).coordinate()
    assert coord.dtype == np.float64
    assert coord.tolist() == [0.001, 0.01, 0.1, 1.0]
    noisy = LogGridAxis(0.003, 30.0, 5).coordinate()
    assert np.geomspace(0.003, 30.0, 5)[2] == 0.3000000000000001  # noise the labels drop
    assert noisy.tolist() == [0.003, 0.03, 0.3, 3.0, 30.0]


def test_loggrid_coordinate_keeps_irrational_points_exact():
    # sqrt(2) and sqrt(10) have no short decimal: their labels are geomspace's float64
    assert LogGridAxis(1.0, 2.0, 3).coordinate()[1] == np.sqrt(2.0)
    decade = LogGridAxis(0.1, 1000.0, 9).coordinate()
    assert np.array_equal(decade, np.geomspace(0.1, 1000.0, 9))
    assert decade[1] == np.sqrt(0.1)


def test_uniform_coordinate_is_the_draws():
    axis = UniformAxis(0.0, 1.0, 4)
    assert np.array_equal(axis.coordinate(KEY), np.asarray(axis.generate_values(KEY)))
    shaped = UniformAxis(0.0, 1.0, 4, shape=(2, 3))
    coord = shaped.coordinate(KEY)
    assert coord.shape == (4,)
    assert np.array_equal(coord, np.asarray(axis.generate_values(KEY)))
    assert shaped.value_coordinate(KEY) is None


def test_data_axis_coordinates():
    scalar = DataAxis(np.array([0.01, 0.02, 0.05]))
    assert scalar.coordinate().dtype == np.float64
    assert scalar.coordinate().tolist() == [0.01, 0.02, 0.05]
    assert scalar.value_coordinate() is None
    matrix = DataAxis(np.arange(12.0).reshape(3, 2, 2))
    assert matrix.coordinate().tolist() == [0, 1, 2]
    assert np.array_equal(matrix.value_coordinate(), np.arange(12.0).reshape(3, 2, 2))
    labelled = DataAxis([1.0, 2.0], labels=["a", "b"])
    assert labelled.coordinate().tolist() == ["a", "b"]
    assert labelled.value_coordinate().tolist() == [1.0, 2.0]
    dates = pd.date_range("2020-01-01", periods=2)
    dated = DataAxis([1.0, 2.0], labels=dates)
    assert np.array_equal(dated.coordinate(), dates.values)


def test_numpyro_coordinates():
    scalar = NumPyroAxis(dist.Normal(0.0, 1.0), 5)
    assert np.array_equal(scalar.coordinate(KEY), np.asarray(scalar.generate_values(KEY)))
    assert scalar.value_coordinate(KEY) is None
    broadcast = NumPyroAxis(dist.Normal(0.0, 1.0), 5, sample_shape=(2, 3), broadcast_mode=True)
    assert np.array_equal(
        broadcast.coordinate(KEY), np.asarray(broadcast.generate_values(KEY))[:, 0, 0]
    )
    assert broadcast.value_coordinate(KEY) is None
    independent = NumPyroAxis(dist.Normal(1.0, 2.0), 4, sample_shape=(3,))
    assert independent.coordinate(KEY).tolist() == [0, 1, 2, 3]
    assert np.array_equal(
        independent.value_coordinate(KEY), np.asarray(independent.generate_values(KEY))
    )
    batched = NumPyroAxis(dist.Normal(jnp.zeros(2), 1.0), 3)
    assert batched.coordinate(KEY).tolist() == [0, 1, 2]
    assert batched.value_coordinate(KEY).shape == (3, 2)


class _Steps(AbstractAxis):
    """A custom axis that implements only what AbstractAxis requires."""

    def generate_values(self, key=None):
        return jnp.arange(3) * 2

    @property
    def size(self):
        return 3


def test_custom_axis_needs_only_values_and_size():
    axis = _Steps(name="steps", attrs={"units": "steps"})
    assert axis.spec() == {
        "type": "_Steps",
        "name": "steps",
        "attrs": {"units": "steps"},
        "class": f"{__name__}._Steps",
    }
    space = Space({"steps": axis, "x": GridAxis(0.0, 1.0, 2)}, mode="product")
    assert [int(space[i]["steps"]) for i in range(len(space))] == [0, 0, 2, 2, 4, 4]
    attrs = json.loads(json.dumps(space.attrs))
    with pytest.raises(ValueError, match=r"got '_Steps'; a custom axis is rebuilt from the state"):
        Space.from_attrs(attrs)
    rebuilt = Space.from_attrs(attrs, state=space.state)
    assert rebuilt.sizes == space.sizes
    assert rebuilt.to_xarray().identical(space.to_xarray())


def test_subclass_of_a_builtin_axis_is_rebuilt_from_the_state():
    class Doubled(GridAxis):
        def generate_values(self, key=None):
            return 2 * super().generate_values(key)

    state = {"d": Doubled(0.0, 1.0, 3), "g": GridAxis(0.0, 1.0, 2)}
    space = Space(state, mode="product")
    attrs = json.loads(json.dumps(space.attrs))
    rebuilt = Space.from_attrs(attrs, state=state)
    assert isinstance(rebuilt.axes[0], Doubled)
    assert [float(p["d"]) for p in rebuilt] == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]


def test_bfloat16_bounds_survive_the_spec():
    axis = GridAxis(jnp.bfloat16(0.1), jnp.bfloat16(0.9), 4)
    spec = json.loads(json.dumps(axis.spec()))
    assert spec["dtype"] == "bfloat16"
    rebuilt = axis_from_spec(spec)
    assert rebuilt.generate_values().dtype == jnp.bfloat16
    assert np.array_equal(rebuilt.generate_values(), axis.generate_values())
    assert "dtype" not in GridAxis(np.float32(0.1), 0.9, 4).spec()  # the default dtype


def test_default_coordinate_of_a_custom_axis():
    axis = _Steps(name="steps")
    assert axis.coordinate().tolist() == [0, 1, 2]
    # labels 0..n-1 say nothing of the values: they are kept as {name}_value
    assert axis.value_coordinate().tolist() == [0, 2, 4]
    assert Space({"s": axis}).coords["steps_value"].values.tolist() == [0, 2, 4]

    class Labelled(_Steps):
        def coordinate(self, key=None):
            return np.array([0.0, 2.0, 4.0])

        def spec(self):  # a custom axis may describe itself its own way
            return self._base_spec()

    assert Labelled().value_coordinate() is None
    assert Labelled(name="l").spec() == {"type": "Labelled", "name": "l"}


# ---------------------------------------------------------------------------
# name, group, attrs, spec and repr
# ---------------------------------------------------------------------------


def test_name_group_attrs_are_kept():
    axis = GridAxis(0.0, 1.0, 3, group="g", name="coupling", attrs={"units": "a.u."})
    assert (axis.name, axis.group, axis.attrs) == ("coupling", "g", {"units": "a.u."})
    plain = UniformAxis(0.0, 1.0, 3)
    assert (plain.name, plain.group, plain.attrs) == (None, None, {})
    attrs = {"units": "ms"}
    data = DataAxis([1.0], attrs=attrs)
    attrs["units"] = "s"
    assert data.attrs == {"units": "ms"}  # copied


SPEC_AXES = [
    GridAxis(0.0, 1.0, 3),
    GridAxis(-1, 2, 4, shape=(2, 3), group="g", name="gain", attrs={"units": "mV", "k": [1, 2]}),
    LogGridAxis(0.001, 10.0, 5, name="rate"),
    GridAxis(np.float32(0.1), np.int64(2), 4, shape=(np.int32(2),)),  # NumPy scalars
    UniformAxis(0.5, 1.5, 6, shape=(2,), group=3),
    DataAxis([1.0, 2.5, 3.7]),
    DataAxis(np.array([3, 1, 2], dtype=np.int32), labels=[10, 20, 30], name="d"),
    DataAxis(np.arange(8.0).reshape(2, 2, 2), labels=["a", "b"], attrs={"long_name": "W"}),
    DataAxis([1.0, 2.0], labels=pd.date_range("2020-01-01", periods=2), name="day"),
    NumPyroAxis(dist.Normal(0.5, 2.0), 4),
    NumPyroAxis(dist.Uniform(0.2, 0.8), 3, sample_shape=(2, 2), broadcast_mode=True, group="b"),
    NumPyroAxis(dist.Normal(jnp.array([0.0, 1.0]), 1.0), 3, sample_shape=(2,), name="x"),
]


@pytest.mark.parametrize("axis", SPEC_AXES, ids=lambda a: type(a).__name__)
def test_spec_round_trip_through_json(axis):
    spec = json.loads(json.dumps(axis.spec()))
    rebuilt = axis_from_spec(spec)
    assert type(rebuilt) is type(axis)
    assert rebuilt.spec() == axis.spec()
    assert (rebuilt.name, rebuilt.attrs, rebuilt.size) == (axis.name, axis.attrs, axis.size)
    assert rebuilt.group == axis.group
    got, want = np.asarray(rebuilt.generate_values(KEY)), np.asarray(axis.generate_values(KEY))
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
    assert np.array_equal(rebuilt.coordinate(KEY), axis.coordinate(KEY))
    assert rebuilt.coordinate(KEY).dtype == axis.coordinate(KEY).dtype
    values = axis.value_coordinate(KEY)
    if values is None:
        assert rebuilt.value_coordinate(KEY) is None
    else:
        assert np.array_equal(rebuilt.value_coordinate(KEY), values)


def test_spec_content():
    assert GridAxis(0.0, 1.0, 3, name="g").spec() == {
        "type": "GridAxis",
        "name": "g",
        "low": 0.0,
        "high": 1.0,
        "n": 3,
    }
    spec = NumPyroAxis(dist.Normal(0.5, 2.0), 4).spec()
    assert spec["distribution"] == {
        "class": "numpyro.distributions.continuous.Normal",
        "params": {"loc": 0.5, "scale": 2.0},
    }
    assert (spec["n"], spec["sample_shape"], spec["broadcast_mode"]) == (4, [], False)
    assert DataAxis([1, 2]).spec() == {"type": "DataAxis", "values": [1, 2], "dtype": "int64"}
    # a group that JSON cannot hold is stored as its str, the dimension's name
    assert GridAxis(0.0, 1.0, 2, group=("a", 1)).spec()["group"] == "('a', 1)"


def test_axis_from_spec_rejects_unknown_type():
    with pytest.raises(ValueError, match="spec\\['type'\\].*'Bogus'"):
        axis_from_spec({"type": "Bogus"})


@pytest.mark.parametrize(
    "axis, text",
    [
        (GridAxis(0.0, 1.0, 3), "GridAxis(low=0.0, high=1.0, n=3)"),
        (
            GridAxis(0.0, 1.0, 3, shape=(2,), group="g", name="c", attrs={"units": "ms"}),
            "GridAxis(low=0.0, high=1.0, n=3, shape=(2,), name='c', group='g', "
            "attrs={'units': 'ms'})",
        ),
        (LogGridAxis(0.01, 1.0, 3), "LogGridAxis(low=0.01, high=1.0, n=3)"),
        (UniformAxis(-1.0, 1.0, 7, name="u"), "UniformAxis(low=-1.0, high=1.0, n=7, name='u')"),
        (DataAxis([1.0, 2.5]), "DataAxis([1. , 2.5])"),
        (DataAxis([1, 2], labels=["a", "b"]), "DataAxis([1, 2], labels=['a', 'b'])"),
    ],
)
def test_repr(axis, text):
    assert repr(axis) == text
    namespace = {
        "GridAxis": GridAxis,
        "LogGridAxis": LogGridAxis,
        "UniformAxis": UniformAxis,
        "DataAxis": DataAxis,
    }
    assert eval(repr(axis), namespace).spec() == axis.spec()  # noqa: S307


def test_data_axis_repr_stays_one_line_for_big_data():
    labels = [f"subject{i}" for i in range(100)]
    text = repr(DataAxis(np.zeros((100, 10, 10)), labels=labels, name="sc"))
    assert "\n" not in text
    assert text == (
        "DataAxis(<100 points of shape (10, 10), float64>, labels=['subject0', 'subject1', "
        "'subject2', ..., 'subject97', 'subject98', 'subject99'], name='sc')"
    )
    assert repr(DataAxis(np.arange(10000.0))).startswith("DataAxis([0.000e+00, 1.000e+00,")


def test_numpyro_repr():
    text = repr(NumPyroAxis(dist.Normal(0.0, 1.0), 3, sample_shape=(2,), name="n"))
    assert text.startswith("NumPyroAxis(")
    assert "Normal" in text
    assert text.endswith("n=3, sample_shape=(2,), broadcast_mode=False, name='n')")


def test_shape_accepts_an_int_and_integer_scalars():
    assert GridAxis(0.0, 1.0, 2, shape=3).shape == (3,)
    axis = GridAxis(0.0, 1.0, np.int64(4), shape=(np.int32(2),))
    assert axis.n == 4 and type(axis.n) is int
    assert axis.shape == (2,)
    assert NumPyroAxis(dist.Normal(0.0, 1.0), jnp.int32(3)).n == 3
    assert GridAxis(np.array(0.5), jnp.float32(2.0), 2).high == 2.0


# ---------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------

BOUNDED = [GridAxis, LogGridAxis, UniformAxis]


@pytest.mark.parametrize("cls", BOUNDED)
@pytest.mark.parametrize(
    "args, exc, match",
    [
        ((0.1, 1.0, 0), ValueError, r"n must be >= 1, got 0"),
        ((0.1, 1.0, -3), ValueError, r"n must be >= 1, got -3"),
        ((0.1, 1.0, 5.0), TypeError, r"n must be an integer, got 5\.0"),
        ((0.1, 1.0, "5"), TypeError, r"n must be an integer, got '5'"),
        ((0.1, 1.0, True), TypeError, r"n must be an integer, got True"),
        ((0.1, 1.0, np.array([3])), TypeError, r"n must be an integer, got array\(\[3\]\)"),
        ((1.0, 1.0, 3), ValueError, r"low must be less than high, got low=1\.0, high=1\.0"),
        ((2.0, 1.0, 3), ValueError, r"low must be less than high, got low=2\.0, high=1\.0"),
        ((float("nan"), 1.0, 3), ValueError, r"low must be finite, got nan"),
        ((0.1, float("nan"), 3), ValueError, r"high must be finite, got nan"),
        ((0.1, float("inf"), 3), ValueError, r"high must be finite, got inf"),
        ((-np.inf, 1.0, 3), ValueError, r"low must be finite, got -inf"),
        (("0", 1.0, 3), TypeError, r"low must be a real number, got '0'"),
        ((0.1, None, 3), TypeError, r"high must be a real number, got None"),
        ((0.1, 1.0, 3, (2, 0)), ValueError, r"shape\[1\] must be >= 1, got 0"),
        ((0.1, 1.0, 3, (2.0,)), TypeError, r"shape\[0\] must be an integer, got 2\.0"),
        ((0.1, 1.0, 3, "ab"), TypeError, r"shape must be None or a tuple .*'ab'"),
    ],
)
def test_bounded_axes_reject_bad_arguments(cls, args, exc, match):
    with pytest.raises(exc, match=match):
        cls(*args)


@pytest.mark.parametrize("cls", [GridAxis, LogGridAxis, UniformAxis])
def test_a_wrong_keyword_or_a_missing_argument_names_the_class_the_user_called(cls):
    """Not the internal base class they share (``BoundedAxis.__init__() got ...``)."""
    name = cls.__name__
    with pytest.raises(TypeError, match=rf"^{name}\.__init__\(\) got an unexpected keyword "
                                        r"argument 'nmae'"):
        cls(0.1, 1.0, 3, nmae="x")
    with pytest.raises(TypeError, match=rf"^{name}\.__init__\(\) missing 1 required positional "
                                        r"argument: 'n'"):
        cls(0.1, 1.0)


@pytest.mark.parametrize("low", [0.0, -1.0])
def test_loggrid_needs_positive_low(low):
    with pytest.raises(ValueError, match=rf"low must be positive .*low={low!r}"):
        LogGridAxis(low, 1.0, 3)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"name": 3}, TypeError, r"name must be a non-empty string or None, got 3"),
        ({"name": np.array(["a", "b"])}, TypeError, r"name must be a non-empty string or None"),
        ({"name": ""}, ValueError, r"name must be a non-empty string or None, got ''"),
        ({"attrs": ["units"]}, TypeError, r"attrs must be a mapping or None, got \['units'\]"),
        ({"attrs": "ms"}, TypeError, r"attrs must be a mapping or None, got 'ms'"),
        ({"group": ["g"]}, TypeError, r"group must be hashable, got \['g'\]"),
    ],
)
@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: GridAxis(0.0, 1.0, 3, **kw),
        lambda **kw: UniformAxis(0.0, 1.0, 3, **kw),
        lambda **kw: DataAxis([1.0, 2.0], **kw),
        lambda **kw: NumPyroAxis(dist.Normal(0.0, 1.0), 3, **kw),
    ],
    ids=["grid", "uniform", "data", "numpyro"],
)
def test_common_keywords_are_checked(make, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make(**kwargs)


@pytest.mark.parametrize(
    "values, labels, exc, match",
    [
        ([], None, ValueError, r"values must hold at least one value, got \[\]"),
        (np.zeros((0, 3)), None, ValueError, r"values must hold at least one value"),
        (3.0, None, ValueError, r"values must have a first dimension .*scalar 3\.0"),
        (np.float32(2.0), None, ValueError, r"values must have a first dimension"),
        (["red", "blue"], None, TypeError, r"values must be .*\['red', 'blue'\]"),
        (
            [1.0, 2.0, 3.0],
            ["a"],
            ValueError,
            r"labels must be 1-D with one label per value \(3\), "
            r"got \['a'\] of shape \(1,\)",
        ),
        ([1.0, 2.0], [["a", "b"]], ValueError, r"labels must be 1-D .*shape \(1, 2\)"),
    ],
)
def test_data_axis_rejects_bad_arguments(values, labels, exc, match):
    with pytest.raises(exc, match=match):
        DataAxis(values, labels=labels)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (("normal", 3), {}, TypeError, r"distribution must be a numpyro.*got 'normal' \(str\)"),
        ((dist.Normal, 3), {}, TypeError, r"distribution must be a numpyro.*Normal"),
        ((np.random.default_rng(0), 3), {}, TypeError, r"distribution must be .*Generator"),
        ((dist.Normal(0.0, 1.0), 0), {}, ValueError, r"n must be >= 1, got 0"),
        ((dist.Normal(0.0, 1.0), 2.5), {}, TypeError, r"n must be an integer, got 2\.5"),
        (
            (dist.Normal(0.0, 1.0), 3),
            {"sample_shape": (0,)},
            ValueError,
            r"sample_shape\[0\] must be >= 1, got 0",
        ),
        (
            (dist.Normal(0.0, 1.0), 3),
            {"sample_shape": 2.0},
            TypeError,
            r"sample_shape must be None or a tuple .*2\.0",
        ),
        (
            (dist.Normal(0.0, 1.0), 3),
            {"broadcast_mode": "yes"},
            TypeError,
            r"broadcast_mode must be a bool, got 'yes'",
        ),
    ],
)
def test_numpyro_axis_rejects_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        NumPyroAxis(*args, **kwargs)


@pytest.mark.parametrize(
    "cls, low, high, bad",
    [
        (GridAxis, -1e308, 1.0, "low=-1e+308"),
        (UniformAxis, -1e308, 1.0, "low=-1e+308"),
        (GridAxis, 1.0, 1e39, "high=1e+39"),
        (LogGridAxis, 1.0, 1e39, "high=1e+39"),
        (UniformAxis, 1.0, 1e39, "high=1e+39"),
    ],
)
def test_bounded_axes_reject_bounds_beyond_float32(cls, low, high, bad):
    name = bad.split("=")[0]
    with pytest.raises(ValueError, match=rf"{name} must fit in float32 .*got {re.escape(bad)}$"):
        cls(low, high, 3)


@pytest.mark.parametrize(
    "make",
    [
        lambda top: UniformAxis(-top, top, 3),  # the span high - low overflows
        lambda top: LogGridAxis(1e-37, top, 4),  # the last point rounds past the top
    ],
    ids=["uniform", "loggrid"],
)
def test_space_rejects_axes_whose_values_overflow(make):
    axis = make(float(jnp.finfo(jnp.float32).max))
    with pytest.raises(ValueError, match=r"the axis at 'p\.x', .* beyond the range of float32"):
        Space({"p": {"x": axis}})


@pytest.mark.parametrize(
    "values, match",
    [
        ([2**40, 1], r"values must fit in int32 .*got values from 1 to 1099511627776"),
        (np.array([1.0, 1e39]), r"values must fit in float32 .*got 1e\+39 which overflows"),
    ],
)
def test_data_axis_rejects_values_jax_cannot_hold(values, match):
    with pytest.raises(ValueError, match=match):
        DataAxis(values)
    assert DataAxis([np.inf, 1.0]).values.tolist() == [np.inf, 1.0]  # infinities as given


def test_numpyro_broadcast_mode_needs_scalar_draws():
    with pytest.raises(ValueError, match=r"broadcast_mode=True .*draws shape \(3,\); got sample"):
        NumPyroAxis(dist.Normal(jnp.zeros(3), 1.0), 4, sample_shape=(2,), broadcast_mode=True)
    # without a sample_shape nothing is broadcast, as in TVB-Optim
    axis = NumPyroAxis(dist.Normal(jnp.zeros(3), 1.0), 4, broadcast_mode=True)
    assert axis.generate_values(KEY).shape == (4, 3)


def test_tvboptim_accepts_what_we_reject():
    """The reference implementation accepts these silently; we raise at construction."""
    assert tv.GridAxis(0.0, float("nan"), 3).size == 3
    assert tv.GridAxis(0.0, 1.0, 5.0).size == 5.0
    with pytest.raises(ValueError):
        GridAxis(0.0, float("nan"), 3)
    with pytest.raises(TypeError):
        GridAxis(0.0, 1.0, 5.0)


# ---------------------------------------------------------------------------
# hardening (issue 9)
# ---------------------------------------------------------------------------


def test_data_axis_keeps_its_own_copy_of_values_and_labels():
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    labels = np.array(["s1", "s2", "s3"])
    scalars = np.array([0.1, 0.2, 0.3])
    space = Space({"w": DataAxis(values, labels=labels), "v": DataAxis(scalars)},
                  mode="product")
    values[:] = -1.0
    labels[:] = "changed"
    scalars[:] = -1.0
    assert space.coords["w"].values.tolist() == ["s1", "s2", "s3"]
    assert space.coords["v"].values.tolist() == [0.1, 0.2, 0.3]
    assert space.coords["w_value"].values[2].tolist() == [5.0, 6.0]
    assert space.dims == ("v", "w")
    assert np.asarray(space[8]["w"]).tolist() == [5.0, 6.0]
    assert space[8]["v"] == np.float32(0.3)
    assert space.to_xarray()["w_values"].values[0, 0].tolist() == [1.0, 2.0]
    assert space.sel(w="s2").sizes == {"v": 3}


BIG = 2**40


@pytest.mark.parametrize("cls", BOUNDED)
@pytest.mark.parametrize(
    "low, high, name",
    [
        (np.int64(BIG), np.int64(BIG + 5), "low"),
        (1, BIG, "high"),
        (-BIG, 1, "low"),
        (1, np.uint64(BIG), "high"),
        (np.uint64(BIG), np.uint64(BIG + 1), "low"),
        (1, 2**31, "high"),
    ],
    ids=["np.int64-low", "int-high", "int-negative-low", "np.uint64-high", "np.uint64-low",
         "2**31"],
)
def test_integer_bounds_beyond_int32_are_refused_without_x64(cls, low, high, name):
    with pytest.raises(ValueError, match=rf"^{name} must be an integer that fits in int32 "
                       rf"\(-2147483648\.\.2147483647: JAX's integer without x64\), got "
                       rf".*; give it as a float .* or enable jax_enable_x64$"):
        cls(low, high, 3)
    # as floats they are fine, and the largest int32 is too
    if cls is not LogGridAxis or low > 0:
        assert cls(float(low), float(high), 3).size == 3
    assert cls(1, 2**31 - 1, 3).high == 2**31 - 1


@pytest.mark.parametrize(
    "make",
    [
        lambda n: GridAxis(0.0, 1.0, n),
        lambda n: LogGridAxis(1.0, 2.0, n),
        lambda n: UniformAxis(0.0, 1.0, n),
        lambda n: NumPyroAxis(dist.Normal(0.0, 1.0), n),
    ],
    ids=["grid", "loggrid", "uniform", "numpyro"],
)
@pytest.mark.parametrize(
    "n, exc, match",
    [
        (2**30, ValueError, r"n must be below 2\*\*30 \(the largest dimension a grid holds\), "
                            r"got 1073741824"),
        (10**20, ValueError, r"n must be below 2\*\*30 .*got 100000000000000000000"),
        (np.int64(2**40), ValueError, r"n must be below 2\*\*30 .*got 1099511627776"),
        (1e10, TypeError, r"n must be an integer, got 10000000000\.0 \(float\)"),
    ],
    ids=["2**30", "1e20", "np.int64", "1e10"],
)
def test_sizes_a_grid_cannot_hold_are_refused_at_once(make, n, exc, match):
    # refused before anything of size n exists: no memory grows (the time a refusal
    # takes is measured by benchmarks/space_scaling.py, not asserted here)
    import tracemalloc  # noqa: PLC0415 - the only tests here that measure

    tracemalloc.start()
    with pytest.raises(exc, match=match):
        make(n)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize("flag", [True, np.bool_(True), np.array(True), jnp.array(True)],
                         ids=["bool", "np.bool_", "np.array", "jnp.array"])
def test_boolean_bounds_are_refused(flag):
    with pytest.raises(TypeError, match=r"^low must be a real number, got .*True.* \(bool\)$"):
        GridAxis(flag, 1.0, 3)
    with pytest.raises(TypeError, match=r"^high must be a real number, got .*True.* \(bool\)$"):
        UniformAxis(0.0, flag, 3)


def test_bounds_python_numbers_cannot_give():
    from fractions import Fraction

    cases = [
        (10**400, 10**401, ValueError, r"^low must be a real number that fits in float64, got "),
        (0, 10**400, ValueError, r"^high must be a real number that fits in float64, got "),
        (Fraction(1, 3), 1.0, TypeError,
         r"^low must be a float or an int, got Fraction\(1, 3\) \(Fraction\); give float"),
        (0.0, Fraction(1, 3), TypeError, r"^high must be a float or an int, got Fraction\(1, 3\)"),
    ]
    for low, high, exc, match in cases:
        for cls in BOUNDED:
            with pytest.raises(exc, match=match):
                cls(low, high, 3)


@pytest.mark.parametrize(
    "labels, kinds",
    [(["a", 1], "numbers and strings"), ([True, 2], "booleans and numbers"),
     (("x", b"y"), "bytes and strings")],
)
def test_labels_of_mixed_kinds_are_refused(labels, kinds):
    with pytest.raises(TypeError, match=rf"^labels must be all of one kind \(strings, numbers, "
                       rf"bytes or dates\), got .* mixing {kinds}$"):
        DataAxis([1.0, 2.0], labels=labels)
    assert DataAxis([1.0, 2.0], labels=[1, 2.5]).labels.tolist() == [1.0, 2.5]  # numbers mix


def test_a_users_registered_class_named_like_ours_is_another_class():
    from labeled_spaces.axes import AXIS_TYPES

    class GridAxis(UniformAxis):  # noqa: F811 - the clash under test
        """A user's own registered axis that happens to share the name of ours."""

        spec_fields = ("low", "high", "n")

    qualified = f"{__name__}.{GridAxis.__qualname__}"
    try:
        assert AXIS_TYPES[qualified] is GridAxis
        ours = Space({"a": GridAxis_ours(0.0, 1.0, 3), "b": GridAxis(0.0, 1.0, 2)},
                     mode="product")
        assert ours.axes[0].rebuildable and ours.axes[1].rebuildable
        spec = ours.axes[0].spec()
        assert spec["type"] == "GridAxis" and "class" not in spec  # as files always said
        assert ours.axes[1].spec()["class"] == qualified
        rebuilt = Space.from_attrs(json.loads(json.dumps(ours.attrs)))
        assert type(rebuilt.axes[0]) is GridAxis_ours and type(rebuilt.axes[1]) is GridAxis
        assert rebuilt.to_xarray().identical(ours.to_xarray())
        # a file written before: our classes by their bare names
        old = {"type": "GridAxis", "low": 0.0, "high": 1.0, "n": 3}
        assert type(axis_from_spec(old)) is GridAxis_ours
        # a file names only registered classes; nothing it names is imported
        for named in ("os.system", f"{__name__}.NotAClass", "labeled_spaces.GridAxis"):
            with pytest.raises(ValueError, match="must name a registered axis class"):
                axis_from_spec({**old, "class": named})
    finally:
        AXIS_TYPES.pop(qualified, None)
    assert GridAxis_ours(0.0, 1.0, 3).rebuildable


def test_an_unregistered_class_named_like_ours_is_taken_from_the_state():
    class GridAxis(_Steps):  # noqa: F811 - not registered, same name as ours
        pass

    state = {"s": GridAxis(name="s"), "x": GridAxis_ours(0.0, 1.0, 2)}
    space = Space(state, mode="product")
    attrs = json.loads(json.dumps(space.attrs))
    with pytest.raises(ValueError, match="a custom axis is rebuilt from the state"):
        Space.from_attrs(attrs)  # not rebuilt as our GridAxis from a spec it does not hold
    assert Space.from_attrs(attrs, state=state).to_xarray().identical(space.to_xarray())


def test_data_axis_of_names_says_to_give_them_as_labels():
    # subjects or conditions by name are a common first DataAxis; strings cannot be values
    with pytest.raises(TypeError, match=r"values must be numeric, got dtype <U6 from \['sub-01', "
                       r"'sub-02'\]; to sweep named conditions, give the model numbers and the "
                       r"names as labels: DataAxis\(np\.arange\(2\), labels=\['sub-01', "
                       r"'sub-02'\]\)$"):
        DataAxis(["sub-01", "sub-02"])
    axis = DataAxis(np.arange(2), labels=["sub-01", "sub-02"])  # the hint, as written
    assert axis.coordinate().tolist() == ["sub-01", "sub-02"]
    many = [f"subject_{i:03d}" for i in range(300)]  # the list once, cut, not twice in full
    with pytest.raises(TypeError, match=r"^values must be numeric, got dtype <U11 from "
                       r"\['subject_000', .*\.\.\. \(300 names\); to sweep named conditions, "
                       r".*: DataAxis\(np\.arange\(300\), labels=names\)$") as info:
        DataAxis(many)
    assert len(str(info.value)) < 300

"""Axes: one varying parameter each, its values and its coordinate labels.

``base`` holds the contract and the registry that rebuilds axes from their
specifications; ``bounded`` the grid and uniform axes; ``data`` DataAxis;
``distribution`` NumPyroAxis and the description of distributions in files;
``keys`` KeyAxis and PointKey, random keys that belong to a combination.
"""

from .base import AXIS_TYPES, AbstractAxis, NotRebuildable, axis_from_spec, value_dims
from .bounded import BoundedAxis, GridAxis, LogGridAxis, UniformAxis
from .data import DataAxis
from .distribution import NumPyroAxis
from .keys import KeyAxis, PointKey

__all__ = [
    "AXIS_TYPES",
    "AbstractAxis",
    "BoundedAxis",
    "DataAxis",
    "GridAxis",
    "KeyAxis",
    "LogGridAxis",
    "NotRebuildable",
    "NumPyroAxis",
    "PointKey",
    "UniformAxis",
    "axis_from_spec",
    "value_dims",
]

"""Every ``labeled_spaces:*`` attrs key, in one place: what it holds, its type, who writes it.

netCDF and zarr attributes hold only strings and numbers, so what the package
records about a run lives in namespaced entries of a Dataset's (and so a
file's) attrs. This module is the only one that spells these keys; writers
and readers import the constants, and ``tests/test_layering.py`` keeps it so.
An entry is JSON text unless its comment says "plain string".

===================  ======================  ==========================================
group                written by              keys
===================  ======================  ==========================================
the Space            ``Space.attrs``         mode, dim, key, key_impl, axes, state,
                     (``space/attrs.py``)    leaves, state_nodes, selection, versions
the outputs          ``Outputs.file_attrs``  outputs, output_dims, output_dtypes,
                     (``results/names.py``)  output_tree
the run identity     ``identity_attrs``      identity, arguments, analysis
                     (``results/recorded``)
a store              ``results/store.py``    store
a netCDF file        ``write_netcdf``        netcdf_names, complex; ``dtype`` on a
                     (``results/netcdf.py``) variable (also in a store)
===================  ======================  ==========================================

Reading an entry is :func:`read_entry`: what a file claims is data, checked
(see :func:`labeled_spaces._codec.read_json`), never code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._codec import read_json

__all__ = [
    "ANALYSES", "ANALYSIS_ATTR", "ARGUMENTS_ATTR", "AXES_ATTR", "COMPLEX_ATTR", "DIM_ATTR",
    "DTYPE_ATTR", "IDENTITY_ATTR",
    "IDENTITY_FORMAT", "KEYS", "KEY_ATTR", "KEY_IMPL_ATTR", "KEY_KIND_ATTR", "LEAVES_ATTR",
    "MODE_ATTR",
    "NETCDF_NAMES_ATTR", "NODES_ATTR",
    "OUTPUTS_ATTR", "OUTPUT_DIMS_ATTR", "OUTPUT_DTYPES_ATTR", "OUTPUT_TREE_ATTR", "PREFIX",
    "REFINE_ATTR", "REFINE_FORMAT",
    "SELECTED_FROM_ATTR", "SELECTION_ATTR", "STATE_ATTR", "STORE_ATTR", "STORE_FORMAT",
    "VERSIONS_ATTR",
    "read_entry",
]

#: what every key starts with
PREFIX = "labeled_spaces:"

# -- the Space (space/attrs.py: space_attrs writes them, parse_attrs reads them) ----------
#: plain string: ``"product"``, ``"zip"`` or a design's name (``"qmc"``, ...)
MODE_ATTR = "labeled_spaces:mode"
#: plain string: the one shared dimension's name; only when the mode is not ``"product"``
DIM_ATTR = "labeled_spaces:dim"
#: list of int: the PRNG key's data (``jax.random.key_data``)
KEY_ATTR = "labeled_spaces:key"
#: plain string: the key's PRNG implementation; only when not ``"threefry2x32"``
KEY_IMPL_ATTR = "labeled_spaces:key_impl"
#: plain string ``"raw"``: the key was raw ``uint32`` data (``jax.random.PRNGKey``), so the
#: rebuilt Space's KeyAxis and PointKey leaves give raw keys too; only then
KEY_KIND_ATTR = "labeled_spaces:key_kind"
#: list of objects: each axis's ``spec()`` with its ``"path"`` in the state; a big
#: DataAxis's ``"values"`` may be ``{"coordinate": name}``, a coordinate of the file
AXES_ATTR = "labeled_spaces:axes"
#: object: the state's structure and its fixed leaves (``space/state_codec.py``); absent
#: when the state cannot be encoded
STATE_ATTR = "labeled_spaces:state"
#: object ``{path: encoded leaf}``: the state's fixed leaves by key path, where the state's
#: structure cannot be encoded (a NamedTuple, a dataclass); only then
LEAVES_ATTR = "labeled_spaces:leaves"
#: list of objects ``{"path", "kind", "type", "fields"}``: the state's nodes that are not
#: dicts, lists or tuples (a NamedTuple ``P``, a dataclass), only named, never imported: a
#: state rebuilt without them says what it was (``space/state_nodes.py``); beside LEAVES_ATTR
NODES_ATTR = "labeled_spaces:state_nodes"
#: object ``{"positions": {dim: [int]}, "scalars": {name: {"dims", "attrs", "values",
#: "dtype"}}}``: a sub-space's kept positions and scalar coordinates; only a sub-space
SELECTION_ATTR = "labeled_spaces:selection"
#: object ``{axis name: class name}``: a sub-space's DataAxis that hold the points they
#: kept of another kind of axis (``Space.selected_from``); only then. Not part of the run
#: identity: it says what the values are, not which values
SELECTED_FROM_ATTR = "labeled_spaces:selected_from"
#: object ``{package: version}``: the versions that made the results
VERSIONS_ATTR = "labeled_spaces:versions"

# -- the outputs (results/names.py: Outputs.file_attrs; results/files.py reads them) ------
#: list of str: the outputs' names (key paths of the model's output tree)
OUTPUTS_ATTR = "labeled_spaces:outputs"
#: object ``{output: [dim]}``: the outputs' own dimensions, where named
OUTPUT_DIMS_ATTR = "labeled_spaces:output_dims"
#: list of str: the outputs' dtypes
OUTPUT_DTYPES_ATTR = "labeled_spaces:output_dtypes"
#: object: how the outputs nest (``results/output_tree.py``); absent when not describable
OUTPUT_TREE_ATTR = "labeled_spaces:output_tree"

# -- the run identity (results/recorded.py: identity_attrs; results/identity.py reads) ----
#: object ``{"format": IDENTITY_FORMAT, "digest", "program", "inputs"}``: what makes a run
#: the same run
IDENTITY_ATTR = "labeled_spaces:identity"
#: object ``{"args": [...], "kwargs": {...}}``: the model's extra arguments, for a person
ARGUMENTS_ATTR = "labeled_spaces:arguments"
#: plain string: the analysis that made the results, one of :data:`ANALYSES` (the setting
#: ``"analysis"`` of its Program); only results of an analysis. ``open_results`` gives back
#: the Results class of that analysis (a fit's ``best()``): the string is looked up in a
#: fixed table, never imported or called
ANALYSIS_ATTR = "labeled_spaces:analysis"
#: the analyses whose results record :data:`ANALYSIS_ATTR`
ANALYSES = ("fit", "gradients", "refine", "sensitivity")
#: the version of the identity's JSON layout
IDENTITY_FORMAT = 1

# -- a store (results/store.py writes it, results/store_writer.py reads it) ---------------
#: object ``{"format": STORE_FORMAT, "shape", "step", "vars": [{"var", "shape", "dtype"}]}``:
#: the block tiling (the chunks) and the stored variables; only in a store
STORE_ATTR = "labeled_spaces:store"
#: the version of the store's layout
STORE_FORMAT = 2

# -- refine's results (results/refined.py writes and reads it) ----------------------------
#: object ``{"format": REFINE_FORMAT, "axes", "low", "high", "log", "grid", "batch", "n",
#: "output"}``: the box refined, the points of the first round (the space's grid), the
#: points per later round, the points in all and the driving output; in the Dataset of
#: refine's results, so a file or store of them reopens as RefineResults
REFINE_ATTR = "labeled_spaces:refine"
#: the version of that entry's layout
REFINE_FORMAT = 1

# -- a netCDF file (results/netcdf.py writes them, results/files.py reads them) -----------
#: object ``{name in the file: name}``: names netCDF rejects, renamed; only where renamed
NETCDF_NAMES_ATTR = "labeled_spaces:netcdf_names"
#: list of str: the complex variables (read back with ``auto_complex``); only where any
COMPLEX_ATTR = "labeled_spaces:complex"
#: plain string, an attr of a variable: ``"float16"`` or ``"bfloat16"`` for a variable
#: widened to float32 (netCDF; bfloat16 in a store)
DTYPE_ATTR = "labeled_spaces:dtype"

#: every key above
KEYS = frozenset({
    MODE_ATTR, DIM_ATTR, KEY_ATTR, KEY_IMPL_ATTR, KEY_KIND_ATTR, AXES_ATTR, STATE_ATTR,
    LEAVES_ATTR, NODES_ATTR,
    SELECTION_ATTR, SELECTED_FROM_ATTR,
    VERSIONS_ATTR, OUTPUTS_ATTR, OUTPUT_DIMS_ATTR, OUTPUT_DTYPES_ATTR, OUTPUT_TREE_ATTR,
    IDENTITY_ATTR, ARGUMENTS_ATTR, ANALYSIS_ATTR, STORE_ATTR, NETCDF_NAMES_ATTR, COMPLEX_ATTR,
    DTYPE_ATTR, REFINE_ATTR,
})

_REQUIRED = object()


def read_entry(attrs: Mapping[str, Any], key: str, default: Any = _REQUIRED,
               hint: str = "") -> Any:
    """The JSON entry ``key`` of ``attrs``, parsed and checked; ``default`` when absent.

    Without a ``default`` a missing entry is a ``ValueError`` naming it
    (followed by ``hint``).

    Examples
    --------
    >>> from labeled_spaces._schema import KEY_ATTR, read_entry
    >>> read_entry({KEY_ATTR: "[0, 7]"}, KEY_ATTR)
    [0, 7]
    >>> read_entry({}, KEY_ATTR, hint=": not saved results")
    Traceback (most recent call last):
    ...
    ValueError: attrs lack the labeled_spaces entry 'labeled_spaces:key': not saved results
    """
    if key not in attrs:
        if default is _REQUIRED:
            raise ValueError(f"attrs lack the labeled_spaces entry {key!r}{hint}")
        return default
    return read_json(attrs[key], key)

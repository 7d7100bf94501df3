"""The run identity: what makes a run the same run, in one place.

A run's results are determined by its *inputs* — the space (every axis's
values however large, each axis class's own public fields, the labels, the
key and mode, a sub-space's selection), the fixed leaves of the state, the
model's extra positional and keyword arguments, the settings of the analysis
that runs it (``Program.settings``: a fit's optimizer and steps, ...), and the
outputs' structure, shapes, dtypes and labels — and by its *program*, the
model's traced code.
:class:`RunIdentity` holds a readable description of the inputs (small
values as they are, arrays and anything large as ``dtype``, ``shape`` and a
digest computed chunk by chunk) with its digest, and beside it the traced
program's fingerprint.

A store resumes a run unless :meth:`RunIdentity.refusal` names another input
(a ``ValueError``, unless the run grows the store; another or unknown program:
a warning, :meth:`RunIdentity.check_program`). Datasets and files record it
(:mod:`labeled_spaces.results.recorded`), read back by
:meth:`RunIdentity.from_attrs`. Nothing else compares runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from .._caches import ProgramCache
from .._checks import warn_user
from .._codec import jsonable, key_data
from .._format import clipped
from .._schema import (
    AXES_ATTR,
    DIM_ATTR,
    IDENTITY_ATTR,
    IDENTITY_FORMAT,
    KEY_ATTR,
    KEY_IMPL_ATTR,
    SELECTION_ATTR,
)
from ..axes import KeyAxis
from ..space import Space, is_axis, keypath_name
from .output_tree import structure_to_json
from .values import (
    array_summary,
    class_name,
    describe_arguments,
    digest_array,
    plain,
    program_fingerprint,
    same_values,
    summarise,
)

__all__ = [
    "ANALYSIS_KEY", "ANOTHER_SPACE", "ARGUMENT_KEYS", "OTHER_SETTINGS", "RunIdentity",
    "SPACE_KEYS", "axis_keys", "describe_arguments", "describe_key", "digest_array",
    "program_fingerprint", "run_identity", "space_differences", "summarise",
]

# how a store made for another space is refused (an analysis that makes the space adds why)
ANOTHER_SPACE = "was made for another space"
# which part of a run each top-level entry of the description belongs to
SPACE_KEYS = ("mode", "dim", "key", "key_impl", "selection", "axes", "coords", "fixed")
ARGUMENT_KEYS = ("args", "kwargs")
# the settings of the analysis that made the run (Program.settings), when one did, and
# how a store made with other settings is refused
ANALYSIS_KEY = "analysis"
OTHER_SETTINGS = "was made with other analysis settings"
OUTPUT_KEYS = ("tree", "outputs", "output_coords")
_SHOWN = 4  # differences named per kind in a refusal
# a space's description, made once per Space (clear_caches() forgets them)
_SPACES = ProgramCache("run identity of spaces")


def _entry(attrs: Mapping[str, Any], key: str) -> Any:
    """A space attr as its description holds it: JSON read, plain text as it is."""
    raw = attrs.get(key)
    plain_text = key in (DIM_ATTR, KEY_IMPL_ATTR)
    return json.loads(raw) if isinstance(raw, str) and not plain_text else raw


def describe_key(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The key's part of a space's description: the key, and its implementation if named.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.results.identity import describe_key
    >>> describe_key(Space({"k": GridAxis(0.0, 1.0, 2)}).attrs)
    {'key': [0, 0]}
    """
    out = {"key": _entry(attrs, KEY_ATTR)}
    if KEY_IMPL_ATTR in attrs:
        out["key_impl"] = _plain_tree(_entry(attrs, KEY_IMPL_ATTR))
    return out


def _describe_space(space: Space) -> dict[str, Any]:
    attrs = space.attrs

    def entry(key: str) -> Any:
        return _entry(attrs, key)

    specs = entry(AXES_ATTR) or []
    axes = {}
    for k, (axis, path, table) in enumerate(zip(space.axes, space.paths, space.layout.tables,
                                                strict=True)):
        spec = dict(specs[k]) if k < len(specs) else {}
        spec.pop("path", None)
        fields = {n: v for n, v in vars(axis).items() if not n.startswith("_")}
        if isinstance(fields.get("attrs"), Mapping):  # as a file gives them back (JSON)
            fields["attrs"] = _plain_tree(fields["attrs"])
        axes[path] = {"class": class_name(axis), "spec": _plain_tree(spec),
                      "fields": summarise(fields), "values": array_summary(table)}
    for path, data in axis_keys(space).items():
        axes[path]["axis_key"] = data
    coords = {str(name): {"dims": list(c.dims), "values": array_summary(c.values),
                          "attrs": _attrs_summary(c.attrs)}
              for name, c in space.coords.items()}
    flat, _ = jax.tree_util.tree_flatten_with_path(space.state, is_leaf=is_axis)
    fixed = {keypath_name(p): summarise(leaf) for p, leaf in flat if not is_axis(leaf)}
    out = {"mode": space.mode, "axes": axes, "coords": coords, "fixed": fixed,
           **describe_key(attrs)}
    for name, key in (("dim", DIM_ATTR), ("selection", SELECTION_ATTR)):
        if key in attrs:
            out[name] = _plain_tree(entry(key))
    return out


def axis_keys(space: Space) -> dict[str, list[int]]:
    """Each KeyAxis's key, which its replicate keys fold: JAX's split rule is a setting.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, KeyAxis, Space
    >>> from labeled_spaces.results.identity import axis_keys
    >>> list(axis_keys(Space({"k": GridAxis(0.0, 1.0, 2), "r": KeyAxis(3)}, mode="product")))
    ['r']
    """
    split = jax.random.split(space.key, len(space.axes) + 1)
    return {path: key_data(axis.axis_key(split[k + 1]))
            for k, (axis, path) in enumerate(zip(space.axes, space.paths, strict=True))
            if isinstance(axis, KeyAxis)}


def _plain_tree(value: Any) -> Any:
    return json.loads(json.dumps(_plain_json(jsonable(value)), default=str))


def _plain_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    return plain(value)


def _attrs_summary(attrs: Mapping[str, Any]) -> Any:
    """Labels' attrs with NumPy values as the Python values they hold: netCDF reads ``3``
    back as ``np.int64(3)``, which must describe the same run (xarray's ``identical``)."""
    return summarise({k: v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v
                      for k, v in attrs.items()})


def _describe_outputs(outputs: Any) -> dict[str, Any]:
    return {
        "tree": structure_to_json(outputs.treedef),
        "outputs": [
            {"name": n, "var": v, "dims": list(d), "shape": list(s), "dtype": str(t),
             "attrs": _attrs_summary(a)}
            for n, v, d, s, t, a in zip(outputs.names, outputs.var_names, outputs.dims,
                                        outputs.shapes, outputs.dtypes, outputs.attrs,
                                        strict=True)
        ],
        "output_coords": {
            name: {"dims": list(c.dims), "dtype": str(np.asarray(c.values).dtype),
                   "values": array_summary(c.values), "attrs": _attrs_summary(c.attrs)}
            for name, c in outputs.coords.items()
        },
    }


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    """What makes a run the same run: its inputs (readable) and its traced program.

    Attributes
    ----------
    inputs : dict
        The description of the inputs, JSON-ready: space entries
        (``mode``, ``key``, ``axes``, ``coords``, ``fixed``, ...), the model's
        ``args`` and ``kwargs``, and the outputs (``tree``, ``outputs``,
        ``output_coords``).
    program : str
        The traced program's fingerprint; ``""`` when the model could not be
        traced (``jit=False``), so nothing says whether it changed.

    Examples
    --------
    >>> from labeled_spaces.results.identity import RunIdentity
    >>> old = RunIdentity({"kwargs": {"n_steps": 10}}, "abc")
    >>> new = RunIdentity({"kwargs": {"n_steps": 20}}, "abc")
    >>> old.differences(new)
    ['n_steps: 10 -> 20']
    >>> old.digest == RunIdentity({"kwargs": {"n_steps": 10}}, "other").digest
    True
    """

    inputs: dict[str, Any]
    program: str = ""

    @property
    def digest(self) -> str:
        """A digest of the inputs (the program apart: see :attr:`program`)."""
        text = json.dumps(self.inputs, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        """The identity as the JSON of the ``labeled_spaces:identity`` attr."""
        return json.dumps({"format": IDENTITY_FORMAT, "digest": self.digest,
                           "program": self.program, "inputs": self.inputs}, default=str)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> RunIdentity | None:
        """The identity recorded in ``attrs`` (None when there is none or it is unreadable)."""
        raw = attrs.get(IDENTITY_ATTR)
        if not isinstance(raw, str):
            return None
        try:
            held = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            return None
        if not isinstance(held, dict) or not isinstance(held.get("inputs"), dict):
            return None
        program = held.get("program")
        return cls(held["inputs"], program if isinstance(program, str) else "")

    def differences(self, now: RunIdentity, keys: Sequence[str] | None = None) -> list[str]:
        """Each place where ``now``'s inputs differ from these, as ``where: old -> new``."""
        names = keys if keys is not None else sorted(set(self.inputs) | set(now.inputs))
        found: list[str] = []
        for key in names:  # keyword arguments and settings by their own names: n_steps: 1 -> 2
            where = "" if key in ("kwargs", ANALYSIS_KEY) else key
            stored, current = self.inputs.get(key), now.inputs.get(key)
            if key == ANALYSIS_KEY:  # none recorded: a plain run's, each setting named alone
                stored, current = stored or {}, current or {}
            found += _differences(stored, current, where)
        return found

    def refusal(self, now: RunIdentity, where: str) -> str:
        """Why ``now`` is not this run, naming what differs (``""`` if nothing).

        ``where`` names what holds this identity (``store='sweep.zarr'``); the
        message suggests a new path or ``overwrite=True``. A store refuses a run
        with it unless the run grows the store
        (:func:`labeled_spaces.results.growth.find_growth`).

        >>> from labeled_spaces.results.identity import RunIdentity
        >>> RunIdentity({"kwargs": {"n": 1}}).refusal(RunIdentity({"kwargs": {"n": 2}}), "s")[:41]
        's was made with other model arguments: n:'
        """
        parts = []
        for keys, what in (((ANALYSIS_KEY,), OTHER_SETTINGS),
                           (SPACE_KEYS, ANOTHER_SPACE),
                           (ARGUMENT_KEYS, "was made with other model arguments"),
                           (OUTPUT_KEYS, "holds other outputs than this run makes (structure, "
                                         "dtype or labels)")):
            found = self.differences(now, keys)
            if len(found) > _SHOWN:  # each names a path and both values: the first tell
                found = [*found[:_SHOWN], f"and {len(found) - _SHOWN} more"]
            if found:
                parts.append(f"{what}: {'; '.join(found)}")
        rest = [k for k in set(self.inputs) | set(now.inputs)
                if k not in (ANALYSIS_KEY, *SPACE_KEYS, *ARGUMENT_KEYS, *OUTPUT_KEYS)]
        other = self.differences(now, sorted(rest))
        if other:
            parts.append(f"differs in {'; '.join(other)}")
        return (f"{where} {'; and it '.join(parts)}. It is left as it is: give a new path, "
                "or pass overwrite=True to replace it") if parts else ""

    def check_program(self, now: RunIdentity, where: str, cause: str = "") -> None:
        """Warn when ``now``'s traced program is another than this one's, or unknown.

        The inputs are compared by :meth:`refusal` (and, for a store grown
        by the prefix rule, by :mod:`labeled_spaces.results.growth`). ``cause``
        names a known reason the programs differ, said before the other ones.
        """
        if not now.program or not self.program:
            warn_user(
                f"{where} is resumed with a model that could not be traced (jit=False, or "
                "the store was made by one), so nothing checks that the model is the same; "
                "the blocks already stored are kept. Give a new path, or overwrite=True, to "
                "compute everything with this model")
        elif now.program != self.program:
            # a warning, not a refusal: another JAX version traces the same model differently
            cause = (f"{cause}; or " if cause else "") + (
                "the model's code or a constant it closes over changed, or the JAX version did")
            warn_user(
                f"{where} was made by a model that JAX traced differently from this run's "
                f"({cause}); resuming keeps the blocks the other model computed. Give a new "
                "path, or overwrite=True, to compute everything with this model")


def _differences(stored: Any, now: Any, where: str) -> list[str]:
    if _is_leaf(stored) or _is_leaf(now):
        return [] if same_values(stored, now) else [
            f"{where or 'value'}: {_show(stored)} -> {_show(now)}"]
    if isinstance(stored, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(stored) | set(now), key=str):
            found += _differences(stored.get(key), now.get(key), _join(where, str(key)))
        return found
    if isinstance(stored, list) and isinstance(now, list) and len(stored) == len(now):
        found = []
        for k, (a, b) in enumerate(zip(stored, now, strict=True)):
            label: int | str = k
            if isinstance(a, dict) and isinstance(b, dict) and "name" in a:
                label = a["name"] if a["name"] == b.get("name") else f"{a['name']}/{b.get('name')}"
            found += _differences(a, b, f"{where}[{label!r}]" if where else f"[{label!r}]")
        return found
    return [] if same_values(stored, now) else [
        f"{where or 'value'}: {_show(stored)} -> {_show(now)}"]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _is_leaf(value: Any) -> bool:
    """A described array or key, by its entries' types: paths (``"key"``) name dicts too."""
    return isinstance(value, dict) and (
        (isinstance(value.get("array"), str) and isinstance(value.get("shape"), list))
        or (isinstance(value.get("impl"), str) and isinstance(value.get("key"), list | str)))


def _show(value: Any, limit: int = 120) -> str:
    if value is None:
        return "(none)"
    if _is_leaf(value) and "array" in value:
        shape = ",".join(map(str, value.get("shape", [])))
        held = value.get("values", f"#{value.get('digest', '?')}")
        return f"{value['array']}[{shape}] {json.dumps(held) if 'values' in value else held}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return clipped(text, limit)


def run_identity(space: Space, outputs: Any) -> RunIdentity:
    """The identity of running a model over ``space`` into ``outputs``.

    ``outputs`` (:class:`~labeled_spaces.results.names.Outputs`) carries
    the model's extra arguments (``outputs.arguments``, described by
    :func:`describe_arguments`), the settings of the analysis's Program
    (``outputs.settings``, entry ``analysis``) and the traced program's
    fingerprint (``outputs.fingerprint``). The space's part is computed once
    per Space.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.results import Outputs
    >>> from labeled_spaces.results.identity import run_identity
    >>> space = Space({"k": GridAxis(0.0, 1.0, 3), "dt": 0.1}, mode="product")
    >>> outputs = Outputs.build(space, jax.tree.structure(0.0), [()], [np.float32])
    >>> a, b = run_identity(space, outputs), run_identity(space, outputs)
    >>> a.digest == b.digest, a.inputs["fixed"]
    (True, {'dt': 0.1})
    """
    described = _SPACES.get(space, "description", lambda: _describe_space(space))
    arguments = getattr(outputs, "arguments", None) or {"args": [], "kwargs": {}}
    settings = getattr(outputs, "settings", None)
    analysis = {ANALYSIS_KEY: summarise(dict(settings))} if settings else {}
    inputs = {**described, **arguments, **analysis, **_describe_outputs(outputs)}
    return RunIdentity(inputs, getattr(outputs, "fingerprint", "") or "")


def space_differences(attrs: Mapping[str, Any], space: Space) -> list[str]:
    """Where ``space`` differs from the space of the run identity recorded in ``attrs``.

    Empty when the attrs record no identity. ``open_results(path, state=...)``
    uses it: a state other than the run's would label the results with
    values they were not computed from.
    """
    recorded = RunIdentity.from_attrs(attrs)
    if recorded is None:
        return []
    now = RunIdentity(_SPACES.get(space, "description", lambda: _describe_space(space)))
    return recorded.differences(now, [k for k in SPACE_KEYS if k in recorded.inputs])

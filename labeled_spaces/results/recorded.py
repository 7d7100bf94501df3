"""What a Dataset or file records of how its results were made, and reading it back.

:func:`identity_attrs` writes the run identity
(:mod:`labeled_spaces.results.identity`) into a Dataset's attrs: the whole
identity (``labeled_spaces:identity``), the model's extra arguments for a
person to read (``labeled_spaces:arguments``) and, for the results of an
analysis, its name as a plain string (``labeled_spaces:analysis``, one of
:data:`labeled_spaces._schema.ANALYSES`). :func:`recorded_arguments`,
:func:`recorded_settings` and :func:`recorded_lines` read them back, as data:
a value of the wrong kind reads as nothing recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._schema import ANALYSES, ANALYSIS_ATTR, ARGUMENTS_ATTR, IDENTITY_ATTR
from ..space import Space
from .identity import ANALYSIS_KEY, ARGUMENT_KEYS, RunIdentity, run_identity

__all__ = ["identity_attrs", "recorded_arguments", "recorded_lines", "recorded_settings"]


def identity_attrs(space: Space, outputs: Any) -> dict[str, str]:
    """The attrs that say how results were made: the run identity and the model's arguments.

    ``labeled_spaces:arguments`` holds ``{"args": [...], "kwargs": {...}}``
    (see :func:`~labeled_spaces.results.identity.describe_arguments`) for a
    person to read; ``labeled_spaces:identity`` the whole
    :class:`~labeled_spaces.results.identity.RunIdentity`;
    ``labeled_spaces:analysis`` the name of the analysis whose Program made
    the outputs (its setting ``"analysis"``), only where it is one of
    :data:`~labeled_spaces._schema.ANALYSES`.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.results import Outputs
    >>> from labeled_spaces.results.recorded import identity_attrs
    >>> space = Space({"k": GridAxis(0.0, 1.0, 3)})
    >>> outputs = Outputs.build(space, jax.tree.structure(0.0), [()], [np.float32])
    >>> sorted(identity_attrs(space, outputs))
    ['labeled_spaces:arguments', 'labeled_spaces:identity']
    """
    identity = run_identity(space, outputs)
    arguments = {k: identity.inputs[k] for k in ARGUMENT_KEYS}
    attrs = {ARGUMENTS_ATTR: json.dumps(arguments), IDENTITY_ATTR: identity.to_json()}
    kind = (getattr(outputs, "settings", None) or {}).get("analysis")
    if isinstance(kind, str) and kind in ANALYSES:
        attrs[ANALYSIS_ATTR] = kind
    return attrs


def recorded_arguments(attrs: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The model's arguments and the program fingerprint that ``attrs`` record (None, "" if not).

    Examples
    --------
    >>> from labeled_spaces.results.recorded import recorded_arguments
    >>> recorded_arguments({"labeled_spaces:arguments": '{"args": [], "kwargs": {"n": 2}}'})
    ({'args': [], 'kwargs': {'n': 2}}, '')
    """
    identity = RunIdentity.from_attrs(attrs)
    program = identity.program if identity is not None else ""
    raw = attrs.get(ARGUMENTS_ATTR)
    try:
        held = json.loads(raw) if isinstance(raw, str) else None
    except (json.JSONDecodeError, RecursionError):
        held = None
    if not (isinstance(held, dict) and isinstance(held.get("args"), list)
            and isinstance(held.get("kwargs"), dict)):
        return None, program
    return {"args": held["args"], "kwargs": held["kwargs"]}, program


def recorded_settings(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings of the analysis that made the results, as the run identity records them.

    None where no analysis with settings made them (or nothing readable is
    recorded). Values are as JSON holds them: ``record_every=None`` reads
    back as None, a tuple as a list.

    Examples
    --------
    >>> from labeled_spaces.results.recorded import recorded_settings
    >>> recorded_settings({"labeled_spaces:identity":
    ...                    '{"inputs": {"analysis": {"analysis": "fit", "record_every": null}}}'})
    {'analysis': 'fit', 'record_every': None}
    >>> recorded_settings({}) is None
    True
    """
    identity = RunIdentity.from_attrs(attrs)
    held = None if identity is None else identity.inputs.get(ANALYSIS_KEY)
    if not isinstance(held, dict) or not all(isinstance(k, str) for k in held):
        return None
    return dict(held)


def recorded_lines(attrs: Mapping[str, Any]) -> list[str]:
    """How results were made, for ``labeled-spaces info``: arguments, analysis, identity.

    Examples
    --------
    >>> from labeled_spaces.results.recorded import recorded_lines
    >>> recorded_lines({"labeled_spaces:arguments": '{"args": [2], "kwargs": {"n": 20}}'})
    ['arguments: 2, n=20']
    """
    arguments, program = recorded_arguments(attrs)
    lines = []
    if arguments is not None:
        shown = [json.dumps(a) for a in arguments["args"]]
        shown += [f"{k}={json.dumps(v)}" for k, v in arguments["kwargs"].items()]
        lines.append("arguments: " + (", ".join(shown) if shown else "(none)"))
    settings = recorded_settings(attrs)
    if settings is not None:
        kind = settings.get("analysis")
        shown = [f"{k}={json.dumps(v)}" for k, v in settings.items() if k != "analysis"]
        lines.append(f"analysis: {kind if isinstance(kind, str) else '(unnamed)'}"
                     + (f" ({', '.join(shown)})" if shown else ""))
    identity = RunIdentity.from_attrs(attrs)
    if identity is not None:
        lines.append(f"identity: inputs {identity.digest}, program "
                     f"{program or '(not traced)'}")
    return lines

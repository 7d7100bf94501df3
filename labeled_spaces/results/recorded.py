"""What a Dataset or file records of how its results were made, and reading it back.

:func:`identity_attrs` writes the run identity
(:mod:`labeled_spaces.results.identity`) into a Dataset's attrs: the whole
identity (``labeled_spaces:identity``), the model's extra arguments for a
person to read (``labeled_spaces:arguments``) and, for the results of an
analysis, its name as a plain string (``labeled_spaces:analysis``, one of
:data:`labeled_spaces._schema.ANALYSES`). :func:`recorded` and
:func:`recorded_lines` read them back, as data: a value of the wrong kind
reads as nothing recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._schema import ANALYSES, ANALYSIS_ATTR, ARGUMENTS_ATTR, IDENTITY_ATTR
from ..space import Space
from .identity import ANALYSIS_KEY, ARGUMENT_KEYS, RunIdentity, run_identity

__all__ = ["Recorded", "identity_attrs", "recorded", "recorded_lines"]


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


class Recorded(NamedTuple):
    """How results were made, as their attrs record it (nothing recorded: None, "")."""

    #: the model's extra arguments, ``{"args": [...], "kwargs": {...}}``
    arguments: dict[str, Any] | None
    #: the fingerprint of the traced program
    program: str
    #: the settings of the analysis that made them (values as JSON holds them)
    settings: dict[str, Any] | None
    #: the digest of the run's inputs (None: no run identity recorded)
    digest: str | None = None


def recorded(attrs: Mapping[str, Any]) -> Recorded:
    """The model's arguments, the program's fingerprint and the analysis's settings in ``attrs``.

    The run identity is read once. A value of the wrong kind reads as
    nothing recorded; settings are as JSON holds them (``record_every=None``
    reads back as None, a tuple as a list).

    Examples
    --------
    >>> from labeled_spaces.results.recorded import recorded
    >>> recorded({"labeled_spaces:arguments": '{"args": [], "kwargs": {"n": 2}}'})
    Recorded(arguments={'args': [], 'kwargs': {'n': 2}}, program='', settings=None, digest=None)
    >>> recorded({"labeled_spaces:identity":
    ...           '{"inputs": {"analysis": {"analysis": "fit", "record_every": null}}}'}).settings
    {'analysis': 'fit', 'record_every': None}
    """
    identity = RunIdentity.from_attrs(attrs)
    program = identity.program if identity is not None else ""
    held = None if identity is None else identity.inputs.get(ANALYSIS_KEY)
    settings = dict(held) if isinstance(held, dict) and all(isinstance(k, str) for k in held) \
        else None
    raw = attrs.get(ARGUMENTS_ATTR)
    try:
        given = json.loads(raw) if isinstance(raw, str) else None
    except (json.JSONDecodeError, RecursionError):
        given = None
    arguments = {"args": given["args"], "kwargs": given["kwargs"]} if (
        isinstance(given, dict) and isinstance(given.get("args"), list)
        and isinstance(given.get("kwargs"), dict)) else None
    return Recorded(arguments, program, settings, None if identity is None else identity.digest)


def recorded_lines(attrs: Mapping[str, Any]) -> list[str]:
    """How results were made, for ``labeled-spaces info``: arguments, analysis, identity.

    Examples
    --------
    >>> from labeled_spaces.results.recorded import recorded_lines
    >>> recorded_lines({"labeled_spaces:arguments": '{"args": [2], "kwargs": {"n": 20}}'})
    ['arguments: 2, n=20']
    """
    arguments, program, settings, digest = recorded(attrs)
    lines = []
    if arguments is not None:
        shown = [json.dumps(a) for a in arguments["args"]]
        shown += [f"{k}={json.dumps(v)}" for k, v in arguments["kwargs"].items()]
        lines.append("arguments: " + (", ".join(shown) if shown else "(none)"))
    if settings is not None:
        kind = settings.get("analysis")
        shown = [f"{k}={json.dumps(v)}" for k, v in settings.items() if k != "analysis"]
        lines.append(f"analysis: {kind if isinstance(kind, str) else '(unnamed)'}"
                     + (f" ({', '.join(shown)})" if shown else ""))
    if digest is not None:
        lines.append(f"identity: inputs {digest}, program {program or '(not traced)'}")
    return lines

"""Real structural connectomes from the ``tvb-data`` package.

The demo's brain network is the 68-region Desikan–Killiany parcellation that
The Virtual Brain ships in its data package: ``tvb_data/connectivity/
connectivity_68.zip`` holds the tractography-derived ``weights``, the
``tract_lengths`` (mm), and ``centres`` (region name and position per line),
bzip2-compressed or as plain text. :func:`load_connectome` reads them as text
straight from the installed package; nothing from the archive is executed or
unpickled.

``tvb-data`` is an optional dependency (about 50 MB)::

    pip install "labeled_spaces[examples]"

Examples
--------
>>> from labeled_spaces.examples.connectome import load_connectome
>>> c = load_connectome()
>>> c.n_regions, c.weights.shape, c.tract_lengths.dtype
(68, (68, 68), dtype('float32'))
>>> c.labels[:3].tolist()
['r_lateralorbitofrontal', 'r_parsorbitalis', 'r_frontalpole']
>>> round(float(c.weights.sum(axis=1).mean()), 5)
1.0
"""

from __future__ import annotations

import bz2
import importlib.resources
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Connectome", "available_connectomes", "load_connectome"]

_PACKAGE = "tvb_data"
_FOLDER = "connectivity"
_INSTALL_HINT = 'pip install "labeled_spaces[examples]"'
# the archives are a few MB once decompressed; refuse anything far larger (a corrupt download)
_MAX_MEMBER_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class Connectome:
    """A structural brain network: region names, positions, weights and tract lengths.

    The arrays are read-only. Regions are in the order of the source files
    (for ``connectivity_68``: the 34 right-hemisphere regions, then the 34
    left ones).

    Attributes
    ----------
    name : str
        The archive it came from, e.g. ``"connectivity_68"``.
    weights : numpy.ndarray
        ``(n, n)`` float32, non-negative, zero diagonal, scaled so that the
        mean row sum (node strength) is 1; see :func:`load_connectome`.
    tract_lengths : numpy.ndarray
        ``(n, n)`` float32, in mm; zero on the diagonal.
    labels : numpy.ndarray
        ``(n,)`` region names (str).
    centres : numpy.ndarray
        ``(n, 3)`` float32 region positions, in mm, in the space of the source data.
    weight_scale : float
        The factor the raw weights (diagonal removed) were multiplied by.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.examples.connectome import Connectome
    >>> c = Connectome("pair", np.array([[0, 1], [1, 0]], np.float32),
    ...                np.array([[0, 30], [30, 0]], np.float32), np.array(["l_a", "r_a"]),
    ...                np.zeros((2, 3), np.float32))
    >>> c.n_regions, c.hemispheres.tolist()
    (2, ['left', 'right'])
    """

    name: str
    weights: np.ndarray
    tract_lengths: np.ndarray
    labels: np.ndarray
    centres: np.ndarray
    weight_scale: float = 1.0

    def __post_init__(self) -> None:
        n = len(self.labels)
        shapes = {"weights": (n, n), "tract_lengths": (n, n), "centres": (n, 3)}
        for field, shape in shapes.items():
            value = np.array(getattr(self, field), dtype=np.float32)
            if value.shape != shape:
                raise ValueError(
                    f"{field} must have shape {shape} for {n} labels, got {value.shape}"
                )
            value.setflags(write=False)
            object.__setattr__(self, field, value)
        labels = np.array([str(x) for x in self.labels])
        labels.setflags(write=False)
        object.__setattr__(self, "labels", labels)

    @property
    def n_regions(self) -> int:
        """Number of regions ``n``."""
        return len(self.labels)

    @property
    def hemispheres(self) -> np.ndarray:
        """``"left"``, ``"right"`` or ``""`` per region, from its label.

        TVB's labels start with ``l_``/``r_`` (``connectivity_68``) or
        ``l``/``r`` and an upper-case abbreviation (``connectivity_76``), or
        end with ``_L``/``_R`` (``connectivity_96``).
        """
        def side(label: str) -> str:
            if label[:2] in ("l_", "r_") or (label[:1] in ("l", "r") and label[1:2].isupper()):
                return "left" if label[0] == "l" else "right"
            if label[-2:] in ("_L", "_R"):
                return "left" if label[-1] == "L" else "right"
            return ""

        return np.array([side(x) for x in self.labels])


def _connectivity_folder() -> Any:
    try:
        return importlib.resources.files(_PACKAGE) / _FOLDER
    except ImportError as err:  # ModuleNotFoundError, or a module blocked in sys.modules
        raise ImportError(
            "the connectomes come from the optional package tvb-data; install it with "
            f"`{_INSTALL_HINT}` (or `pip install tvb-data`)"
        ) from err


def available_connectomes() -> list[str]:
    """Names of the connectomes that the installed ``tvb-data`` ships.

    Returns
    -------
    list of str
        Sorted archive names without ``.zip``, e.g. ``"connectivity_68"``.

    Raises
    ------
    ImportError
        If ``tvb-data`` is not installed.

    Examples
    --------
    >>> from labeled_spaces.examples.connectome import available_connectomes
    >>> "connectivity_68" in available_connectomes()
    True
    """
    folder = _connectivity_folder()
    return sorted(p.name[: -len(".zip")] for p in folder.iterdir() if p.name.endswith(".zip"))


def _read_member(archive: zipfile.ZipFile, stem: str) -> str | None:
    """The text of ``stem.txt`` or ``stem.txt.bz2`` (in any folder of the archive), or None."""
    for info in archive.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if base not in (f"{stem}.txt", f"{stem}.txt.bz2"):
            continue
        if info.file_size > _MAX_MEMBER_BYTES:
            raise ValueError(f"{info.filename} is implausibly large ({info.file_size} bytes)")
        data = archive.read(info)
        if base.endswith(".bz2"):
            decompressor = bz2.BZ2Decompressor()
            data = decompressor.decompress(data, max_length=_MAX_MEMBER_BYTES)
            if not decompressor.eof:
                raise ValueError(f"{info.filename} is truncated or implausibly large")
        return data.decode("utf-8", errors="replace")
    return None


def _floats(tokens: list[str]) -> list[float] | None:
    try:
        return [float(x) for x in tokens]
    except ValueError:
        return None


def _parse_matrix(text: str, what: str) -> np.ndarray:
    """A square matrix from whitespace- or comma-separated rows; non-numeric lines are headers."""
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].replace(",", " ").strip()
        values = _floats(line.split()) if line else None
        if values:  # skips blank, comment and header lines
            rows.append(values)
    if not rows or any(len(r) != len(rows) for r in rows):
        shape = f"{len(rows)} rows of lengths {sorted({len(r) for r in rows})}"
        raise ValueError(f"{what} is not a square numeric matrix ({shape})")
    return np.array(rows, dtype=np.float64)


def _parse_centres(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and ``(n, 3)`` positions from lines ``label x y z [anything]``."""
    labels, positions = [], []
    for line in text.splitlines():
        tokens = line.split("#", 1)[0].split()
        if len(tokens) < 4:
            continue
        xyz = _floats(tokens[1:4])
        if xyz is None or _floats(tokens[:1]) is not None:
            continue  # a header line, or positions without a label
        labels.append(tokens[0])
        positions.append(xyz)
    return np.array(labels), np.array(positions, dtype=np.float64).reshape(-1, 3)


def load_connectome(name: str = "connectivity_68") -> Connectome:
    """Load a structural connectome shipped by ``tvb-data``.

    The weights are prepared for network models: the diagonal (a region's
    connections within itself) is set to zero, because it adds nothing to
    a phase-difference coupling but would inflate the node strengths, and the
    matrix is divided by its mean row sum, so that the average node strength
    is 1. Tractography weights are in arbitrary units (streamline counts or
    densities, depending on the pipeline); after this scaling a global
    coupling ``K`` means the coupling an average region receives, comparable
    between connectomes and with
    :func:`labeled_spaces.examples.make_connectome`. Tract lengths are kept in
    mm, with a zero diagonal; they are zero wherever there is no tract.

    Parameters
    ----------
    name : str, default "connectivity_68"
        An archive of ``tvb_data/connectivity`` without ``.zip``; see
        :func:`available_connectomes`. ``connectivity_68`` is the
        Desikan–Killiany parcellation (34 cortical regions per hemisphere).

    Returns
    -------
    Connectome

    Raises
    ------
    ImportError
        If ``tvb-data`` is not installed (``pip install "labeled_spaces[examples]"``).
    ValueError
        For an unknown ``name``, or an archive without weights, tract lengths
        and labelled centres of matching sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.examples.connectome import load_connectome
    >>> c = load_connectome("connectivity_68")
    >>> bool(np.array_equal(c.weights, c.weights.T)), float(np.trace(c.weights))
    (True, 0.0)
    >>> round(float(c.tract_lengths[c.weights > 0].max()), 1)  # longest tract, mm
    252.9
    >>> load_connectome("dk68")
    Traceback (most recent call last):
    ...
    ValueError: name must be one of ['connectivity_192', ...], got 'dk68'
    """
    folder = _connectivity_folder()
    available = available_connectomes()
    if not isinstance(name, str) or name not in available:
        raise ValueError(f"name must be one of {available}, got {name!r}")
    with (folder / f"{name}.zip").open("rb") as handle, zipfile.ZipFile(handle) as archive:
        texts = {stem: _read_member(archive, stem)
                 for stem in ("weights", "tract_lengths", "centres")}
    missing = [f"{stem}.txt" for stem, text in texts.items() if text is None]
    if missing:
        raise ValueError(f"connectome {name!r} lacks {', '.join(missing)}")
    found = {stem: text for stem, text in texts.items() if text is not None}
    weights = _parse_matrix(found["weights"], f"{name}: weights")
    lengths = _parse_matrix(found["tract_lengths"], f"{name}: tract_lengths")
    labels, centres = _parse_centres(found["centres"])
    n = len(weights)
    if lengths.shape != (n, n) or len(labels) != n:
        raise ValueError(
            f"connectome {name!r} is inconsistent: weights {weights.shape}, tract_lengths "
            f"{lengths.shape}, {len(labels)} labelled centres"
        )
    if not (np.isfinite(weights).all() and (weights >= 0).all()):
        raise ValueError(f"connectome {name!r} has negative or non-finite weights")

    np.fill_diagonal(weights, 0.0)
    np.fill_diagonal(lengths, 0.0)
    strength = weights.sum(axis=1).mean()
    scale = 1.0 / strength if strength > 0 else 1.0
    return Connectome(name, weights * scale, lengths, labels, centres, weight_scale=float(scale))

"""The Results of a multi-start fit: :class:`FitResults`, with :meth:`~FitResults.best`.

:func:`labeled_spaces.fit` returns them, and ``open_results`` gives them back
for a store or file that a fit made (its attrs name the analysis ``"fit"``;
the fitted axes are the ``wrt`` its run identity records). They live with
the Results rather than with the analysis so that reading a file never
needs the analyses: the results layer knows its own classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._schema import ANALYSIS_ATTR
from .results import Results

__all__ = ["FitResults"]


class FitResults(Results):
    """Results of :func:`~labeled_spaces.fit`, with :meth:`best`.

    Attributes
    ----------
    fitted : tuple of str
        The names of the fitted axes (variables ``{name}_fit``).

    Examples
    --------
    >>> import optax
    >>> from labeled_spaces import GridAxis, Space, fit
    >>> space = Space({"x": GridAxis(-1.0, 1.0, 3)}, mode="product")
    >>> results = fit(lambda s: s["x"] ** 2, space, steps=5, optimizer=optax.sgd(0.1),
    ...               progress=False)
    >>> type(results).__name__, results.fitted
    ('FitResults', ('x',))
    """

    fitted: tuple[str, ...] = ()

    @classmethod
    def of(cls, results: Results, fitted: Sequence[str]) -> FitResults:
        """``results`` (of a fit lane) as FitResults, sharing their arrays.

        Examples
        --------
        >>> import optax
        >>> from labeled_spaces import GridAxis, Space, fit
        >>> from labeled_spaces.results.fitted import FitResults
        >>> space = Space({"x": GridAxis(-1.0, 1.0, 3)}, mode="product")
        >>> results = fit(lambda s: s["x"] ** 2, space, steps=5, progress=False)
        >>> FitResults.of(results, ["x"]).fitted
        ('x',)
        """
        out = cls.from_outputs(results.space, results.outputs, results.arrays, results.done,
                               added=results.added)
        assert isinstance(out, FitResults)
        out.fitted = tuple(fitted)
        return out

    @classmethod
    def reopened(cls, results: Results) -> FitResults:
        """Results read from a file or store that a fit made, as FitResults.

        The fitted axes are the ``wrt`` setting of the run identity the file
        records (``results.outputs.settings``); each must be an axis of the
        rebuilt space with its variable ``{name}_fit``, and ``loss`` an output.

        Raises
        ------
        ValueError
            The recorded settings do not describe a fit of these results.

        Examples
        --------
        >>> import optax, pathlib, tempfile
        >>> from labeled_spaces import GridAxis, Space, fit, open_results
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "fit.nc"
        >>> space = Space({"x": GridAxis(-1.0, 1.0, 3)}, mode="product")
        >>> fit(lambda s: s["x"] ** 2, space, steps=5, progress=False).to_netcdf(path)
        >>> open_results(path).fitted  # open_results calls reopened for a fit's file
        ('x',)
        """
        settings = results.outputs.settings or {}
        wrt = settings.get("wrt")
        names = results.outputs.names
        if not (isinstance(wrt, list) and wrt and all(
                isinstance(n, str) and n in results.space.names and f"{n}_fit" in names
                for n in wrt) and "loss" in names):
            raise ValueError(
                f"attrs entry {ANALYSIS_ATTR} says a fit made these results, but the run "
                f"identity they record names the fitted axes wrt={wrt!r}, which are not axes "
                f"of the space {list(results.space.names)} with variables '{{axis}}_fit' and "
                f"'loss' among the outputs {list(names)}")
        return cls.of(results, wrt)

    def best(self) -> Any:
        """The fitted state of the start with the lowest final loss.

        The state pytree (fixed leaves included) with every fitted axis
        replaced by its fitted value (a JAX array) and every other axis by
        that start's value. Starts whose loss is NaN (also those a store has
        not finished) are skipped; of starts with equal losses, the first in
        flat order is taken.

        Raises
        ------
        ValueError
            Every final loss is NaN.

        Examples
        --------
        >>> import optax
        >>> from labeled_spaces import GridAxis, Space, fit
        >>> space = Space({"x": GridAxis(-2.0, 2.0, 3), "c": 1.0}, mode="product")
        >>> results = fit(lambda s: (s["x"] ** 2 - s["c"]) ** 2, space, steps=200,
        ...               optimizer=optax.sgd(0.05), progress=False)
        >>> best = results.best()
        >>> round(abs(float(best["x"])), 3), best["c"]
        (1.0, 1.0)
        """
        names = self.outputs.names
        final = np.asarray(self.arrays[list(names).index("loss")]).reshape(-1)
        if np.all(np.isnan(final)):
            if self.done is not None and not self.complete:  # unfinished starts read as NaN
                computed = int(np.count_nonzero(self.done))
                raise ValueError(f"no best fit: the fit is unfinished ({computed} of "
                                 f"{len(final)} starts computed) and the final loss of every "
                                 "computed start is NaN; run it again to finish it")
            raise ValueError("every start's final loss is NaN: no best fit")
        i = int(np.nanargmin(final))
        point = self[i]
        layout = self.space.layout
        leaves = list(layout.treedef.flatten_up_to(self.space[i]))
        for name in self.fitted:
            leaves[layout.axis_positions[self.space.names.index(name)]] = jnp.asarray(
                point[f"{name}_fit"])
        return layout.treedef.unflatten(leaves)

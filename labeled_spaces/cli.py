"""The ``labeled-spaces`` command: ``demo`` and ``info``, a thin layer over the package.

::

    labeled-spaces demo [--out DIR] [--small] [--quiet]
    labeled-spaces info PATH

``demo`` runs the delayed Kuramoto model on the 68-region Desikan-Killiany connectome over
global coupling x noise (:func:`labeled_spaces.examples.demo.run_demo`): results stream to
``DIR/demo.zarr`` (running again resumes, and a finished store is not computed again), are
exported to ``DIR/demo.nc`` and drawn in ``DIR/demo.png``, and a short summary is printed.
``DIR`` defaults to ``labeled_spaces_demo`` (``labeled_spaces_demo_small`` with ``--small``,
so that the two sizes never meet in one store, which would refuse the other).
It needs the optional dependencies: ``pip install "labeled_spaces[examples]"``.

``info`` prints what a netCDF file or zarr store of results holds: dims and
sizes, coordinate ranges with units, variables, how complete a store is,
and how it was made (the space's axes, mode, key and the package versions).
Any file that xarray opens is summarised; for one that is not results, or
whose labels cannot be traced back to its run, the summary says why. A path
that is not only data (a pipe or device, HDF5 external storage, attrs that
claim more than the file's size warrants) is refused with one line.

Exit codes: 0 success; 1 the command could not finish (the model failed, an
optional dependency is missing); 2 bad arguments, or a path that cannot be
used (missing, not results, corrupt, a store made for another sweep), or any
other failure the package reports on purpose (see :func:`expected_failure`),
with one line on stderr; 130 interrupted (Ctrl-C; ``demo`` resumes from its
store). Anything else is a bug and shows its traceback.

Progress messages go through ``logging.getLogger("labeled_spaces")`` to
stderr; the summary is the command's output, on stdout. JAX and the package
are imported inside each subcommand, after the arguments are read, so that
environment variables such as ``XLA_FLAGS`` set before the command take effect.

Examples
--------
>>> from labeled_spaces.cli import build_parser
>>> args = build_parser().parse_args(["demo", "--small"])
>>> args.command, args.small, args.out
('demo', True, None)
>>> main(["info"])  # a missing argument: one line on stderr, exit code 2
2
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["DEFAULT_OUT", "UsageError", "build_parser", "describe", "expected_failure", "main"]

from ._checks import expected_failure  # noqa: E402
from ._parser import Parser, UsageError  # noqa: E402

PROG = "labeled-spaces"
#: the demo's output folder, and that of ``demo --small``
DEFAULT_OUT = "labeled_spaces_demo"
DEFAULT_OUT_SMALL = "labeled_spaces_demo_small"

logger = logging.getLogger("labeled_spaces")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("labeled_spaces")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``labeled-spaces`` (errors raise :class:`UsageError`).

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> from labeled_spaces.cli import UsageError, build_parser
    >>> build_parser().parse_args(["info", "runs/demo.nc"]).path
    'runs/demo.nc'
    >>> try:
    ...     build_parser().parse_args(["demo", "--smal"])
    ... except UsageError as err:
    ...     print(err)  # doctest: +NORMALIZE_WHITESPACE
    unknown option --smal for labeled-spaces demo (its options: -h/--help, --out DIR, --small,
    -q/--quiet); did you mean --small? (see labeled-spaces demo --help)
    """
    parser = Parser(prog=PROG, description="Sweep JAX models over parameter spaces: the demo "
                     "sweep, and a look into saved results.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,info}")

    demo = commands.add_parser(
        "demo", help="the brain-network demo sweep (coupling x noise on a real connectome)",
        description="Run the delayed Kuramoto model on the 68-region Desikan-Killiany "
                    "connectome over global coupling x noise; stream it to DIR/demo.zarr "
                    "(a rerun resumes), export DIR/demo.nc, draw DIR/demo.png and print a "
                    "summary.")
    demo.add_argument("--out", metavar="DIR", default=None,
                      help=f"output folder, created if missing (default: {DEFAULT_OUT}, or "
                           f"{DEFAULT_OUT_SMALL} with --small)")
    demo.add_argument("--small", action="store_true",
                      help="the quick variant: 21 x 6 combinations of 2 s (default: 51 x 11 "
                           "of 3 s)")
    demo.add_argument("-q", "--quiet", action="store_true",
                      help="no progress bar and no progress messages, only the summary")

    info = commands.add_parser(
        "info", help="summarise a netCDF file or zarr store of results",
        description="Dims, coordinate ranges, variables, completeness and how the results "
                    "were made (axes, mode, key, versions, the model's extra arguments and "
                    "the run identity).")
    info.add_argument("path", metavar="PATH", help="a .nc file or .zarr store of results")
    parser.commands = {"demo": demo, "info": info}
    return parser


@contextlib.contextmanager
def _progress_messages(quiet: bool) -> Iterator[None]:
    """The package's INFO messages on stderr for the command's duration, then as before.

    Only the ``labeled_spaces`` logger is configured, and only while the
    command runs, so ``main`` can be called in-process (tests, notebooks)
    without leaving handlers behind. Records still propagate to the root
    logger (pytest's ``caplog`` sees them).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _run_demo(args: argparse.Namespace) -> int:
    from .examples.demo import run_demo
    from .execution import ModelError

    out = args.out or (DEFAULT_OUT_SMALL if args.small else DEFAULT_OUT)
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out must be a folder, got the file {out!r}")
    try:
        run = run_demo(out, small=args.small, progress=not args.quiet)
    except ImportError as err:  # tvb-data or matplotlib: the optional dependencies
        print(f"{PROG} demo: {_one_line(err)}", file=sys.stderr)
        return 1
    except ModelError as err:
        print(f"{PROG} demo: the model failed: {_one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:
        raise UsageError(f"cannot write the demo into --out {out!r}: {_one_line(err)}") from None
    except ValueError as err:  # a store that holds another sweep, or one that is damaged
        raise UsageError(f"--out {out!r}: {_one_line(err)}") from None
    print(run.summary())
    return 0


def _blocks_done(path: Path) -> tuple[int, int, int, bool] | None:
    """``(finished, all, missing, mask_lost)`` blocks of a store (None: no run streamed it).

    ``missing`` counts blocks marked done whose chunks are gone (a partial
    copy); they are not finished. ``mask_lost``: the store's done mask is
    gone, so no block is known to be finished. A zarr copy of results
    (``ds.to_zarr(path)``) has no mask: it is complete.
    """
    from .results.store import store_state

    state = store_state(path)
    if state is None:
        return None
    return int(state.done.sum()), int(state.done.size), state.missing, state.mask_lost


def _unreadable(target: Path, err: BaseException) -> str:
    # netCDF4, h5py, zarr and json each raise their own exception types for a damaged or
    # foreign file; to the user they all mean "this path cannot be read"
    message = _one_line(err)
    return message if str(target) in message else f"cannot read {str(target)!r}: {message}"


def describe(path: str | Path) -> str:
    """What a netCDF file or zarr store of results holds, as ``labeled-spaces info`` prints it.

    Parameters
    ----------
    path : str or path-like
        A netCDF file written by ``Results.to_netcdf``, or a store written
        by an executor's ``store=``.

    Returns
    -------
    str
        Dims and sizes; coordinates with their ranges and units; variables
        with dims, dtype and units; completeness (blocks of a store done,
        combinations computed, blocks marked done whose chunks are missing);
        and how it was made: the space (its axes and their specs, mode), the
        key, the package versions, the model's extra arguments and the run
        identity (digest of the inputs, fingerprint of the traced program).

    Raises
    ------
    UsageError
        If ``path`` is missing, cannot be read, or is not only data (a pipe,
        a device, data kept in other files); the message is one line. A
        file that is not results is summarised, saying so.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from labeled_spaces import GridAxis, ParallelExecution, Space
    >>> from labeled_spaces.cli import describe
    >>> space = Space({"k": GridAxis(0.0, 1.0, 3, attrs={"units": "1/s"})}, mode="product")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "k.nc"
    >>> ParallelExecution(lambda s: 2 * s["k"], space, progress=False).run().to_netcdf(path)
    >>> print(describe(path))  # doctest: +ELLIPSIS
    /.../k.nc: labeled_spaces results, netCDF file
    dims: k: 3
    coordinates:
      k  (k)  float64  0 .. 1 1/s (3 values)
    variables:
      result  (k)  float32
    complete: 3 of 3 combinations
    made with:
      <labeled_spaces.Space> N=3, mode='product', axes=1
      Dimensions:  (k: 3)
      Axes:
          k  (k)  GridAxis(low=0.0, high=1.0, n=3, attrs={'units': '1/s'})
      key: [0, 0] (threefry2x32)
      versions: labeled_spaces ..., jax ...
      arguments: (none)
      identity: inputs ..., program ...
    """
    import warnings

    from ._format import format_count
    from ._schema import KEY_ATTR, KEY_IMPL_ATTR, VERSIONS_ATTR, read_entry
    from .results import open_results
    from .results.file_safety import open_dataset, reading
    from .results.recorded import recorded_lines
    from .results.summary import dataset_lines

    target = Path(path)
    kind = "zarr store" if target.is_dir() else "netCDF file"
    with warnings.catch_warnings():
        # readers warn about what they read (zarr about fixed-length strings); the
        # summary says what matters, so their warnings would only clutter it
        warnings.simplefilter("ignore")
        try:
            with reading(target) as checked:  # a file that is not only data: refused here
                plain = open_dataset(checked)
        except Exception as err:
            raise UsageError(_unreadable(target, err)) from None
        try:
            results = open_results(target)
            ds = results.to_xarray()
            blocks = _blocks_done(target) if target.is_dir() else None
        except Exception as err:  # noqa: BLE001 - any file xarray opens is summarised
            # not results, or results that cannot be traced back to their run: say why
            with reading(target):
                lines = [f"{target}: {kind}, not labeled_spaces results", *dataset_lines(plain)]
            return _joined([*lines, f"not traced back to a run: {_one_line(err)}"])

    added = () if results.added is None else set(map(str, results.added.data_vars))
    lines = [f"{target}: labeled_spaces results, {kind}",
             *dataset_lines(ds, skip={"computed"}, added=added)]
    computed = len(results) if results.done is None else int(results.done.sum())
    state = "complete" if results.complete else "partial"
    combinations = f"{computed:,} of {format_count(len(results), 'combination')}"
    if blocks is not None:
        lines.append(f"{state}: {blocks[0]:,} of {format_count(blocks[1], 'block')} done "
                     f"({combinations})")
        if blocks[2]:
            lost = "has lost its" if blocks[2] == 1 else "have lost their"
            lines.append(f"missing: {format_count(blocks[2], 'block')} marked done {lost} "
                         "chunks (a partial copy?); running again computes them")
        if blocks[3]:
            lines.append("missing: the done mask (labeled_spaces/done) is gone, so no block "
                         "is known to be finished; run again with overwrite=True")
    else:
        lines.append(f"{state}: {combinations}")

    attrs = ds.attrs
    lines.append("made with:")
    lines += [f"  {line}" for line in repr(results.space).splitlines()]
    impl = attrs.get(KEY_IMPL_ATTR, "threefry2x32")
    lines.append(f"  key: {attrs.get(KEY_ATTR, '?')} ({impl})")
    try:
        versions = read_entry(attrs, VERSIONS_ATTR, {})
    except ValueError:
        versions = {}
    if isinstance(versions, dict) and versions:
        lines.append("  versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines += [f"  {line}" for line in recorded_lines(attrs)]
    refinement = getattr(results, "refinement", None)  # refine's: what a rerun must match
    if refinement is not None:
        box = refinement.box
        bounds = ", ".join(f"{name} {low:g} .. {high:g}{' (log)' if log else ''}"
                           for name, low, high, log in zip(box.names, box.low, box.high,
                                                           box.log, strict=True))
        lines.append(f"  refine: n={refinement.n}, batch={refinement.batch}, first round "
                     f"{refinement.grid} points, output={refinement.output!r}; {bounds}")
    return _joined(lines)


def _joined(lines: list[str]) -> str:
    """The lines of ``info``, a file's names and values shown as text, never as terminal codes.

    A variable named ``"a\\nB: complete"`` would otherwise print a line of its own,
    and one holding ``"\\x1b[31m"`` would colour the terminal.
    """
    from ._format import printable

    return "\n".join(printable(line) for line in lines)


def _run_info(args: argparse.Namespace) -> int:
    print(describe(args.path))
    return 0


def _quiet_stdout() -> None:
    """Point stdout at the null device, so the flush at exit does not fail on a closed pipe."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``labeled-spaces`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name.

    Returns
    -------
    int
        0 on success, 1 if the command could not finish, 2 for bad arguments
        or an unusable path (one line on stderr), 130 when interrupted.

    Examples
    --------
    >>> from labeled_spaces.cli import main
    >>> main(["info", "no/such/results.nc"])
    2
    """
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help and --version print, then exit 0
        return done.code if isinstance(done.code, int) else 0
    command = {"demo": _run_demo, "info": _run_info}[args.command]
    with _progress_messages(getattr(args, "quiet", False)):
        try:
            return command(args)
        except UsageError as err:
            print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `| head` read what it wanted: not an error
            _quiet_stdout()
            return 0
        except (OSError, ValueError, TypeError) as err:
            if not expected_failure(err):
                raise  # a bug: its traceback is what helps
            print(f"{PROG} {args.command}: error: {_one_line(err)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            again = " (run it again to resume from the store)" if args.command == "demo" else ""
            print(f"{PROG} {args.command}: interrupted{again}", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())

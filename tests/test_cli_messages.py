"""What ``labeled-spaces`` says: unknown options and commands, and the extents ``info`` shows."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from labeled_spaces.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _coordinate_lines(text: str) -> dict[str, str]:
    lines = text.splitlines()
    rows = lines[lines.index("coordinates:") + 1: lines.index("variables:")]
    return {row.split()[0]: " ".join(row.split()[2:]) for row in rows}


def test_info_shows_one_value_alone_and_dates_as_dates(tmp_path: Path) -> None:
    ds = xr.Dataset(
        {"y": (("t", "s", "e", "d"), np.zeros((1, 2, 0, 2)))},
        coords={"t": ("t", [0.5], {"units": "s"}), "s": ["a", "b"], "e": np.array([], float),
                "d": pd.date_range("2020-01-01", periods=2), "scalar": 3.0,
                "day": np.datetime64("2021-05-01", "ns"), "nan": ("s", [np.nan, np.nan])})
    ds.to_netcdf(tmp_path / "plain.nc")
    code, out, err = run("info", str(tmp_path / "plain.nc"))
    assert code == 0, err
    shown = _coordinate_lines(out)
    assert shown["t"] == "float64 0.5 s (1 value)"  # was "0.5 .. 0.5 s"
    assert shown["scalar"] == "float64 3 (1 value)"  # was "3 .. 3"
    assert shown["d"] == "datetime64[ns] 2020-01-01 .. 2020-01-02 (2 values)"  # not nanoseconds
    assert shown["day"] == "datetime64[ns] 2021-05-01 (1 value)"
    assert shown["s"] == "<U1 'a' .. 'b' (2 values)"
    assert shown["e"] == "float64 empty (0 values)"
    assert shown["nan"] == "float64 all NaN (2 values)"


DEMO_OPTIONS = "(its options: -h/--help, --out DIR, --small, -q/--quiet)"


@pytest.mark.parametrize(("argv", "expected"), [
    # no option is close to --bogus: none is suggested (it suggested --out)
    (["demo", "--bogus"], f"unknown option --bogus for labeled-spaces demo {DEMO_OPTIONS} "
                          "(see labeled-spaces demo --help)"),
    (["demo", "--ou", "x"], f"unknown option --ou for labeled-spaces demo {DEMO_OPTIONS}; "
                            "did you mean --out? (see labeled-spaces demo --help)"),
    (["demo", "--out=x", "-x"], f"unknown option -x for labeled-spaces demo {DEMO_OPTIONS} "
                                "(see labeled-spaces demo --help)"),
    # an unknown option comes first, not a missing PATH (it said "required: PATH")
    (["info", "--bogus"], "unknown option --bogus for labeled-spaces info (its options: "
                          "-h/--help) (see labeled-spaces info --help)"),
    (["info", "--hel"], "unknown option --hel for labeled-spaces info (its options: "
                        "-h/--help); did you mean --help? (see labeled-spaces info --help)"),
    (["--bogus"], "unknown option --bogus for labeled-spaces (its options: -h/--help, "
                  "--version) (see labeled-spaces --help)"),
    (["dmeo"], "unknown command 'dmeo' (the commands: demo, info); did you mean demo? "
               "(see labeled-spaces --help)"),
    (["bogus"], "unknown command 'bogus' (the commands: demo, info) (see labeled-spaces --help)"),
    ([], "a command is needed (the commands: demo, info) (see labeled-spaces --help)"),
])
def test_an_unknown_option_or_command_is_named_with_the_real_ones(
        argv: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # were an argument taken, the demo would write here
    code, out, err = run(*argv)
    assert (code, out, err.strip()) == (2, "", f"labeled-spaces: error: {expected}")


def test_known_options_still_parse() -> None:
    from labeled_spaces.cli import build_parser

    args = build_parser().parse_args(["demo", "-q", "--out", "runs", "--small"])
    assert (args.quiet, args.out, args.small) == (True, "runs", True)
    assert build_parser().parse_args(["demo", "--out=-x"]).out == "-x"
    assert build_parser().parse_args(["info", "--", "-odd.nc"]).path == "-odd.nc"


def test_info_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # `labeled-spaces info X | head -1`: the reader goes away; that is not an error
    import os
    import subprocess
    import sys

    path = tmp_path / "small.nc"
    xr.Dataset({"v": ("k", np.arange(3.0))}, coords={"k": [0.1, 0.2, 0.3]}).to_netcdf(path)
    read, write = os.pipe()
    os.close(read)  # every write to the pipe fails with EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "labeled_spaces.cli", "info", str(path)],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
                              check=False)
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_info_shows_names_from_a_file_as_text_not_terminal_codes(tmp_path: Path) -> None:
    # a file is data: its names cannot colour the terminal or print lines of their own
    path = tmp_path / "names.zarr"
    xr.Dataset({"\x1b[31mred\x1b[0m": ("k", np.arange(2.0)),
                "line1\nFAKE: complete": ("k", np.arange(2.0))},
               coords={"k": [0, 1]}).to_zarr(path, consolidated=False)
    code, out, err = run("info", str(path))
    assert code == 0, err
    assert "\x1b" not in out and "\\x1b[31mred" in out
    assert not any(line.startswith("FAKE") for line in out.splitlines())
    assert "line1\\nFAKE: complete" in out

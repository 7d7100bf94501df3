"""The seed document's whole walk-through runs on labeled_spaces and prints what TVB-Optim prints.

``tests/seed_walkthrough.py`` is the code of every ```{python} block of the seed
document (shared/seed/axes_and_spaces.md), re-indented by hand, with its import lines
switched to labeled_spaces; each such line keeps the seed's own import in a
``# seed:`` comment, from which the TVB-Optim version is generated here. Both run in
one subprocess (one JAX start, and the second run reuses the first one's compiled
primitives), each with its stdout captured; stderr (tqdm bars, our warnings) is not
compared.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "seed_walkthrough.py"
SEED = Path(__file__).resolve().parents[1].parent / "shared" / "seed" / "axes_and_spaces.md"

IMPORT = re.compile(
    r"^(\s*)from labeled_spaces import .*#\s*seed:\s*(from tvboptim\.\S+ import .*)$")

# runs each script given on the command line as __main__ and writes its stdout to
# <script>.out, and the number of Python warnings it raised to <script>.warnings
DRIVER = """
import contextlib, io, runpy, sys, warnings
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
for path in sys.argv[1:]:
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        runpy.run_path(path, run_name="__main__")
    plt.close("all")
    with open(path + ".out", "w") as f:
        f.write(out.getvalue())
    with open(path + ".warnings", "w") as f:
        f.write("\\n".join(f"{w.category.__name__}: {w.message}" for w in caught
                           if not issubclass(w.category, DeprecationWarning)))
"""

# the timings of the "Performance comparison" block differ from run to run
TIMING = re.compile(r"seconds|speedup|faster", re.IGNORECASE)


def tvboptim_version(source: str) -> str:
    """The script with its labeled_spaces imports switched back to the seed's."""
    lines = []
    for line in source.splitlines():
        m = IMPORT.match(line)
        lines.append(m.group(1) + m.group(2) if m else line)
    return "\n".join(lines) + "\n"


def code_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_script_imports_only_from_labeled_spaces():
    source = SCRIPT.read_text()
    assert "tvboptim" not in "\n".join(
        line.split("#")[0] for line in source.splitlines())  # only in the comments
    switched = [line for line in source.splitlines() if IMPORT.match(line)]
    assert len(switched) == 4
    compile(source, str(SCRIPT), "exec")
    compile(tvboptim_version(source), "tvboptim version", "exec")


@pytest.mark.skipif(not SEED.exists(), reason="shared/seed is not beside the repository")
def test_script_is_the_seed_code():
    """Apart from indentation and the block markers, the script is the seed's code."""
    blocks = re.findall(r"```\{python\}\n(.*?)```", SEED.read_text(), re.S)
    assert len(blocks) == 31
    body = tvboptim_version(SCRIPT.read_text()).split("# %% block 1\n", 1)[1]
    ours = [line for line in code_lines(body) if not line.startswith("# %% block")]
    assert ours == code_lines("\n".join(blocks))


def test_walkthrough_prints_what_tvboptim_prints(tmp_path):
    ours = tmp_path / "ours.py"
    theirs = tmp_path / "tvboptim_version.py"
    ours.write_text(SCRIPT.read_text())
    theirs.write_text(tvboptim_version(SCRIPT.read_text()))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = dict(
        os.environ,
        MPLBACKEND="Agg",
        JAX_PLATFORMS="cpu",
        # both versions run under the same flags; unoptimised XLA code compiles ~1.5x
        # faster, and this walk-through compiles ~120 small programs
        XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    )
    env.pop("XLA_PYTHON_CLIENT_PREALLOCATE", None)
    proc = subprocess.run([sys.executable, str(driver), str(ours), str(theirs)], env=env,
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-5000:]

    our_lines = (tmp_path / "ours.py.out").read_text().splitlines()
    their_lines = (tmp_path / "tvboptim_version.py.out").read_text().splitlines()
    # TVB-Optim prints its warnings to stdout; we warn with warnings.warn instead
    their_warnings = [line for line in their_lines if line.startswith("WARNING")]
    their_lines = [line for line in their_lines if not line.startswith("WARNING")]
    assert len(their_warnings) == 2  # the two zip spaces with unequal axes
    assert not any(line.startswith("WARNING") for line in our_lines)

    def comparable(lines):
        start = lines.index("Performance comparison on 25 parameter combinations:")
        return lines[:start] + [x for x in lines[start:] if not TIMING.search(x)]

    assert comparable(our_lines) == comparable(their_lines)
    assert len(our_lines) > 150
    # a few anchors, so that the comparison cannot pass on two empty outputs
    assert "Created parameter space with 12 combinations" in our_lines
    assert "Zip mode: 2 combinations (uses minimum axis size)" in our_lines
    assert "Parallel execution complete! Got 64 results" in our_lines
    assert "Complex space: 27 combinations" in our_lines
    timed = [x for x in our_lines if TIMING.search(x)]
    assert [x.split(":")[0] for x in timed[:2]] == ["Sequential execution",
                                                   "Parallel execution"]

    # where TVB-Optim printed a warning, we raised one
    our_warnings = (tmp_path / "ours.py.warnings").read_text().splitlines()
    zip_warnings = [w for w in our_warnings if "zip mode" in w]
    assert len(zip_warnings) == 2 and all(w.startswith("UserWarning") for w in zip_warnings)
    assert "[3, 2]" in zip_warnings[0] and "[8, 5]" in zip_warnings[1]

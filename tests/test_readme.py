"""Every Python block of the README runs when pasted alone into a script.

Each ```python block is written to a file of its own and run by a fresh
interpreter, in an empty folder, as ``python block.py``: a block may not
lean on an earlier one, and one that starts worker processes (dask spawns
them, and a spawned process imports the script) must guard its run with
``if __name__ == "__main__":``. Blocks fenced otherwise (``sh``, a ``py``
sketch that needs a SLURM cluster, printed output) are not Python to run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE)
# a worker process that hangs must not hang the suite
TIMEOUT_S = 300
# a record of Python's logging as distributed formats it: "2026-12-03 18:41:07,123 - name - ..."
_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - ")
# dask's own teardown race: a worker whose heartbeat is in flight while the cluster closes logs
# this with its traceback (distributed.worker.Worker.heartbeat, on OSError); the run is done
_DASK_TEARDOWN = "Failed to communicate with scheduler during heartbeat"


def _traceback_end(lines: list[str], k: int) -> int:
    """Past the traceback (chained ones included) that starts at ``lines[k]``."""
    while k < len(lines) and lines[k] == "Traceback (most recent call last):":
        k += 1
        while k < len(lines) and lines[k].startswith(" "):
            k += 1
        k += 1  # the exception's line
        chained = ("The above exception was the direct cause", "During handling of the above")
        if k + 3 < len(lines) and lines[k] == "" and lines[k + 1].startswith(chained):
            k += 3  # blank, the sentence, blank
    return k


def without_dask_teardown(stderr: str) -> str:
    """``stderr`` less dask's heartbeat records at teardown: the line and its traceback only."""
    lines, kept, k = stderr.split("\n"), [], 0
    while k < len(lines):
        if _LOG_RECORD.match(lines[k]) and _DASK_TEARDOWN in lines[k]:
            k = _traceback_end(lines, k + 1)
            continue
        kept.append(lines[k])
        k += 1
    return "\n".join(kept)


def test_only_dask_heartbeat_records_are_dropped() -> None:
    heartbeat = ("2026-12-03 18:41:07,123 - distributed.worker - ERROR - " + _DASK_TEARDOWN
                 + ".\nTraceback (most recent call last):\n  File \"w.py\", line 1\n"
                 "distributed.comm.core.CommClosedError: in <TCP (closed)>\n")
    other = ("2026-12-03 18:41:08,001 - distributed.worker - ERROR - boom\n"
             "Traceback (most recent call last):\n  File \"x.py\", line 2\nValueError: x\n")
    ours = "Traceback (most recent call last):\n  File \"block.py\"\nValueError: y\n"
    assert without_dask_teardown("warn\n" + heartbeat) == "warn\n"
    assert without_dask_teardown(heartbeat + other) == other
    assert without_dask_teardown(ours + heartbeat) == ours
    assert without_dask_teardown(ours) == ours
    chained = heartbeat + (
        "\nThe above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n  File \"y.py\", line 3\nOSError: gone\n")
    after = "Exception in thread T:\nTraceback (most recent call last):\nRuntimeError: z\n"
    assert without_dask_teardown(chained + after) == after
    assert without_dask_teardown(heartbeat + "UserWarning: kept\n") == "UserWarning: kept\n"


def _line_of(block: str) -> int:
    return README[: README.index(block)].count("\n") + 1


def test_the_readme_starts_with_the_two_setup_commands():
    first = re.search(r"^```(\w*)\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE)
    assert first is not None and first.group(1) == "sh"
    assert first.group(2).splitlines() == [
        'pip install ".[examples]" && labeled-spaces demo',
        'pip install ".[dev]" && python -m pytest -n 2 -q',
    ]
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line-{_line_of(b)}" for b in BLOCKS])
def test_a_readme_block_runs_alone_as_a_script(block: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (
        f"the README block at line {_line_of(block)} failed as a script "
        f"(exit code {done.returncode}):\n{done.stderr[-4000:]}")
    stderr = without_dask_teardown(done.stderr)
    assert "Traceback" not in stderr, stderr[-4000:]

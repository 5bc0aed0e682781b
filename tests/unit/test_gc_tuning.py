"""The suite's garbage-collector settings reach the processes they were measured on (tests/gc_tuning.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from tests import gc_tuning


def test_the_suite_runs_with_the_thresholds_and_passes_gogc_on(monkeypatch):
    assert gc.get_threshold() == gc_tuning.THRESHOLDS
    monkeypatch.delenv("GOGC", raising=False)
    gc_tuning.apply()
    assert os.environ["GOGC"] == gc_tuning.GOGC
    monkeypatch.setenv("GOGC", "100")
    gc_tuning.apply()
    assert os.environ["GOGC"] == "100", "a GOGC the environment sets wins"


def test_a_console_script_runs_as_its_own_entry_point_with_the_thresholds(tmp_path: Path):
    script = tmp_path / "bin" / "tool"
    script.parent.mkdir()
    (script.parent / "python").symlink_to(sys.executable)
    script.write_text(
        "import gc, sys\nif __name__ == '__main__':\n    print(gc.get_threshold(), sys.argv)\n    sys.exit(3)\n"
    )
    run = subprocess.run([*gc_tuning.python_tool(script), "-f", "a b"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 3, run.stderr
    assert run.stdout.strip() == f"{gc_tuning.THRESHOLDS} {[str(script), '-f', 'a b']}"

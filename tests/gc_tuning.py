"""The garbage collector's thresholds for the suite's long-lived Python processes.

A pytest worker, cfn-lint and checkov each build millions of objects that live until they exit
(the session's renders and templates; the parsed templates and their graphs). With CPython's
default thresholds (700, 10, 10) every full collection walks all of them again, and they make
few reference cycles to find. Measured with gc.callbacks and CPU time: about six CPU-seconds of
a suite run in the workers, 1.6 of checkov's 10 over the templates, 0.5 of cfn-lint's 14.
Collections seventy times rarer take under one second in all; memory stays as it was.
"""

from __future__ import annotations

import gc
from pathlib import Path

THRESHOLDS = (50_000, 20, 20)

# Runs a console script as its own entry point (`__main__`, its argv) after setting the thresholds.
_LAUNCH = (
    "import gc, runpy, sys; "
    f"gc.set_threshold{THRESHOLDS}; "
    "sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def apply() -> None:
    """Sets the thresholds for this process."""
    gc.set_threshold(*THRESHOLDS)


def python_tool(script: Path) -> list[str]:
    """The command line that runs a venv's console script (bin/cfn-lint) with the thresholds set,
    on that venv's interpreter; append the tool's arguments."""
    return [str(script.with_name("python")), "-c", _LAUNCH, str(script)]

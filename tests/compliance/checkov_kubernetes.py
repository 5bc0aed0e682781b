"""One checkov (kubernetes) run per test session over every chart of one default environment of
each kind (why one of each kind: tests/compliance/scanners.py; the charts of every environment
are validated strictly and judged by Gatekeeper's policies elsewhere).

Two suites read it: test_supabase_manifests.py (the Supabase charts) and test_all_manifests.py
(every other chart). Each had its own checkov process; a start-up costs about five seconds and
they may land on different pytest-xdist workers, so the first that asks runs checkov once
(tests/shared.once) over one directory holding each suite's files in its own folder, and each
suite gets the results of its folder, with the file paths it would have seen scanning its folder
alone. checkov's kubernetes checks judge one resource at a time, so the results per folder are the
same as two runs give (compared when this was introduced: 3531 passed, 75 skipped for Supabase,
1301 passed, 17 skipped for the others, record for record).

`--compact` leaves the code block of each resource out of the JSON report (86 MB of the 92, and
most of checkov's time encoding and printing it); no suite reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from config import yamlio
from k8s_charts.supabase.chart import SUPABASE_CHART_IDS
from tests import gc_tuning, shared
from tests.compliance.scanners import CHECKOV, CHECKOV_ENV
from tests.conftest import ENVIRONMENT_KINDS
from tests.rendered import manifests

SUPABASE = "supabase"
OTHERS = "others"
RESULT_KEYS = ("passed_checks", "failed_checks", "skipped_checks")


def results(part: str) -> dict[str, Any]:
    """checkov's `results` for the Supabase charts (`SUPABASE`) or every other chart (`OTHERS`)."""
    stored = shared.once(shared.key_of("checkov-kubernetes", *ENVIRONMENT_KINDS), _scan)
    return json.loads((stored / f"{part}.json").read_text())


def _write(folder: Path) -> None:
    (folder / SUPABASE).mkdir()
    (folder / OTHERS).mkdir()
    for env in ENVIRONMENT_KINDS:
        rendered = manifests(env)
        supabase = [o for chart in SUPABASE_CHART_IDS for o in rendered[chart]]
        (folder / SUPABASE / f"supabase-{env}.yaml").write_text(yamlio.dump_all(supabase, sort_keys=False))
        for chart, objs in rendered.items():
            if chart not in SUPABASE_CHART_IDS:
                (folder / OTHERS / f"{env}-{chart}.yaml").write_text(yamlio.dump_all(objs, sort_keys=False))


def _scan(directory: Path) -> None:
    # Not below `directory`: shared.once fills a hidden scratch directory, and checkov skips those.
    with tempfile.TemporaryDirectory(prefix="checkov-kubernetes-") as folder:
        _write(Path(folder))
        proc = subprocess.run(
            [
                *gc_tuning.python_tool(CHECKOV),
                "-d",
                folder,
                *("--framework", "kubernetes", "--skip-download", "--compact", "-o", "json"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, **CHECKOV_ENV},
        )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"checkov gave no JSON report (exit {proc.returncode}): {proc.stderr[-2000:]}") from None
    found = report["results"] if isinstance(report, dict) else report[0]["results"]
    parts = {part: split(found, part) for part in (SUPABASE, OTHERS)}
    for key in RESULT_KEYS:
        stray = len(found[key]) - sum(len(p[key]) for p in parts.values())
        if stray:
            raise RuntimeError(f"checkov reported {stray} {key} outside {sorted(parts)}")
    for part, part_results in parts.items():
        (directory / f"{part}.json").write_text(json.dumps(part_results))


def split(found: dict[str, Any], part: str) -> dict[str, Any]:
    """The records of files under `part/`, their paths relative to that folder."""
    prefix = f"/{part}/"
    out: dict[str, Any] = {}
    for key in RESULT_KEYS:
        out[key] = [
            {**record, "file_path": "/" + record["file_path"].removeprefix(prefix)}
            for record in found[key]
            if record["file_path"].startswith(prefix)
        ]
    out["parsing_errors"] = [path for path in found.get("parsing_errors", []) if f"/{part}/" in path]
    return out

"""`make api-docs` on the sample migrations: the real command (scratch PostgreSQL 17, the
migrations by node-pg-migrate, postgres-meta's catalog, Redocly's lint and HTML renderer)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scripts.appdev import apidocs
from scripts.appdev.scratch import ROOT, ToolError
from tests.conftest import ENVIRONMENTS

# Runs `make api-docs`: a migrated scratch database, postgres-meta, Redocly.
pytestmark = pytest.mark.long


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("api-docs")
    result = subprocess.run(
        [sys.executable, "-m", "scripts.appdev", "api-docs", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def spec(out):
    return json.loads((out / apidocs.SPEC).read_text())


def test_spec_describes_the_sample_schema(spec, out, report):
    paths = spec["paths"]
    # smoke_rows: the platform's own probe table in public (database/bootstrap.sql), which
    # PostgREST serves like any other table.
    assert set(paths) == {"/todos", "/open_todos", "/rpc/complete_todo", "/smoke_rows"}
    assert set(paths["/todos"]) == {"get", "post", "patch", "delete"}
    assert set(paths["/open_todos"]) == {"get"}, "a view is read-only here"
    assert set(paths["/rpc/complete_todo"]) == {"post"}, "a VOLATILE function is POST only, as in PostgREST"
    todos = spec["components"]["schemas"]["todos"]
    assert todos["description"] == "A signed-in user's tasks."
    assert todos["properties"]["id"]["format"] == "int64"
    assert todos["properties"]["owner_id"]["format"] == "uuid"
    assert todos["properties"]["inserted_at"]["format"] == "date-time"
    assert todos["properties"]["priority"]["enum"] == ["low", "normal", "high"]
    assert set(todos["required"]) == {"id", "owner_id", "title", "done", "inserted_at", "priority"}
    assert spec["components"]["schemas"]["open_todos"]["properties"]["title"]["nullable"] is True
    rpc = paths["/rpc/complete_todo"]["post"]
    assert rpc["requestBody"]["content"]["application/json"]["schema"]["required"] == ["todo_id"]
    assert rpc["responses"]["200"]["content"]["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/todos"
    }
    assert {s["description"] for s in spec["servers"]} == set(ENVIRONMENTS)
    assert all(s["url"].endswith("/rest/v1") for s in spec["servers"])
    html = (out / apidocs.HTML).read_text()
    assert "<html" in html.lower() and "complete_todo" in html and "open_todos" in html
    report(
        "api docs",
        f"make api-docs: {len(paths)} paths from the sample migrations, redocly lint without errors, "
        f"{(out / apidocs.HTML).stat().st_size} bytes of HTML",
    )


def test_redocly_lint_refuses_a_broken_description(spec, tmp_path):
    """The lint step can fail: an operation pointing at a schema that does not exist."""
    broken = json.loads(json.dumps(spec))
    broken["paths"]["/todos"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/no_such_table"
    }
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ToolError, match="no-unresolved-refs"):
        apidocs.redocly("lint", str(path))

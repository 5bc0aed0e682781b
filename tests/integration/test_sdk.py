"""`make sdk`'s generators on the sample migrations, applied to the RDS-like PostgreSQL 17, and
each language's output checked with that language's own tools where they install here.

- TypeScript: tsc (npm typescript, pinned) compiles a typed query with @supabase/supabase-js
  (pinned) in strict mode, and refuses one that uses a value the enum does not have.
- Python: `ast` parses it, mypy type-checks a use of it and refuses a wrong enum value, and
  pydantic (the generated models' base) validates rows read from the database.
- Go: `go run` (Debian golang-go) compiles it and decodes rows the database returns as JSON
  into the generated structs, then re-encodes them unchanged.
- Swift: no Swift toolchain installs here (Debian's `swift` is OpenStack's object store), so
  only the structure is checked: one Select/Insert/Update struct per table, CodingKeys naming
  every column the database returns, the enum's cases, balanced braces. It is not compiled.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from scripts.appdev import sdk
from scripts.appdev.scratch import NODE_BIN, ROOT, migrate
from tests.integration.conftest import bootstrapped_database

# Runs `make sdk` and compiles what it writes (tsc, go build, mypy).
pytestmark = pytest.mark.long

DBNAME = "app_sdk"
COLUMNS = ["done", "id", "inserted_at", "owner_id", "priority", "title"]


@pytest.fixture(scope="module")
def database(postgres_server) -> tuple[str, list[dict]]:
    """The samples migrated as the master over verify-full TLS; two rows and their JSON."""
    bootstrapped_database(postgres_server, DBNAME)
    url = (
        f"postgresql://{postgres_server.master_user}:{quote(postgres_server.master_password, safe='')}"
        f"@localhost:{postgres_server.port}/{DBNAME}?sslmode=verify-full&sslrootcert={postgres_server.ca_file}"
    )
    migrate(url)
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.todos (owner_id, title, priority) VALUES "
            "(gen_random_uuid(), 'write a migration', 'high'), (gen_random_uuid(), 'regenerate types', 'low')"
        )
        rows = conn.execute("SELECT json_agg(t ORDER BY t.id) FROM public.todos t").fetchone()[0]
    return url, rows


@pytest.fixture(scope="module")
def out(database):
    # Inside the repository, so tsc resolves @supabase/supabase-js from its node_modules.
    (ROOT / "build").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="sdk-test-", dir=ROOT / "build"))
    written = sdk.write(database[0], folder)
    assert [p.name for p in written] == list(sdk.OUTPUTS.values())
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


TS_QUERY = """
import { createClient } from "@supabase/supabase-js";
import type { Database } from "./database.types";

type Priority = Database["public"]["Enums"]["todo_priority"];
const supabase = createClient<Database>("https://api.example.test", "anon-key");

export async function openTodos(): Promise<{ id: number; title: string; priority: Priority }[]> {
  const { data, error } = await supabase.from("todos").select("id, title, priority").eq("done", false).eq("priority", "PRIORITY");
  if (error) throw error;
  return data;
}

export async function add(title: string): Promise<void> {
  const { error } = await supabase.from("todos").insert({ title, priority: "normal" });
  if (error) throw error;
}

export async function complete(id: number): Promise<boolean[]> {
  const { data, error } = await supabase.rpc("complete_todo", { todo_id: id });
  if (error) throw error;
  return data.map((row) => row.done);
}
"""


def _tsc(folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    (folder / "query.ts").write_text(source)
    (folder / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "target": "es2022",
                    "module": "nodenext",
                    "moduleResolution": "nodenext",
                    "skipLibCheck": True,
                },
                "files": ["query.ts"],
            }
        )
    )
    return subprocess.run(
        [str(NODE_BIN / "tsc"), "-p", str(folder / "tsconfig.json")], capture_output=True, text=True, timeout=300
    )


def test_typescript_types_compile_with_supabase_js(out, report):
    good = _tsc(out, TS_QUERY.replace("PRIORITY", "high"))
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _tsc(out, TS_QUERY.replace("PRIORITY", "urgent"))
    assert bad.returncode != 0 and '"urgent"' in bad.stdout, bad.stdout
    report(
        "typed sdk",
        "make sdk (postgres-meta generators): TypeScript compiled by tsc with supabase-js, "
        "Python checked by mypy and pydantic on real rows, Go compiled and decoding real rows; "
        "Swift structure only (no toolchain)",
    )


def _load_python(path: Path):
    spec = importlib.util.spec_from_file_location("database_types", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["database_types"] = module
    spec.loader.exec_module(module)
    return module


def test_python_types_parse_type_check_and_validate_rows(out, database):
    source = (out / "database_types.py").read_text()
    ast.parse(source)
    usage = (
        "from database_types import PublicTodos, PublicTodosInsert\n\n"
        "def title(row: PublicTodos) -> str:\n    return row.title\n\n"
        'new: PublicTodosInsert = {"title": "x", "priority": "PRIORITY"}\n'
    )
    for priority, ok in (("high", True), ("urgent", False)):
        (out / "usage.py").write_text(usage.replace("PRIORITY", priority))
        # A cache of this run only: the second check reuses the first's analysis of pydantic and
        # the generated module (seconds of the first run) and re-checks the changed usage.py.
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file=/dev/null", f"--cache-dir={out / '.mypy_cache'}", "usage.py"],
            cwd=out,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert (result.returncode == 0) is ok, result.stdout
    module = _load_python(out / "database_types.py")
    try:
        for row in database[1]:
            model = module.PublicTodos.model_validate(row)
            assert model.title == row["title"] and str(model.owner_id) == row["owner_id"]
    finally:
        del sys.modules["database_types"]


GO_MAIN = """package main

import (
\t"encoding/json"
\t"os"

\t"sdkcheck/database"
)

func main() {
\tvar rows []database.PublicTodosSelect
\tdecoder := json.NewDecoder(os.Stdin)
\tdecoder.DisallowUnknownFields()
\tif err := decoder.Decode(&rows); err != nil {
\t\tpanic(err)
\t}
\tif err := json.NewEncoder(os.Stdout).Encode(rows); err != nil {
\t\tpanic(err)
\t}
}
"""


def test_go_types_compile_and_decode_rows(out, database, tmp_path):
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is missing; `make install` adds Debian's golang-go")
    module = tmp_path / "sdkcheck"
    (module / "database").mkdir(parents=True)
    shutil.copy(out / "database.go", module / "database" / "database.go")
    (module / "go.mod").write_text("module sdkcheck\n\ngo 1.19\n")
    (module / "main.go").write_text(GO_MAIN)
    env = {
        **os.environ,
        # Go's build cache (content-addressed, keyed by every input) kept between runs beside the
        # other build output: cold, `go vet` spends seconds analysing the standard library
        # packages the program imports, the same work every run; the generated file and the
        # program are still vetted and compiled whenever they change. `make clean` removes it.
        "GOCACHE": str(ROOT / ".build" / "go-cache"),
        "GOPATH": str(tmp_path / "gopath"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
    }
    vet = subprocess.run([go, "vet", "./..."], cwd=module, env=env, capture_output=True, text=True, timeout=300)
    assert vet.returncode == 0, vet.stderr
    rows = database[1]
    run = subprocess.run(
        [go, "run", "."], cwd=module, env=env, input=json.dumps(rows), capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [{c: row[c] for c in COLUMNS} for row in rows]


def test_swift_output_structure(out, database):
    source = (out / "Database.swift").read_text()
    assert source.count("{") == source.count("}")
    assert "import Supabase" in source
    for kind in ("Select", "Insert", "Update"):
        assert f"struct Todos{kind}: Codable" in source
    assert "struct OpenTodosSelect: Codable" in source
    for column in database[1][0]:
        camel = column.split("_")[0] + "".join(p.title() for p in column.split("_")[1:])
        assert f'case {camel} = "{column}"' in source, column
    for value in ("low", "normal", "high"):
        assert f'case {value} = "{value}"' in source

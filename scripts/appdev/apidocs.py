"""`make api-docs`: the REST API of the migrated schema as OpenAPI 3.0, rendered and linted.

PostgREST describes its own API (GET /rest/v1/ with a secret key), but no PostgREST build
installs from PyPI, npm or Debian, so the description is built here from postgres-meta's
catalog of the migrated scratch database (tables, views, functions, enums, columns, comments)
following PostgREST 14's conventions (https://docs.postgrest.org/en/v14/references/api/tables_views.html,
.../functions.html): GET/POST/PATCH/DELETE on each table, GET on each view, POST (and GET for
STABLE/IMMUTABLE) on /rpc/<function>, horizontal filters as `column=operator.value` query
parameters, `select`/`order`/`limit`/`offset`, the `Prefer` header, PostgREST's error body.
What differs from PostgREST's own output: it is OpenAPI 3.0 (PostgREST emits Swagger 2.0),
it lists every object of the application's schemas rather than those the caller's role may
use, and it knows nothing of PostgREST's runtime settings (max rows, aggregates).

Redocly's CLI (npm @redocly/cli, pinned) lints it with its `recommended` rules
(scripts/appdev/redocly.yaml) and renders one HTML page with `build-docs`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from config import load_config, naming
from database.migrations import APP_SCHEMAS, load_migrations
from scripts.appdev.meta import meta_server
from scripts.appdev.scratch import NODE_BIN, ROOT, ToolError, clean_env

REDOCLY_CONFIG = Path(__file__).with_name("redocly.yaml")
SPEC = "openapi.json"
HTML = "index.html"

# postgres-meta's `format` (the type name) -> JSON schema.
_FORMATS: dict[str, dict[str, Any]] = {
    "int2": {"type": "integer", "format": "int32"},
    "int4": {"type": "integer", "format": "int32"},
    "int8": {"type": "integer", "format": "int64"},
    "float4": {"type": "number", "format": "float"},
    "float8": {"type": "number", "format": "double"},
    "numeric": {"type": "number"},
    "bool": {"type": "boolean"},
    "uuid": {"type": "string", "format": "uuid"},
    "date": {"type": "string", "format": "date"},
    "timestamp": {"type": "string", "format": "date-time"},
    "timestamptz": {"type": "string", "format": "date-time"},
    "json": {},
    "jsonb": {},
}
ERROR = "#/components/schemas/PostgrestError"
FILTER_DESCRIPTION = "Horizontal filter, `operator.value`: eq, neq, gt, gte, lt, lte, like, ilike, is, in.(...), ..."


def column_schema(column: dict[str, Any]) -> dict[str, Any]:
    fmt = column["format"]
    if column["enums"]:
        schema: dict[str, Any] = {"type": "string", "enum": column["enums"]}
    elif fmt.startswith("_"):
        schema = {"type": "array", "items": dict(_FORMATS.get(fmt[1:], {"type": "string"}))}
    else:
        schema = dict(_FORMATS.get(fmt, {"type": "string"}))
    notes = [column["comment"]] if column.get("comment") else []
    notes.append(f"PostgreSQL type `{column['data_type'] if not column['enums'] else fmt}`")
    if column["is_identity"] or column.get("default_value"):
        notes.append("has a default")
    schema["description"] = "; ".join(notes)
    if column["is_nullable"]:
        schema["nullable"] = True
    return schema


def relation_schema(relation: dict[str, Any]) -> dict[str, Any]:
    columns = sorted(relation["columns"], key=lambda c: c["ordinal_position"])
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {c["name"]: column_schema(c) for c in columns},
    }
    required = [c["name"] for c in columns if not c["is_nullable"]]
    if required:
        schema["required"] = required
    if relation.get("comment"):
        schema["description"] = relation["comment"]
    return schema


def _responses(ok: str, description: str, content: dict[str, Any] | None) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": ERROR}}}
    out: dict[str, Any] = {ok: {"description": description}}
    if content:
        out[ok]["content"] = {"application/json": {"schema": content}}
    out["400"] = {"description": "The request was refused by PostgreSQL or PostgREST", "content": error}
    out["401"] = {"description": "Missing or invalid API key or JWT", "content": error}
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _filters(relation: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": c["name"],
            "in": "query",
            "required": False,
            "description": FILTER_DESCRIPTION,
            "schema": {"type": "string"},
        }
        for c in sorted(relation["columns"], key=lambda c: c["ordinal_position"])
    ]


def _read_params() -> list[dict[str, Any]]:
    return [{"$ref": f"#/components/parameters/{p}"} for p in ("select", "order", "limit", "offset", "range")]


def relation_paths(relation: dict[str, Any], *, writable: bool) -> dict[str, Any]:
    name = relation["name"]
    tag = name
    row = _ref(name)
    ops: dict[str, Any] = {
        "get": {
            "operationId": f"select_{name}",
            "summary": f"Read rows of {name}",
            "tags": [tag],
            "parameters": [*_filters(relation), *_read_params()],
            "responses": _responses("200", "The rows the caller may see", {"type": "array", "items": row}),
        }
    }
    if writable:
        prefer = {"$ref": "#/components/parameters/prefer"}
        body = {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [row, {"type": "array", "items": row}]}}},
        }
        ops["post"] = {
            "operationId": f"insert_{name}",
            "summary": f"Insert rows into {name}",
            "tags": [tag],
            "parameters": [_read_params()[0], prefer],
            "requestBody": body,
            "responses": _responses(
                "201", "Inserted (rows returned with Prefer: return=representation)", {"type": "array", "items": row}
            ),
        }
        ops["patch"] = {
            "operationId": f"update_{name}",
            "summary": f"Update the rows of {name} the filters match",
            "tags": [tag],
            "parameters": [*_filters(relation), prefer],
            "requestBody": {"required": True, "content": {"application/json": {"schema": row}}},
            "responses": _responses(
                "200", "Updated rows (with Prefer: return=representation)", {"type": "array", "items": row}
            ),
        }
        ops["delete"] = {
            "operationId": f"delete_{name}",
            "summary": f"Delete the rows of {name} the filters match",
            "tags": [tag],
            "parameters": [*_filters(relation), prefer],
            "responses": _responses("204", "Deleted", None),
        }
    return {f"/{name}": ops}


def function_paths(function: dict[str, Any], relations: dict[int, str]) -> dict[str, Any]:
    name = function["name"]
    args = [a for a in function["args"] if a["mode"] in ("in", "inout", "variadic")]
    body = {
        "type": "object",
        "properties": {a["name"]: {"description": f"argument {a['name']}"} for a in args},
    }
    required = [a["name"] for a in args if not a["has_default"]]
    if required:
        body["required"] = required
    relation = relations.get(function.get("return_type_relation_id") or -1)
    result: dict[str, Any] = (
        {"type": "array", "items": _ref(relation)} if relation else {"description": function["return_type"]}
    )
    summary = f"Call {name}({function['argument_types']}) returning {function['return_type']}"
    ops: dict[str, Any] = {
        "post": {
            "operationId": f"rpc_{name}",
            "summary": summary,
            "tags": ["rpc"],
            "requestBody": {"required": bool(required), "content": {"application/json": {"schema": body}}},
            "responses": _responses("200", "The function's result", result),
        }
    }
    if function["behavior"] in ("STABLE", "IMMUTABLE"):
        ops["get"] = {
            "operationId": f"rpc_{name}_get",
            "summary": summary,
            "tags": ["rpc"],
            "parameters": [
                {"name": a["name"], "in": "query", "required": not a["has_default"], "schema": {"type": "string"}}
                for a in args
            ],
            "responses": _responses("200", "The function's result", result),
        }
    return {f"/rpc/{name}": ops}


def _components() -> dict[str, Any]:
    return {
        "securitySchemes": {
            "apikey": {
                "type": "apiKey",
                "in": "header",
                "name": "apikey",
                "description": "The anon or service_role key",
            },
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A user's access token",
            },
        },
        "parameters": {
            "select": {
                "name": "select",
                "in": "query",
                "required": False,
                "description": "Columns to return, e.g. `id,title`",
                "schema": {"type": "string"},
            },
            "order": {
                "name": "order",
                "in": "query",
                "required": False,
                "description": "e.g. `inserted_at.desc.nullslast`",
                "schema": {"type": "string"},
            },
            "limit": {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
            "offset": {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
            "range": {
                "name": "Range",
                "in": "header",
                "required": False,
                "description": "Rows as `first-last`, e.g. `0-24`",
                "schema": {"type": "string"},
            },
            "prefer": {
                "name": "Prefer",
                "in": "header",
                "required": False,
                "description": "`return=representation` returns the affected rows; `count=exact` counts them",
                "schema": {"type": "string"},
            },
        },
        "schemas": {
            "PostgrestError": {
                "type": "object",
                "description": "PostgREST's error body (https://docs.postgrest.org/en/v14/references/errors.html)",
                "properties": {
                    "code": {"type": "string", "description": "SQLSTATE or PGRST code"},
                    "message": {"type": "string"},
                    "details": {"type": "string", "nullable": True},
                    "hint": {"type": "string", "nullable": True},
                },
                "required": ["code", "message"],
            }
        },
    }


def openapi(meta: Any, *, servers: list[dict[str, str]], version: str) -> dict[str, Any]:
    tables, views, functions = meta.catalog("tables"), meta.catalog("views"), meta.catalog("functions")
    components = _components()
    paths: dict[str, Any] = {}
    for table in sorted(tables, key=lambda t: t["name"]):
        components["schemas"][table["name"]] = relation_schema(table)
        paths.update(relation_paths(table, writable=True))
    for view in sorted(views, key=lambda v: v["name"]):
        components["schemas"][view["name"]] = relation_schema(view)
        paths.update(relation_paths(view, writable=False))
    relations = {r["id"]: r["name"] for r in [*tables, *views]}
    for function in sorted(functions, key=lambda f: f["name"]):
        paths.update(function_paths(function, relations))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "REST API (PostgREST) of the application schema",
            "version": version,
            "description": (
                f"Schemas {', '.join(APP_SCHEMAS)} as supabase/migrations leave them, served by PostgREST "
                "under /rest/v1 behind the API gateway. Generated by `make api-docs`; row level "
                "security decides which rows each caller sees."
            ),
        },
        "servers": servers,
        "security": [{"apikey": [], "bearer": []}, {"apikey": []}],
        "tags": [
            *(
                {"name": r["name"], "description": r.get("comment") or f"{r['name']}"}
                for r in sorted([*tables, *views], key=lambda r: r["name"])
            ),
            {"name": "rpc", "description": "Database functions"},
        ],
        "paths": paths,
        "components": components,
    }


def servers(config: str | None = None) -> list[dict[str, str]]:
    cfg = load_config(config)
    return [
        {"url": f"https://{naming.api_host(env)}/rest/v1", "description": name}
        for name, env in cfg.environments.items()
    ]


def redocly(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(NODE_BIN / "redocly"), *args, f"--config={REDOCLY_CONFIG}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean_env(), "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"},
        timeout=300,
    )
    if result.returncode != 0:
        raise ToolError(f"redocly {args[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def write(database_url: str, out: Path, *, config: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    migrations = load_migrations()
    version = migrations[-1].name if migrations else "0"
    with meta_server(database_url) as meta:
        spec = openapi(meta, servers=servers(config), version=version)
    spec_path, html = out / SPEC, out / HTML
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    redocly("lint", str(spec_path))
    redocly("build-docs", str(spec_path), f"--output={html}")
    return [spec_path, html]

"""Run Elixir Ecto migration files against PostgreSQL without an Elixir runtime.

The .ex/.exs files are parsed with tree-sitter's Elixir grammar (the one elixir-lang
maintains), and the calls of their `change`/`up` body are turned into the SQL that Ecto
would send:

- `execute(sql)` / `execute(up_sql, down_sql)`: the `up` string, with Elixir's string
  rules: escapes processed in "..." and \"\"\"...\"\"\", none in ~S sigils, heredoc
  indentation removed up to the closing delimiter. Interpolation is refused.
- the DSL (`create[_if_not_exists] table`, `alter table` with add/add_if_not_exists/modify/
  remove, `timestamps`, `references`, `[unique_]index`, `drop_if_exists table`, `create
  constraint`): rendered by the rules of Ecto.Adapters.Postgres.Connection.execute_ddl in
  ecto_sql 3.13.2 (the version Realtime's mix.lock pins): default `id bigserial` primary key,
  `:string` -> varchar(255), datetimes -> timestamp(0), maps -> jsonb, `<table>_<cols>_index`
  and `<table>_<col>_fkey` names, the runner's prefix for objects without their own.
- like Ecto.Migrator: the schema_migrations table `CREATE TABLE IF NOT EXISTS` under the
  prefix, versions already recorded are skipped, each migration runs in its own transaction
  after `LOCK TABLE ... IN SHARE UPDATE EXCLUSIVE MODE` (unless @disable_ddl_transaction),
  and its version is inserted when it succeeds.

Anything else (a call into application code) raises `Unsupported`, so nothing is skipped
silently; callers decide what such a call means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import tree_sitter_elixir
from psycopg import sql
from tree_sitter import Language, Node, Parser

_PARSER = Parser(Language(tree_sitter_elixir.language()))
_DIRECTIONS = {
    "asc": "ASC",
    "desc": "DESC",
    "asc_nulls_first": "ASC NULLS FIRST",
    "asc_nulls_last": "ASC NULLS LAST",
    "desc_nulls_first": "DESC NULLS FIRST",
    "desc_nulls_last": "DESC NULLS LAST",
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "s": " ", "0": "\0", "e": "\x1b", "\n": ""}


class Unsupported(Exception):
    """A construct this runner does not render; the message names it."""


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path
    statements: tuple[str, ...]
    transaction: bool = True


@dataclass
class _Ctx:
    prefix: str | None
    out: list[str] = field(default_factory=list)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qual(prefix: str | None, name: str) -> str:
    return f"{_q(prefix)}.{_q(name)}" if prefix else _q(name)


def _string(node: Node) -> str:
    if node.type == "sigil":
        name = node.child_by_field_name("name") or next(c for c in node.children if c.type == "sigil_name")
        if name.text.decode() != "S":
            raise Unsupported(f"sigil ~{name.text.decode()}")
        parts = [c.text.decode() for c in node.named_children if c.type == "quoted_content"]
    elif node.type == "string":
        parts = []
        for c in node.named_children:
            text = c.text.decode()
            if c.type == "quoted_content":
                parts.append(text)
            elif c.type == "escape_sequence":
                ch = text[1:]
                parts.append(_ESCAPES.get(ch, ch))
            else:
                raise Unsupported(f"{c.type} in string {text!r}")
    else:
        raise Unsupported(f"{node.type} where a string is expected: {node.text.decode()[:60]!r}")
    value = "".join(parts)
    raw = node.text.decode()
    if raw.rstrip().endswith('"""'):
        indent = raw[raw.rfind("\n") + 1 : raw.rfind('"""')]
        lines = value.split("\n")
        value = "\n".join(line[len(indent) :] if line.startswith(indent) else line.lstrip(" ") for line in lines)
        value = value.removeprefix("\n")
    return value


def _value(node: Node) -> Any:
    t = node.type
    if t == "atom":
        return node.text.decode()[1:]
    if t in ("string", "sigil"):
        return _string(node)
    if t == "integer":
        return int(node.text.decode().replace("_", ""))
    if t == "boolean":
        return node.text.decode() == "true"
    if t == "nil":
        return None
    if t == "map":
        if node.named_children:
            raise Unsupported("non-empty map literal")
        return {}
    if t == "list":
        return [_value(c) for c in node.named_children]
    if t == "keywords":
        return {
            p.named_children[0].text.decode().rstrip(": "): _value(p.named_children[1]) for p in node.named_children
        }
    if t == "tuple":
        return tuple(_value(c) for c in node.named_children)
    if t == "call":
        name, args, _ = _call(node)
        if name == "fragment":
            return ("fragment", _value(args[0]))
        if name == "references":
            return ("references", _value(args[0]), _kw(args[1:]))
        if name in ("table", "index", "unique_index", "constraint"):
            return (name, [_value(a) for a in args if a.type != "keywords"], _kw(args))
    raise Unsupported(f"{t}: {node.text.decode()[:60]!r}")


def _kw(args: Iterable[Node]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in args:
        if a.type == "keywords":
            out.update(_value(a))
    return out


def _call(node: Node) -> tuple[str, list[Node], Node | None]:
    target = node.child_by_field_name("target")
    args_node = next((c for c in node.named_children if c.type == "arguments"), None)
    block = next((c for c in node.named_children if c.type == "do_block"), None)
    return target.text.decode(), list(args_node.named_children) if args_node else [], block


def _column_type(type_: Any, opts: dict[str, Any]) -> str:
    if isinstance(type_, tuple):
        raise Unsupported(f"column type {type_!r}")
    db = {
        "binary_id": "uuid",
        "string": "varchar",
        "map": "jsonb",
        "utc_datetime": "timestamp",
        "naive_datetime": "timestamp",
        "utc_datetime_usec": "timestamp",
        "naive_datetime_usec": "timestamp",
        "binary": "bytea",
        "id": "integer",
    }.get(type_, type_)
    if type_ in ("utc_datetime", "naive_datetime", "time"):
        return f"{db}(0)"
    if "size" in opts:
        return f"{db}({opts['size']})"
    if type_ == "string":
        return f"{db}(255)"
    return db


def _default(value: Any, type_: Any) -> str:
    if value is None:
        return " DEFAULT NULL"
    if isinstance(value, tuple) and value[0] == "fragment":
        return f" DEFAULT {value[1]}"
    if isinstance(value, bool):
        return f" DEFAULT {str(value).lower()}"
    if isinstance(value, int):
        return f" DEFAULT {value}"
    if isinstance(value, str):
        return " DEFAULT '" + value.replace("'", "''") + "'"
    if isinstance(value, dict) and type_ == "map":
        return " DEFAULT '" + json.dumps(value, separators=(",", ":")) + "'"
    raise Unsupported(f"default {value!r}")


def _options(type_: Any, opts: dict[str, Any]) -> str:
    out = _default(opts["default"], type_) if "default" in opts else ""
    if opts.get("null") is False:
        out += " NOT NULL"
    elif opts.get("null") is True:
        out += " NULL"
    return out


def _reference(ref: tuple, table: str, prefix: str | None, column: str) -> tuple[str, str]:
    _, target, ropts = ref
    rtype = ropts.get("type", "bigserial")
    coltype = {"bigserial": "bigint", "serial": "integer"}.get(rtype) or _column_type(rtype, {})
    on_delete = {
        "delete_all": " ON DELETE CASCADE",
        "nilify_all": " ON DELETE SET NULL",
        "restrict": " ON DELETE RESTRICT",
    }.get(ropts.get("on_delete"), "")
    constraint = (
        f"CONSTRAINT {_q(f'{table}_{column}_fkey')} FOREIGN KEY ({_q(column)}) REFERENCES "
        f"{_qual(ropts.get('prefix', prefix), target)}({_q(ropts.get('column', 'id'))}){on_delete}"
    )
    return coltype, constraint


def _columns(block: Node | None) -> list[tuple]:
    """(action, name, type, opts) tuples of a table block, `timestamps()` expanded."""
    out: list[tuple] = []
    for stmt in block.named_children if block else []:
        name, args, _ = _call(stmt)
        values = [_value(a) for a in args if a.type != "keywords"]
        opts = _kw(args)
        if name == "timestamps":
            for col in ("inserted_at", "updated_at"):
                out.append(("add", col, opts.get("type", "naive_datetime"), {"null": False}))
        elif name in ("add", "add_if_not_exists", "modify"):
            out.append((name, values[0], values[1], opts))
        elif name == "remove":
            out.append(("remove", values[0], None, {}))
        else:
            raise Unsupported(f"{name} in a table block")
    return out


def _render_create_table(table: tuple, block: Node | None, ctx: _Ctx, if_not_exists: bool) -> None:
    _, (name,), topts = table
    prefix = topts.get("prefix", ctx.prefix)
    cols = _columns(block)
    if topts.get("primary_key", True) is not False:
        cols.insert(0, ("add", "id", "bigserial", {"primary_key": True}))
    defs: list[str] = []
    for _, col, type_, opts in cols:
        if isinstance(type_, tuple) and type_[0] == "references":
            coltype, constraint = _reference(type_, name, prefix, col)
            defs.append(f"{_q(col)} {coltype}{_options(None, opts)}, {constraint}")
        else:
            defs.append(f"{_q(col)} {_column_type(type_, opts)}{_options(type_, opts)}")
    pks = [c[1] for c in cols if c[3].get("primary_key")]
    if pks:
        defs.append("PRIMARY KEY (" + ", ".join(map(_q, pks)) + ")")
    ine = "IF NOT EXISTS " if if_not_exists else ""
    ctx.out.append(f"CREATE TABLE {ine}{_qual(prefix, name)} ({', '.join(defs)})")


def _render_alter_table(table: tuple, block: Node | None, ctx: _Ctx) -> None:
    _, (name,), topts = table
    prefix = topts.get("prefix", ctx.prefix)
    changes: list[str] = []
    for action, col, type_, opts in _columns(block):
        if action == "remove":
            changes.append(f"DROP COLUMN {_q(col)}")
        elif isinstance(type_, tuple):
            if action == "modify":
                raise Unsupported("modify to a reference")
            coltype, constraint = _reference(type_, name, prefix, col)
            ine = "IF NOT EXISTS " if action == "add_if_not_exists" else ""
            changes.append(f"ADD COLUMN {ine}{_q(col)} {coltype}{_options(None, opts)}, ADD {constraint}")
        elif action == "modify":
            change = f"ALTER COLUMN {_q(col)} TYPE {_column_type(type_, opts)}"
            if opts.get("null") is True:
                change += f", ALTER COLUMN {_q(col)} DROP NOT NULL"
            elif opts.get("null") is False:
                change += f", ALTER COLUMN {_q(col)} SET NOT NULL"
            if "default" in opts:
                change += f", ALTER COLUMN {_q(col)} SET{_default(opts['default'], type_)}"
            changes.append(change)
        else:
            ine = "IF NOT EXISTS " if action == "add_if_not_exists" else ""
            changes.append(f"ADD COLUMN {ine}{_q(col)} {_column_type(type_, opts)}{_options(type_, opts)}")
    ctx.out.append(f"ALTER TABLE {_qual(prefix, name)} {', '.join(changes)}")


def _render_index(index: tuple, ctx: _Ctx, if_not_exists: bool) -> None:
    kind, (table, columns), opts = index
    columns = columns if isinstance(columns, list) else [columns]
    unique = kind == "unique_index" or opts.get("unique", False)
    bare = [c[1] if isinstance(c, tuple) else c for c in columns]
    name = opts.get("name") or "_".join([table, *(re.sub(r"[^\w]", "_", c).rstrip("_") for c in bare), "index"])
    exprs = [f"{_q(c[1])} {_DIRECTIONS[c[0]]}" if isinstance(c, tuple) else _q(c) for c in columns]
    prefix = opts.get("prefix", ctx.prefix)
    ine = "IF NOT EXISTS " if if_not_exists else ""
    where = f" WHERE {opts['where']}" if "where" in opts else ""
    ctx.out.append(
        f"CREATE {'UNIQUE ' if unique else ''}INDEX {ine}{_q(name)} ON {_qual(prefix, table)} "
        f"({', '.join(exprs)}){where}"
    )


def _statements(body: Node, ctx: _Ctx, calls: dict[str, Callable[[list[Any]], list[str]]]) -> None:
    for stmt in body.named_children:
        # A bare string is only the function's return value: Ecto runs nothing for it.
        if stmt.type in ("comment", "string"):
            continue
        if stmt.type != "call":
            raise Unsupported(f"{stmt.type}: {stmt.text.decode()[:60]!r}")
        name, args, block = _call(stmt)
        if name == "execute":
            ctx.out.append(_value(args[0]))
        elif name in ("create", "create_if_not_exists"):
            obj = _value(args[0])
            if obj[0] == "table":
                _render_create_table(obj, block, ctx, name == "create_if_not_exists")
            elif obj[0] in ("index", "unique_index"):
                _render_index(obj, ctx, name == "create_if_not_exists")
            elif obj[0] == "constraint" and name == "create":
                _, (table, cname), copts = obj
                ctx.out.append(
                    f"ALTER TABLE {_qual(copts.get('prefix', ctx.prefix), table)} "
                    f"ADD CONSTRAINT {_q(cname)} CHECK ({copts['check']})"
                )
            else:
                raise Unsupported(f"{name} {obj[0]}")
        elif name == "alter":
            _render_alter_table(_value(args[0]), block, ctx)
        elif name == "drop_if_exists":
            obj = _value(args[0])
            if obj[0] != "table":
                raise Unsupported(f"drop_if_exists {obj[0]}")
            mode = " CASCADE" if _kw(args).get("mode") == "cascade" else ""
            ctx.out.append(f"DROP TABLE IF EXISTS {_qual(obj[2].get('prefix', ctx.prefix), obj[1][0])}{mode}")
        elif name in calls:
            ctx.out.extend(calls[name]([_value(a) for a in args]))
        else:
            raise Unsupported(f"call {name}(...) in {stmt.text.decode()[:60]!r}")


def parse(
    path: Path, *, prefix: str | None, calls: dict[str, Callable[[list[Any]], list[str]]] | None = None
) -> Migration:
    """The SQL of one migration file's `up` direction (`change`, else `up`)."""
    tree = _PARSER.parse(path.read_bytes())
    module = tree.root_node.named_children[0]
    _, _, module_block = _call(module)
    defs: dict[str, Node] = {}
    transaction = True
    for node in module_block.named_children:
        if node.type == "unary_operator" and node.text.decode().split()[0] == "@disable_ddl_transaction":
            transaction = node.text.decode().split()[1] != "true"
        if node.type == "call" and _call(node)[0] == "def":
            _, args, block = _call(node)
            defs[args[0].text.decode()] = block
    body = defs.get("change") or defs.get("up")
    if body is None:
        raise Unsupported(f"{path.name}: neither change nor up")
    ctx = _Ctx(prefix=prefix)
    _statements(body, ctx, calls or {})
    version = int(path.name.split("_", 1)[0])
    return Migration(version=version, path=path, statements=tuple(ctx.out), transaction=transaction)


@dataclass
class Applied:
    version: int
    name: str
    statements: int


def migrate(
    conn: psycopg.Connection,
    migrations: list[Migration],
    *,
    prefix: str | None,
    on_error: Callable[[Migration, Exception], None] | None = None,
) -> list[Applied]:
    """Ecto.Migrator.run(..., :up, all: true) on `conn` (autocommit): returns those applied."""
    table = sql.SQL(_qual(prefix, "schema_migrations"))
    conn.execute(
        sql.SQL(
            'CREATE TABLE IF NOT EXISTS {} ("version" bigint, "inserted_at" timestamp(0), PRIMARY KEY ("version"))'
        ).format(table)
    )
    done = {row[0] for row in conn.execute(sql.SQL("SELECT version FROM {}").format(table))}
    applied: list[Applied] = []
    for m in sorted(migrations, key=lambda m: m.version):
        if m.version in done:
            continue
        try:
            if m.transaction:
                with conn.transaction():
                    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(table))
                    for stmt in m.statements:
                        conn.execute(stmt, prepare=False)
                    _record(conn, table, m)
            else:
                for stmt in m.statements:
                    conn.execute(stmt, prepare=False)
                _record(conn, table, m)
        except psycopg.Error as exc:
            if on_error is None:
                raise
            on_error(m, exc)
            return applied
        applied.append(Applied(m.version, m.path.stem, len(m.statements)))
    return applied


def _record(conn: psycopg.Connection, table: sql.SQL, m: Migration) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} (version, inserted_at) VALUES (%s, now() AT TIME ZONE 'utc')").format(table),
        (m.version,),
    )


def ordered_modules(migrations_ex: Path) -> list[str]:
    """Module names in the order of Realtime.Tenants.Migrations' @migrations list."""
    text = migrations_ex.read_text(encoding="utf-8")
    block = text[text.index("@migrations [") :]
    return [m.group(2) for m in re.finditer(r"\{([0-9_]+),\s*(\w+)\}", block[: block.index("]")])]

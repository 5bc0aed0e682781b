"""Loads and validates the organization config before any construct is built.

Errors come back as `ConfigError`, one line per refused value, each naming the field path, the
value given, the rule and the fix; `app.py` prints them and exits non-zero before anything is
written, so a bad config never reaches CloudFormation.
"""

from __future__ import annotations

import difflib
import json
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from config import naming, yamlio
from config.model import PUBLIC_DEMO_VALUES, OrgConfig, Problem, Problems

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
EXAMPLE = "see config/default.yaml for a working example"


class ConfigError(Exception):
    """The config cannot be deployed; the message is meant for the person who wrote it."""


SHOWN_CHARACTERS = 160


def _show(value: Any) -> str:
    """The value on one line (control characters escaped), shortened when long."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        shown = repr(value)
    else:
        try:
            shown = json.dumps(value, default=str)
        except ValueError:
            shown = repr(value)
    return shown if len(shown) <= SHOWN_CHARACTERS else f"{shown[:SHOWN_CHARACTERS]}... ({len(shown)} characters)"


# Keys and values from the file may hold control characters; one problem stays one line.
_ESCAPE_CONTROL = {c: repr(chr(c))[1:-1] for c in range(32)}


def line(source: str, path: str, value: Any, rule: str, fix: str) -> str:
    return f"{source}: {path or '(top level)'}: {_show(value)} given; {rule}; fix: {fix}".translate(_ESCAPE_CONTROL)


def _demo_values(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [hit for k, v in node.items() for hit in _demo_values(v, f"{path}.{k}" if path else str(k))]
    if isinstance(node, list):
        return [hit for i, v in enumerate(node) for hit in _demo_values(v, f"{path}.{i}")]
    if isinstance(node, str) and any(demo in node for demo in PUBLIC_DEMO_VALUES):
        return [(path, node)]
    return []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside `Model`, `Model | None`, `list[Model]` or `dict[str, Model]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found:
            return found
    return None


def _field_at(loc: tuple[Any, ...]) -> FieldInfo | None:
    """The model field an error location ends at (dict keys and list indexes step through)."""
    model: type[BaseModel] | None = OrgConfig
    info = None
    for part in loc:
        if isinstance(part, str) and model is not None and part in model.model_fields:
            info = model.model_fields[part]
            model = _model_of(info.annotation)
    return info


def _translate(err: ErrorDetails) -> tuple[str, Any, str, str]:
    """(path, value, rule, fix) for one pydantic error, in the same shape as `Problem`."""
    loc = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
    path = ".".join(str(p) for p in loc)
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    info = _field_at(loc)
    why = f" ({info.description})" if info is not None and info.description else ""
    example = info.examples[0] if info is not None and info.examples else None

    error = ctx.get("error")
    if isinstance(error, Problem):
        return ".".join(p for p in (path, error.field) if p), error.value, error.rule, error.fix
    if kind == "extra_forbidden":
        parent = _field_at(loc[:-1])
        model = _model_of(parent.annotation) if parent is not None else OrgConfig
        known = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {close[0]}?" if close else f"remove it; known keys here: {', '.join(known)}"
        return path, loc[-1], "unknown key (a misspelt switch would otherwise be ignored)", fix
    if kind == "missing":
        return path, None, f"a required value{why}", f"add {loc[-1]}: ... ({EXAMPLE})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()))
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        return path, value, f"must be {words} {bound}{why}", f"set it to {words} {bound}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return path, value, "must be a whole number", "write digits without quotes, units or decimals, e.g. 3"
    if kind in ("float_parsing", "float_type"):
        return path, value, "must be a number", "write e.g. 0.1, without quotes"
    if kind in ("bool_parsing", "bool_type"):
        return path, value, "must be true or false", "write true or false, without quotes"
    if kind in ("string_type",):
        return path, value, "must be text", 'quote it in YAML, e.g. "value"'
    if kind == "string_pattern_mismatch":
        return path, value, f"does not match {ctx['pattern']}{why}", f"e.g. {example}" if example else EXAMPLE
    if kind in ("string_too_short", "string_too_long"):
        limit = ctx.get("min_length", ctx.get("max_length"))
        words = "at least" if kind == "string_too_short" else "at most"
        return path, value, f"must be {words} {limit} characters{why}", f"use {words} {limit} characters"
    if kind in ("too_short", "too_long"):
        limit = ctx.get("min_length", ctx.get("max_length"))
        words = "at least" if kind == "too_short" else "at most"
        return path, value, f"needs {words} {limit} entries{why}", f"list {words} {limit}"
    if kind == "literal_error":
        return path, value, "not one of the supported values", f"one of {ctx['expected']}"
    if kind in ("list_type", "tuple_type"):
        return path, value, "must be a list", "write [a, b] or one '- item' per line"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return path, value, "must be a mapping of keys to values", EXAMPLE
    if kind.startswith("ip_v4"):
        return path, value, "not an IPv4 network in CIDR notation with the host bits zero", "e.g. 10.40.0.0/16"
    return path, value, err["msg"].removeprefix("Value error, "), EXAMPLE


def parse_config(raw: Any, *, source: str = "config") -> OrgConfig:
    if not isinstance(raw, dict):
        raise ConfigError(
            line(
                source,
                "",
                type(raw).__name__,
                "the top level must be a mapping",
                "start from config/default.yaml: project, organization, environments, pipeline",
            )
        )
    demo = _demo_values(raw)
    if demo:
        raise ConfigError(
            "\n".join(
                line(
                    source,
                    path,
                    value,
                    "carries a public demo value from Supabase's .env.example",
                    "remove it (secrets are generated in Secrets Manager, never written in config)",
                )
                for path, value in demo
            )
        )
    try:
        cfg = OrgConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            error = (err.get("ctx") or {}).get("error")
            if isinstance(error, Problems):
                base = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
                lines += [
                    line(source, ".".join(p for p in (base, pr.field) if p), pr.value, pr.rule, pr.fix)
                    for pr in error.problems
                ]
            else:
                lines.append(line(source, *_translate(err)))
        raise ConfigError("\n".join(dict.fromkeys(lines))) from None
    problems = naming.check_derived_names(cfg)
    if problems:
        raise ConfigError("\n".join(line(source, p.field, p.value, p.rule, p.fix) for p in problems))
    return cfg


def load_config(path: str | Path | None = None) -> OrgConfig:
    file = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = yamlio.load(file.read_text())
    except FileNotFoundError:
        raise ConfigError(
            line(str(file), "", str(file), "no such config file", "pass -c config=PATH (or CONFIG=PATH to make)")
        ) from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise ConfigError(
            line(
                str(file), "", str(file), f"cannot be read as text ({type(exc).__name__})", "pass a readable YAML file"
            )
        ) from None
    except yamlio.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f"line {where.line + 1}, column {where.column + 1}" if where else "the file"
        raise ConfigError(
            line(
                str(file),
                "",
                at,
                f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                "fix the syntax there (indentation, a missing ':' or an unclosed quote or bracket)",
            )
        ) from None
    return parse_config(raw, source=str(file))

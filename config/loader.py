"""Loads and validates the organization config before any construct is built.

Errors come back as `ConfigError`, one line per problem, each naming the field and the fix;
`app.py` prints them and exits non-zero, so a bad config never reaches CloudFormation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.model import PUBLIC_DEMO_VALUES, OrgConfig

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")


class ConfigError(Exception):
    """The config cannot be deployed; the message is meant for the person who wrote it."""


def _demo_values(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [hit for k, v in node.items() for hit in _demo_values(v, f"{path}.{k}" if path else str(k))]
    if isinstance(node, list):
        return [hit for i, v in enumerate(node) for hit in _demo_values(v, f"{path}.{i}")]
    if isinstance(node, str) and any(demo in node for demo in PUBLIC_DEMO_VALUES):
        return [f"{path}: carries a public demo value from Supabase's .env.example; fix: remove it "
                "(secrets are generated in Secrets Manager, never written in config)"]
    return []


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("function-after"))


def parse_config(raw: Any, *, source: str = "config") -> OrgConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (project, organization, environments, pipeline)")
    problems = _demo_values(raw)
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    try:
        cfg = OrgConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = _location(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key; fix: remove it or correct its spelling"
            elif err["type"] == "missing":
                message = "required value is missing; fix: add it"
            lines.append(f"{source}: {where}: {message}" if where else f"{source}: {message}")
        raise ConfigError("\n".join(lines)) from None
    _check_derived_names(cfg, source)
    return cfg


def _check_derived_names(cfg: OrgConfig, source: str) -> None:
    """S3 bucket names are derived from project, environment, account and region: keep them legal."""
    from config import naming

    problems = []
    for env_name, env in cfg.environments.items():
        names = [
            naming.storage_bucket(cfg, env_name), naming.replica_bucket(cfg, env_name),
            naming.velero_bucket(cfg, env_name), naming.velero_replica_bucket(cfg, env_name),
            naming.access_log_bucket(cfg, env_name, env.region), naming.access_log_bucket(cfg, env_name, env.dr_region),
        ]
        too_long = [n for n in names if len(n) > 63]
        if too_long:
            problems.append(
                f"{source}: environments.{env_name}: bucket name {too_long[0]} is {len(too_long[0])} characters, "
                "S3 allows 63; fix: shorten project or the environment name"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def load_config(path: str | Path | None = None) -> OrgConfig:
    file = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file; fix: pass -c config=PATH (or CONFIG=PATH to make)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    return parse_config(raw, source=str(file))

"""YAML in and out through libyaml, PyYAML's C binding.

`yaml.safe_load` and `yaml.safe_dump` run PyYAML's pure-Python scanner and emitter: on an
environment's Supabase manifests, loading takes nine times and dumping five times as long as
through libyaml. With every chart's manifests read and written several times per run that was
about 30 CPU-seconds of `make test`. The C classes resolve and construct
exactly as the safe ones do (same SafeConstructor and SafeRepresenter). PyYAML built without
libyaml (no wheel for the platform, no libyaml headers) still works, only slower. ruff's banned-api
rule (pyproject.toml) points every other call here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
YAMLError = yaml.YAMLError


def load(stream: str | bytes) -> Any:
    return yaml.load(stream, Loader=Loader)


def load_all(stream: str | bytes, *, loader: type[yaml.SafeLoader] = Loader) -> list[Any]:
    return list(yaml.load_all(stream, Loader=loader))


def dump(data: Any, **options: Any) -> str:
    return yaml.dump(data, Dumper=Dumper, **options)


def dump_all(documents: Iterable[Any], **options: Any) -> str:
    return yaml.dump_all(documents, Dumper=Dumper, **options)

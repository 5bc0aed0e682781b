"""Each environment's cdk8s charts rendered once per test session, for every test that reads them.

`k8s_charts.environment.render_manifests` builds a cdk8s app per call (one to two seconds an
environment), and a dozen test modules on both pytest-xdist workers read the same environments.
`manifests(env)` renders an environment in the first process that asks (tests/shared.once) and
stores the objects as JSON, which is what cdk8s's `Chart.to_json()` produced; every call returns
fresh objects, so a test may change what it gets without touching another test's copy.

`supabase(env)` is the same render cut to the three Supabase charts, which is what
`render_supabase` returns for the configuration as written (one app builds the same charts alone
or beside the others). Tests of the rendering itself (the manifest writer, the chart units, a
config changed in the test) call the render functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from config import load_config
from k8s_charts.environment import render_manifests
from k8s_charts.supabase.chart import SUPABASE_CHART_IDS
from tests import shared
from tests.conftest import ORG_CONFIGS

_FILE = "manifests.json"


def manifests(env: str, org: str = "default") -> dict[str, list[dict[str, Any]]]:
    """Chart id -> its Kubernetes objects, as `render_manifests(load_config(ORG_CONFIGS[org]), env)`."""
    config = ORG_CONFIGS[org]

    def produce(directory: Path) -> None:
        (directory / _FILE).write_text(json.dumps(render_manifests(load_config(config), env)))

    stored = shared.once(shared.key_of("cdk8s-manifests", str(config), env), produce)
    return json.loads((stored / _FILE).read_text())


def supabase(env: str, org: str = "default") -> dict[str, list[dict[str, Any]]]:
    """The Supabase charts' objects, as `render_supabase(cfg, env, from_config(cfg, env))`."""
    rendered = manifests(env, org)
    return {chart: rendered[chart] for chart in SUPABASE_CHART_IDS}

"""The component catalog is the one place a port is written.

The proof edits the catalog itself: a copy of `k8s_charts` with one component's port changed
renders the Supabase and mesh manifests in a fresh interpreter, and every occurrence of the old
port (the Deployment, Service, probes, the callers' URLs, Kong's upstream, the NetworkPolicies,
the Istio VirtualService and AuthorizationPolicy) must have moved, and nothing else.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.loader import load_config
from k8s_charts import mesh
from k8s_charts.aws_values import from_config
from k8s_charts.catalog import CATALOG, callers
from k8s_charts.supabase import kong
from k8s_charts.supabase.props import SupabaseProps
from tests import rendered

ROOT = Path(__file__).resolve().parents[2]
# Content hashes of rendered config (Kong's declarative config) legitimately change with it.
_HASH_ANNOTATION = re.compile(r'"supabase\.io/[a-z-]+-sha256": "[0-9a-f]{64}"')

MESH_CIDR = "10.0.0.0/16"
RENDER = f"""
import json, sys
from config.loader import load_config
from k8s_charts import mesh
from k8s_charts.aws_values import from_config
from k8s_charts.supabase.chart import render_supabase

cfg = load_config(sys.argv[1])
env = sys.argv[2]
charts = render_supabase(cfg, env, from_config(cfg, env))
charts["mesh"] = mesh.mesh_objects(vpc_cidr="{MESH_CIDR}")
sys.stdout.write(json.dumps(charts, sort_keys=True, indent=1))
"""


def _normalized(charts_json: str) -> str:
    return _HASH_ANNOTATION.sub('"hash": "-"', charts_json)


def _render(checkout: Path, env_name: str) -> str:
    """Render the charts of `checkout` in a fresh interpreter (`python -c` imports from its cwd)."""
    out = subprocess.run(
        [sys.executable, "-c", RENDER, "config/default.yaml", env_name],
        capture_output=True,
        text=True,
        cwd=checkout,
        check=True,
    ).stdout
    return _normalized(out)


@functools.cache
def _render_here(env_name: str) -> str:
    """What `_render` gives for this checkout, from the session's render of the same charts."""
    charts = {**rendered.supabase(env_name), "mesh": mesh.mesh_objects(vpc_cidr=MESH_CIDR)}
    return _normalized(json.dumps(charts, sort_keys=True, indent=1))


@pytest.mark.parametrize(("component", "new_port"), [("meta", 8181), ("auth", 9898)])
def test_one_edit_in_the_catalog_moves_every_reference(tmp_path: Path, component: str, new_port: int) -> None:
    old_port = CATALOG[component].port
    # The checkout with its own k8s_charts: charts find files beside them (functions/, database/).
    for entry in ROOT.iterdir():
        if entry.name not in {"k8s_charts", ".git"}:
            (tmp_path / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "k8s_charts", tmp_path / "k8s_charts", ignore=shutil.ignore_patterns("__pycache__"))
    catalog = tmp_path / "k8s_charts" / "catalog.py"
    text = catalog.read_text()
    line = f'Component(name="{component}", port={old_port}'
    assert text.count(line) == 1, f"catalog entry for {component} not found as {line!r}"
    catalog.write_text(text.replace(line, f'Component(name="{component}", port={new_port}'))

    before = _render_here("dev")
    after = _render(tmp_path, "dev")
    assert str(new_port) not in before
    # Every reference moved (a literal left anywhere would keep the old port in `after`) ...
    assert after == before.replace(str(old_port), str(new_port))
    # ... and the references are many: container, Service, probes, Kong, policies, mesh.
    assert after.count(str(new_port)) >= 8


def test_routes_and_calls_agree() -> None:
    """Kong's callees are exactly the components its routes reach, so no policy admits an unused path."""
    cfg = load_config(ROOT / "config" / "default.yaml")
    props = SupabaseProps.from_config(cfg, "prod", from_config(cfg, "prod"))
    assert {r.component for r in kong.routes(props)} == set(CATALOG["kong"].calls)


def test_callers_are_the_inverse_of_calls() -> None:
    for name in CATALOG:
        assert set(callers(name)) == {c.name for c in CATALOG.values() if name in c.calls}
    assert set(callers("pgbouncer")) == {"rest", "rest-ro", "storage", "functions"}


def test_rendered_services_serve_the_catalog_ports() -> None:
    objects = [o for objs in rendered.supabase("prod").values() for o in objs]
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    for c in CATALOG.values():
        targets = {p["targetPort"] for p in services[c.name]["spec"]["ports"]}
        assert c.port in targets, (c.name, targets)
        if c.metrics_port is not None:
            assert c.metrics_port in targets, (c.name, targets)

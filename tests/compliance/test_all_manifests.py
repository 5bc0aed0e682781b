"""Every Kubernetes object every environment applies, from every chart, checked together.

Chart-specific suites go deeper; this one makes sure nothing escapes: built-in objects
validate strictly against the cluster's Kubernetes version, custom resources belong to a
CRD whose schema another suite validates, every image is pinned, names are unique, and
checkov (kubernetes) passes on the charts outside the Supabase suite's own scan.
"""

from __future__ import annotations

from collections import Counter

import pytest

from scripts.images import images
from tests import kubernetes_schema
from tests.compliance import checkov_kubernetes
from tests.conftest import ENVIRONMENTS
from tests.rendered import manifests

ENVS = ENVIRONMENTS
# Custom resources and the suite that validates their schema.
CUSTOM_RESOURCE_SUITES = {
    "external-secrets.io/v1": "test_supabase_manifests.py, test_base_manifests.py (JSON schemas from the CRDs)",
    "monitoring.coreos.com/v1": "test_monitoring_manifests.py (@kubernetes-models/prometheus-operator)",
    "monitoring.coreos.com/v1alpha1": "test_monitoring_manifests.py (@kubernetes-models/prometheus-operator)",
    "argoproj.io/v1alpha1": "test_rollouts.py (@kubernetes-models/argo-rollouts)",
    "templates.gatekeeper.sh/v1": "test_gatekeeper.py (schema from the Gatekeeper CRDs)",
    "constraints.gatekeeper.sh/v1beta1": "test_gatekeeper.py (schema from the Gatekeeper CRDs)",
    "security.istio.io/v1": "test_istio.py (@kubernetes-models/istio)",
    "networking.istio.io/v1": "test_istio.py (@kubernetes-models/istio)",
    "velero.io/v1": "test_base_manifests.py (schema from the Velero CRD)",
    "autoscaling.k8s.io/v1": "test_cost_views.py (schema from the vendored VPA CRD)",
}


@pytest.fixture(scope="module")
def rendered():
    return {env: manifests(env) for env in ENVS}


def objects(rendered, env):
    return [obj for objs in rendered[env].values() for obj in objs]


@pytest.mark.parametrize("env", ENVS)
def test_builtin_objects_validate_strictly(rendered, cfg, env):
    version = f"{cfg.environments[env].cluster.kubernetes_version}.0"
    builtin = [o for o in objects(rendered, env) if o["apiVersion"] not in CUSTOM_RESOURCE_SUITES]
    assert len(builtin) > 100
    for obj in builtin:
        kubernetes_schema.validate(obj, version, strict=True)


@pytest.mark.parametrize("env", ENVS)
def test_custom_resources_have_a_schema_suite(rendered, env):
    api_versions = {o["apiVersion"] for o in objects(rendered, env)}
    unknown_custom = {
        v
        for v in api_versions
        if "." in v.split("/")[0] and not v.endswith(".k8s.io/v1") and v not in CUSTOM_RESOURCE_SUITES
    }
    assert not unknown_custom, f"add a schema test for {unknown_custom}"


@pytest.mark.parametrize("env", ENVS)
def test_names_are_unique(rendered, env):
    keys = Counter(
        (o["apiVersion"].split("/")[0], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in objects(rendered, env)
    )
    assert not [k for k, n in keys.items() if n > 1]


@pytest.mark.parametrize("env", ENVS)
def test_every_image_is_pinned(rendered, env):
    found = images(objects(rendered, env))
    assert len(found) >= 15
    for image in found:
        name, _, tag = image.rpartition(":")
        assert "@sha256:" in image or (name and tag and tag != "latest" and "/" not in tag), image


@pytest.fixture(scope="module")
def checkov_results():
    """checkov over every chart but the Supabase ones (test_supabase_manifests.py reads those), in the
    session's one checkov run (tests/compliance/checkov_kubernetes.py)."""
    return checkov_kubernetes.results(checkov_kubernetes.OTHERS)


def test_checkov_kubernetes_passes_on_every_other_chart(checkov_results, report):
    failed = [(c["check_id"], c["file_path"], c["resource"]) for c in checkov_results["failed_checks"]]
    assert not failed, failed
    skipped = checkov_results["skipped_checks"]
    vague = [c for c in skipped if len((c.get("check_result") or {}).get("suppress_comment") or "") < 30]
    assert not vague, [(c["check_id"], c["resource"]) for c in vague]
    by_id = Counter(c["check_id"] for c in skipped)
    assert len(checkov_results["passed_checks"]) > 200
    report(
        "checkov kubernetes (charts besides supabase)",
        f"{len(checkov_results['passed_checks'])} passed, 0 failed, {len(skipped)} skipped ("
        + ", ".join(f"{k}={v}" for k, v in sorted(by_id.items()))
        + ")",
    )

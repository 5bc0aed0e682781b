"""k8s_charts.base: every object validates strictly against Kubernetes 1.35 or its CRD schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from config import yamlio
from k8s_charts.base import (
    BACKUP_EXCLUDED_NAMESPACES,
    CLUSTER_CHART_ID,
    CONTROLLERS_CHART_ID,
    FARGATE_LOGGING_NAMESPACE,
    NAMESPACES,
)
from tests import kubernetes_schema
from tests.conftest import ENVIRONMENTS
from tests.rendered import manifests

ENVS = ENVIRONMENTS
K8S_VERSION = "1.35.0"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "k8s_charts" / "base" / "schemas"
CRD_SCHEMAS = {
    ("external-secrets.io/v1", "ClusterSecretStore"): "clustersecretstore.external-secrets.io_v1.json",
    ("velero.io/v1", "Schedule"): "schedule.velero.io_v1.json",
}


@pytest.fixture(scope="module")
def rendered():
    return {env: manifests(env) for env in ENVS}


def _base_objects(rendered, env):
    return rendered[env][CLUSTER_CHART_ID] + rendered[env][CONTROLLERS_CHART_ID]


def _schema(key):
    return json.loads((SCHEMA_DIR / CRD_SCHEMAS[key]).read_text())


@pytest.mark.parametrize("env", ENVS)
def test_every_base_object_validates_strictly(rendered, env):
    for obj in _base_objects(rendered, env):
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_SCHEMAS:
            jsonschema.validate(obj, _schema(key))
        else:
            kubernetes_schema.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    "key,path",
    [
        (("external-secrets.io/v1", "ClusterSecretStore"), ("spec", "provider", "aws")),
        (("velero.io/v1", "Schedule"), ("spec", "template")),
    ],
)
def test_crd_schemas_reject_a_misspelt_field(rendered, key, path):
    obj = copy.deepcopy(next(o for o in _base_objects(rendered, "prod") if (o["apiVersion"], o["kind"]) == key))
    jsonschema.validate(obj, _schema(key))
    target = obj
    for part in path:
        target = target[part]
    target["regoin" if "aws" in path else "snapshotVolume"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, _schema(key))


def test_strict_core_validation_rejects_a_misspelt_field(rendered):
    storage_class = copy.deepcopy(next(o for o in rendered["prod"][CLUSTER_CHART_ID] if o["kind"] == "StorageClass"))
    storage_class["volumeBindingMod"] = "Immediate"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(storage_class, K8S_VERSION, strict=True)


@pytest.mark.parametrize("env", ENVS)
def test_namespaces_carry_pod_security_levels(rendered, cfg, env):
    namespaces = {o["metadata"]["name"]: o for o in rendered[env][CLUSTER_CHART_ID] if o["kind"] == "Namespace"}
    fargate = cfg.environments[env].cluster.fargate_namespaces
    expected = {n.name: n.level for n in NAMESPACES} | {n: "restricted" for n in fargate}
    if fargate:
        # Fargate's log router reads its ConfigMap from there (k8s_charts/base).
        expected[FARGATE_LOGGING_NAMESPACE.name] = FARGATE_LOGGING_NAMESPACE.level
    assert set(namespaces) == set(expected)
    for name, level in expected.items():
        labels = namespaces[name]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == level
        assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.35"
        assert labels["pod-security.kubernetes.io/audit"] == "restricted"
        if level != "restricted":
            assert len(namespaces[name]["metadata"]["annotations"]["platform/pod-security-reason"]) > 20
    # The Supabase bootstrap chart owns that namespace; declaring it twice would let either chart delete it.
    assert "supabase" not in namespaces


@pytest.mark.parametrize("env", ENVS)
def test_default_storage_class_is_encrypted_gp3(rendered, cfg, env):
    [sc] = [o for o in rendered[env][CLUSTER_CHART_ID] if o["kind"] == "StorageClass"]
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"]["type"] == "gp3" and sc["parameters"]["encrypted"] == "true"
    assert sc["reclaimPolicy"] == ("Retain" if cfg.environments[env].production else "Delete")


@pytest.mark.parametrize("env", ENVS)
def test_cluster_secret_store_uses_pod_identity_of_the_operator(rendered, cfg, env):
    [store] = [o for o in rendered[env][CONTROLLERS_CHART_ID] if o["kind"] == "ClusterSecretStore"]
    aws = store["spec"]["provider"]["aws"]
    assert store["metadata"]["name"] == "aws-secrets-manager"
    assert aws["service"] == "SecretsManager" and aws["region"] == cfg.environments[env].region
    # No static keys, no role to assume: credentials are the operator's own Pod Identity.
    assert "auth" not in aws and "role" not in aws


@pytest.mark.parametrize("env", ENVS)
def test_velero_schedules_follow_config(rendered, cfg, env):
    cluster = cfg.environments[env].cluster
    schedules = {o["metadata"]["name"]: o for o in rendered[env][CONTROLLERS_CHART_ID] if o["kind"] == "Schedule"}
    assert set(schedules) == ({"daily", "hourly"} if cluster.velero_hourly else {"daily"})
    daily = schedules["daily"]["spec"]
    assert daily["template"]["ttl"] == f"{24 * cluster.velero_daily_retention_days}h0m0s"
    assert set(BACKUP_EXCLUDED_NAMESPACES) <= set(daily["template"]["excludedNamespaces"])
    assert all(s["metadata"]["namespace"] == "velero" for s in schedules.values())


def test_manifest_writer_writes_one_yaml_per_chart(rendered, cfg, tmp_path, monkeypatch):
    from scripts import manifests as writer

    # The writer's own job is the layout and the YAML; the charts it writes are the session's
    # render of the same function (tests/rendered.py), not a second build of every environment.
    monkeypatch.setattr(writer, "render_manifests", lambda _cfg, env: manifests(env))
    written = writer.write_manifests(cfg, tmp_path)
    assert {p.parent.name for p in written} == set(cfg.environments)
    prod = {p.stem: p for p in written if p.parent.name == "prod"}
    assert set(prod) == set(rendered["prod"])
    docs = list(yamlio.load_all(prod[CONTROLLERS_CHART_ID].read_text()))
    assert [d["kind"] for d in docs] == [o["kind"] for o in rendered["prod"][CONTROLLERS_CHART_ID]]

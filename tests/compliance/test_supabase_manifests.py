"""Every Supabase object is valid for Kubernetes 1.35 (strict), ExternalSecrets match the
documented external-secrets.io/v1 CRD, and checkov finds nothing beyond reasoned skips."""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest

from k8s_charts.supabase.chart import SUPABASE_CHART_IDS
from tests import kubernetes_schema
from tests.compliance import checkov_kubernetes
from tests.conftest import ENVIRONMENTS
from tests.rendered import manifests

# Waits for the session's checkov scan of every chart.
pytestmark = pytest.mark.long

ENVS = ENVIRONMENTS

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# Written from the external-secrets.io/v1 ExternalSecret CRD reference (ESO 0.17+ / 1.x):
# closed objects, so a misspelt field is an error as it is for the API server's schema.
REMOTE_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["key"],
    "properties": {
        "key": {"type": "string", "minLength": 1},
        "property": {"type": "string"},
        "version": {"type": "string"},
        "conversionStrategy": {"enum": ["Default", "Unicode"]},
        "decodingStrategy": {"enum": ["Auto", "Base64", "Base64URL", "None"]},
        "metadataPolicy": {"enum": ["None", "Fetch"]},
        "nullBytePolicy": {"enum": ["Ignore", "Fail"]},
    },
}
EXTERNAL_SECRET_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "external-secrets.io/v1"},
        "kind": {"const": "ExternalSecret"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253},
                "namespace": {"type": "string"},
                "labels": _STR_MAP,
                "annotations": _STR_MAP,
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["secretStoreRef", "target"],
            "properties": {
                "refreshInterval": {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"},
                "refreshPolicy": {"enum": ["CreatedOnce", "Periodic", "OnChange"]},
                "secretStoreRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}},
                },
                "target": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                        "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]},
                        "immutable": {"type": "boolean"},
                        "template": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "engineVersion": {"enum": ["v1", "v2"]},
                                "mergePolicy": {"enum": ["Replace", "Merge"]},
                                "metadata": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "labels": _STR_MAP,
                                        "annotations": _STR_MAP,
                                        "finalizers": {"type": "array", "items": {"type": "string"}},
                                    },
                                },
                                "data": _STR_MAP,
                                "templateFrom": {"type": "array"},
                            },
                        },
                    },
                },
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["secretKey", "remoteRef"],
                        "properties": {
                            "secretKey": {"type": "string", "pattern": r"^[-._a-zA-Z0-9]+$"},
                            "remoteRef": REMOTE_REF,
                            "sourceRef": {"type": "object"},
                        },
                    },
                },
                "dataFrom": {"type": "array"},
            },
        },
    },
}


@pytest.fixture(scope="module", params=ENVS)
def objects(request):
    rendered = manifests(request.param)
    return request.param, [o for chart in SUPABASE_CHART_IDS for o in rendered[chart]]


def test_builtin_kinds_validate_strictly(objects):
    _, objs = objects
    checked = 0
    for obj in objs:
        if obj["apiVersion"].startswith("external-secrets.io"):
            continue
        kubernetes_schema.validate(obj, "1.35.0", strict=True)
        checked += 1
    assert checked > 50


def test_external_secrets_match_crd_schema(objects):
    _, objs = objects
    ess = [o for o in objs if o["kind"] == "ExternalSecret"]
    assert len(ess) >= 10
    for es in ess:
        kubernetes_schema.jsonschema_validate(es, EXTERNAL_SECRET_SCHEMA)


@pytest.mark.parametrize(
    "path,bad",
    [
        (("spec", "secretStoreRef"), {"name": "aws-secrets-manager", "knd": "ClusterSecretStore"}),
        (("spec", "target", "template", "engineVersion"), "v3"),
        (
            (
                "spec",
                "refreshIntervall",
            ),
            "1h",
        ),
    ],
)
def test_schema_rejects_misspelt_fields(objects, path, bad):
    _, objs = objects
    es = copy.deepcopy(next(o for o in objs if o["kind"] == "ExternalSecret"))
    node = es
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(es, EXTERNAL_SECRET_SCHEMA)


def test_strict_validation_catches_typos(objects):
    _, objs = objects
    deploy = copy.deepcopy(next(o for o in objs if o["kind"] == "Deployment"))
    deploy["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deploy, "1.35.0", strict=True)


@pytest.fixture(scope="module")
def checkov_results():
    """checkov over the Supabase charts of one environment of each kind, in the session's one checkov run
    (tests/compliance/checkov_kubernetes.py: it costs seconds per invocation)."""
    return checkov_kubernetes.results(checkov_kubernetes.SUPABASE)


def test_checkov_passes_with_reasoned_skips(checkov_results, report):
    failed = [(c["check_id"], c["file_path"], c["resource"]) for c in checkov_results["failed_checks"]]
    assert not failed, failed
    skipped = checkov_results["skipped_checks"]
    by_id: dict[str, int] = {}
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 30, (check["check_id"], check["resource"], reason)
        by_id[check["check_id"]] = by_id.get(check["check_id"], 0) + 1
    report(
        "checkov kubernetes (supabase charts)",
        f"{len(checkov_results['passed_checks'])} passed, 0 failed, {len(skipped)} skipped {by_id}",
    )
    assert len(checkov_results["passed_checks"]) > 1500
    assert set(by_id) <= {"CKV_K8S_43", "CKV_K8S_35"}

"""Each cluster rule fails on a broken fixture and passes once it is fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8s_charts.policies import POLICIES, constraint, constraint_template
from stacks.platform_stack import CRD_ESTABLISHED_JSON_PATH
from tests.deploy.apiserver import HELM_CHART, KUBERNETES_RESOURCE, OBJECT_VALUE, manifest_objects
from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.rules.cluster import (
    gatekeeper_admits,
    helm_rollback_within_lambda,
    kind_served,
    namespace_exists,
    pod_security_admits,
)

CLUSTER = {"Resources": {"Cluster": {"Type": "AWS::EKS::Cluster", "Properties": {"Version": "1.35"}}}}
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
HARDENED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def manifest(*objects: dict[str, Any], depends_on: tuple[str, ...] = ()) -> dict[str, Any]:
    # A token inside the JSON, as CDK renders manifests that hold ARNs.
    text = json.dumps(list(objects))
    parts: list[Any] = [text]
    if "TOKEN" in text:
        head, _, tail = text.partition("TOKEN")
        parts = [head, {"Ref": "AWS::Region"}, tail]
    return {
        "Type": KUBERNETES_RESOURCE,
        "DependsOn": list(depends_on),
        "Properties": {"Manifest": {"Fn::Join": ["", parts]}},
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def config_map(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": ns},
        "data": {"region": "TOKEN"},
    }


def deployment(
    ns: str, *, security_context: dict[str, Any], image: str = "docker.io/kong/kong:3.9.1"
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "kong", "app.kubernetes.io/part-of": "supabase"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "kong", "namespace": ns, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "kong", "image": image, "securityContext": security_context}]},
            },
        },
    }


def crd_wait(name: str, json_path: str, *, after: str) -> dict[str, Any]:
    return {
        "Type": OBJECT_VALUE,
        "DependsOn": [after],
        "Properties": {
            "ObjectType": "customresourcedefinition",
            "ObjectName": name,
            "JsonPath": json_path,
            "TimeoutSeconds": 300,
        },
    }


def assembly(resources: dict[str, Any], *, name: str = "fixture") -> CloudAssembly:
    return CloudAssembly.from_templates(
        {"cluster": CLUSTER, "platform": {"Resources": resources}},
        name=name,
        cluster={"stage": "dev"},
        platform={"stage": "dev", "depends_on": ("cluster",)},
    )


def test_manifest_with_tokens_parses():
    [obj] = manifest_objects(manifest(config_map("a")))
    assert obj["data"]["region"] == "CFN-TOKEN"


def test_object_in_a_namespace_created_concurrently_is_a_finding():
    concurrent = assembly({"Ns": manifest(namespace("app")), "App": manifest(config_map("app"))})
    assert namespace_exists(concurrent).findings
    ordered = assembly({"Ns": manifest(namespace("app")), "App": manifest(config_map("app"), depends_on=("Ns",))})
    outcome = namespace_exists(ordered)
    assert outcome.checked and not outcome.findings
    same_manifest = assembly({"App": manifest(namespace("app"), config_map("app"))})
    assert not namespace_exists(same_manifest).findings
    namespace_after_use = assembly({"App": manifest(config_map("app"), namespace("app"))})
    assert namespace_exists(namespace_after_use).findings


def test_helm_release_into_a_missing_namespace_is_a_finding():
    release = {"Type": HELM_CHART, "Properties": {"Release": "x", "Chart": "x", "Namespace": "tools"}}
    assert namespace_exists(assembly({"Chart": release})).findings
    created = dict(release, DependsOn=["Ns"])
    assert not namespace_exists(assembly({"Ns": manifest(namespace("tools")), "Chart": created})).findings


GATEKEEPER = {
    "Type": HELM_CHART,
    "Properties": {"Release": "gatekeeper", "Chart": "gatekeeper", "Namespace": "kube-system"},
}


def _template_and_constraint():
    policy = POLICIES[0]
    return policy, constraint_template(policy), constraint(policy, enforce=True)


def test_constraint_in_the_manifest_of_its_template_is_a_finding():
    policy, template, constraint_obj = _template_and_constraint()
    plan = assembly(
        {"Gatekeeper": GATEKEEPER, "Policies": manifest(template, constraint_obj, depends_on=("Gatekeeper",))},
        name="default",
    )
    # The template's own kind is served by the gatekeeper release; only the constraint is refused.
    findings = kind_served(plan).findings
    assert len(findings) == 1 and policy.kind in findings[0]


def test_constraint_after_a_wait_for_its_established_crd_is_served():
    policy, template, constraint_obj = _template_and_constraint()
    crd = f"{policy.kind.lower()}.constraints.gatekeeper.sh"

    def split(json_path: str) -> CloudAssembly:
        return assembly(
            {
                "Gatekeeper": GATEKEEPER,
                "Templates": manifest(template, depends_on=("Gatekeeper",)),
                "Crd": crd_wait(crd, json_path, after="Templates"),
                "Constraints": manifest(constraint_obj, depends_on=("Crd",)),
            },
            name="default",
        )

    outcome = kind_served(split(CRD_ESTABLISHED_JSON_PATH))
    assert outcome.checked and not outcome.findings
    # Non-empty while the CRD is still Installing: the handler would stop waiting too early.
    assert kind_served(split('.status.conditions[?(@.type=="Established")].status')).findings
    no_wait = assembly(
        {
            "Gatekeeper": GATEKEEPER,
            "Templates": manifest(template, depends_on=("Gatekeeper",)),
            "Constraints": manifest(constraint_obj, depends_on=("Templates",)),
        },
        name="default",
    )
    assert kind_served(no_wait).findings


def test_crd_kind_is_served_only_after_the_manifest_installing_it():
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Cluster",
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert kind_served(assembly({"All": manifest(crd, widget)})).findings
    assert not kind_served(assembly({"Crd": manifest(crd), "W": manifest(widget, depends_on=("Crd",))})).findings
    assert kind_served(assembly({"W": manifest({**widget, "apiVersion": "example.com/v2"})})).findings


@pytest.mark.parametrize("ordered", [True, False])
def test_kinds_of_a_rendered_helm_chart_are_served_after_it(ordered):
    release = {
        "Type": HELM_CHART,
        "Properties": {"Release": "argo-rollouts", "Chart": "argo-rollouts", "Namespace": "argo-rollouts"},
    }
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"}}
    plan = assembly(
        {"Rollouts": release, "R": manifest(rollout, depends_on=("Rollouts",) if ordered else ())}, name="default"
    )
    assert bool(kind_served(plan).findings) is not ordered


def test_atomic_release_whose_rollback_outlasts_the_lambda_is_a_finding():
    def release(timeout: str) -> CloudAssembly:
        return assembly(
            {
                "Chart": {
                    "Type": HELM_CHART,
                    "Properties": {"Release": "x", "Chart": "x", "Wait": True, "Atomic": True, "Timeout": timeout},
                }
            }
        )

    assert helm_rollback_within_lambda(release("720s")).findings
    outcome = helm_rollback_within_lambda(release("6m"))
    assert outcome.checked and not outcome.findings


@pytest.mark.parametrize(
    ("context", "labels", "refused"),
    [
        ({}, RESTRICTED, True),
        ({**HARDENED, "allowPrivilegeEscalation": True}, RESTRICTED, True),
        ({**HARDENED, "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}, RESTRICTED, True),
        ({**HARDENED, "privileged": True}, {"pod-security.kubernetes.io/enforce": "baseline"}, True),
        (HARDENED, RESTRICTED, False),
        ({}, {"pod-security.kubernetes.io/enforce": "privileged"}, False),
    ],
)
def test_pod_security_level_of_the_namespace_judges_workloads(context, labels, refused):
    plan = assembly(
        {
            "Ns": manifest(namespace("app", labels)),
            "App": manifest(deployment("app", security_context=context), depends_on=("Ns",)),
        }
    )
    outcome = pod_security_admits(plan)
    assert outcome.checked and bool(outcome.findings) is refused


@pytest.mark.parametrize(
    ("image", "refused"), [("docker.io/kong/kong:latest", True), ("docker.io/kong/kong:3.9.1", False)]
)
def test_project_constraints_judge_workloads(image, refused):
    policy = next(p for p in POLICIES if p.kind == "K8sImageTagPinned")
    plan = assembly(
        {
            "Policies": manifest(constraint_template(policy), constraint(policy, enforce=True)),
            "App": manifest(deployment("app", security_context=HARDENED, image=image)),
        }
    )
    outcome = gatekeeper_admits(plan)
    assert outcome.checked and bool(outcome.findings) is refused

"""Add-on registry: pinned Helm releases in dependency order, one scoped Pod Identity role each."""

import json

import pytest
from aws_cdk import aws_iam as iam

from constructs_lib.addons import (
    argo_rollouts,
    aws_load_balancer_controller,
    cluster_autoscaler,
    external_secrets,
    kube_prometheus_stack,
    vertical_pod_autoscaler,
)
from constructs_lib.addons.base import HelmAddon
from constructs_lib.addons.registry import dependency_order

ENVS = ["dev", "staging", "prod"]
PINNED = {
    aws_load_balancer_controller.NAME: (aws_load_balancer_controller.REPOSITORY, aws_load_balancer_controller.VERSION),
    cluster_autoscaler.NAME: (cluster_autoscaler.REPOSITORY, cluster_autoscaler.VERSION),
    external_secrets.NAME: (external_secrets.REPOSITORY, external_secrets.VERSION),
    vertical_pod_autoscaler.NAME: (vertical_pod_autoscaler.REPOSITORY, vertical_pod_autoscaler.VERSION),
    kube_prometheus_stack.NAME: (kube_prometheus_stack.REPOSITORY, kube_prometheus_stack.VERSION),
    argo_rollouts.NAME: (argo_rollouts.REPOSITORY, argo_rollouts.VERSION),
}


def _charts(template, env):
    return template(env, "platform").find_resources("Custom::AWSCDK-EKS-HelmChart")


def _policy_for(template, env, service_account):
    """The managed policy attached to the role associated with `service_account`."""
    t = template(env, "platform")
    [assoc] = [a for a in t.find_resources("AWS::EKS::PodIdentityAssociation").values()
               if a["Properties"]["ServiceAccount"] == service_account]
    role_id = assoc["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    [policy] = [p for p in t.find_resources("AWS::IAM::ManagedPolicy").values()
                if {"Ref": role_id} in p["Properties"]["Roles"]]
    return policy["Properties"]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize("env", ENVS)
def test_helm_charts_pinned_with_repositories(template, env):
    charts = {c["Properties"]["Release"]: c["Properties"] for c in _charts(template, env).values()}
    for release, (repo, version) in PINNED.items():
        assert charts[release]["Repository"] == repo
        assert charts[release]["Version"] == version
    for props in charts.values():
        assert props["Version"] and props["Version"] != "latest"
        assert props.get("CreateNamespace") in (None, False)


def test_optional_controllers_follow_feature_flags(template, cfg):
    charts = {c["Properties"]["Release"] for c in _charts(template, "prod").values()}
    features = cfg.environments["prod"].features
    assert ("falco" in charts) == features.falco
    assert ({"istio-base", "istio-cni", "istiod"} <= charts) == features.istio
    assert "gatekeeper" in charts


def test_istio_releases_in_order(template):
    charts = _charts(template, "prod")
    by_release = {c["Properties"]["Release"]: (lid, c) for lid, c in charts.items()}
    istiod_deps = by_release["istiod"][1].get("DependsOn", [])
    assert by_release["istio-base"][0] in istiod_deps and by_release["istio-cni"][0] in istiod_deps


def test_controllers_wait_for_base_namespaces_and_charts_wait_for_controllers(template):
    t = template("prod", "platform")
    manifests = t.find_resources("Custom::AWSCDK-EKS-KubernetesResource")
    base_id = next(lid for lid in manifests if "chartbasecluster" in lid)
    for lid, chart in _charts(template, "prod").items():
        assert base_id in chart.get("DependsOn", []), lid
    helm_ids = set(_charts(template, "prod"))
    for lid, manifest in manifests.items():
        if lid != base_id:
            assert helm_ids <= set(manifest.get("DependsOn", [])), lid


def test_supabase_services_wait_for_bootstrap_job(template):
    t = template("prod", "platform")
    waits = t.find_resources("Custom::AWSCDK-EKS-KubernetesObjectValue")
    job_waits = {lid: w for lid, w in waits.items() if w["Properties"]["ObjectType"] == "job"}
    if not job_waits:
        pytest.skip("no chart with Jobs registered yet")
    for wait in job_waits.values():
        assert wait["Properties"]["JsonPath"] == ".status.succeeded"
    manifests = t.find_resources("Custom::AWSCDK-EKS-KubernetesResource")
    services = next(m for lid, m in manifests.items() if lid.startswith("chartsupabase") and "bootstrap" not in lid)
    assert set(job_waits) <= set(services["DependsOn"])


@pytest.mark.parametrize("env", ENVS)
def test_external_secrets_reads_only_this_environments_prefix(template, cfg, env):
    statements = _policy_for(template, env, external_secrets.SERVICE_ACCOUNT)
    read = next(s for s in statements if s["Sid"] == "ReadEnvironmentSecrets")
    assert sorted(read["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert read["Resource"].endswith(f":secret:{cfg.project}/{env}/*")
    assert all(s["Resource"] != "*" for s in statements)


def test_load_balancer_controller_mutations_are_tag_scoped(template):
    statements = {s["Sid"]: s for s in _policy_for(template, "prod", aws_load_balancer_controller.SERVICE_ACCOUNT)}
    tag = "aws:ResourceTag/elbv2.k8s.aws/cluster"
    assert statements["ModifyOwnedLoadBalancer"]["Condition"]["Null"][tag] == "false"
    assert statements["ManageOwnedSecurityGroup"]["Condition"]["Null"][tag] == "false"
    star = [sid for sid, s in statements.items() if s["Resource"] == "*"]
    assert star == ["Discover"]
    assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in statements["Discover"]["Action"])


def test_cluster_autoscaler_scales_only_owned_groups(template, cfg):
    statements = {s["Sid"]: s for s in _policy_for(template, "prod", cluster_autoscaler.SERVICE_ACCOUNT)}
    scale = statements["ScaleOwnedGroups"]
    assert scale["Condition"]["StringEquals"] == {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cfg.project}-prod": "owned"}


def test_alertmanager_publishes_only_to_alerts_topic(template):
    [statement] = _policy_for(template, "prod", kube_prometheus_stack.SERVICE_ACCOUNT)
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] != "*" and "alerts" in json.dumps(statement["Resource"])


def test_velero_scoped_to_velero_bucket(template, assembly):
    if getattr(assembly.stages["prod"], "storage", None) is None:
        pytest.skip("storage stack (velero_bucket) not wired into the stage yet")
    statements = {s["Sid"]: s for s in _policy_for(template, "prod", "velero-server")}
    assert statements["BackupObjects"]["Resource"] != "*"
    assert [sid for sid, s in statements.items() if s["Resource"] == "*"] == ["DescribeVolumes"]


def test_dependency_order_and_errors():
    a = HelmAddon(name="a", repository="r", chart="a", version="1", namespace="n", depends_on=("b",))
    b = HelmAddon(name="b", repository="r", chart="b", version="1", namespace="n")
    assert [x.name for x in dependency_order([a, b])] == ["b", "a"]
    with pytest.raises(ValueError, match="unknown"):
        dependency_order([a])
    cyclic = HelmAddon(name="b", repository="r", chart="b", version="1", namespace="n", depends_on=("a",))
    with pytest.raises(ValueError, match="cycle"):
        dependency_order([a, cyclic])


def test_addon_contract_rejects_unpinned_or_unscoped():
    with pytest.raises(ValueError, match="pin"):
        HelmAddon(name="x", repository="r", chart="x", version="latest", namespace="n")
    with pytest.raises(ValueError, match="statements"):
        HelmAddon(name="x", repository="r", chart="x", version="1", namespace="n", service_account="sa")
    with pytest.raises(ValueError, match="statements"):
        HelmAddon(name="x", repository="r", chart="x", version="1", namespace="n",
                  statements=[iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])])

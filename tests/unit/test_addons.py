"""Add-on registry: pinned Helm releases in dependency order, one scoped Pod Identity role each.

Helm values are read back from the synthesized platform template (the HelmChart `Values`),
with CloudFormation tokens kept as the dicts they are, so a value is checked as deployed.
"""

import json
import re
from pathlib import Path

import aws_cdk as cdk
import cdk8s
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from config import naming, yamlio
from constructs_lib.addons import (
    AddonContext,
    argo_rollouts,
    aws_load_balancer_controller,
    cluster_autoscaler,
    external_secrets,
    falco,
    gatekeeper,
    istio,
    kube_prometheus_stack,
    vertical_pod_autoscaler,
)
from constructs_lib.addons.base import HelmAddon, merge_values
from constructs_lib.addons.registry import dependency_order
from k8s_charts.aws_values import from_config
from k8s_charts.base import STORAGE_CLASS
from k8s_charts.mesh import PROMETHEUS_PRINCIPAL, istiod_helm_values
from k8s_charts.monitoring import MonitoringChart
from k8s_charts.monitoring.alerting import ALERTMANAGER_CONFIG_NAME
from k8s_charts.monitoring.objects import OBSERVABILITY_NAMESPACE, RELEASE_LABELS
from k8s_charts.monitoring.tracing import OTEL_COLLECTOR
from k8s_charts.policies import gatekeeper_helm_values
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS
PINNED = {
    aws_load_balancer_controller.NAME: aws_load_balancer_controller.VERSION,
    cluster_autoscaler.NAME: cluster_autoscaler.VERSION,
    external_secrets.NAME: external_secrets.VERSION,
    vertical_pod_autoscaler.NAME: vertical_pod_autoscaler.VERSION,
    kube_prometheus_stack.NAME: kube_prometheus_stack.VERSION,
    argo_rollouts.NAME: argo_rollouts.VERSION,
}


def _context(cfg, env_name):
    """An AddonContext on imported stand-ins for the storage and data stacks' bucket and key."""
    values = from_config(cfg, env_name)
    stack = cdk.Stack(cdk.App(), "t", env=cdk.Environment(account=values.account, region=values.region))
    bucket_name = naming.velero_bucket(cfg, env_name)
    return AddonContext(
        cluster_name="c",
        vpc_id="vpc-1",
        values=values,
        partition="aws",
        velero_bucket=s3.Bucket.from_bucket_name(stack, "Velero", bucket_name),
        velero_bucket_name=bucket_name,
        data_key=kms.Key.from_key_arn(stack, "DataKey", f"arn:aws:kms:{values.region}:{values.account}:key/data"),
    )


def _charts(template, env):
    return template(env, "platform").find_resources("Custom::AWSCDK-EKS-HelmChart")


def _json_with_tokens(value):
    """A JSON property CDK may have joined around tokens; each token comes back as its dict."""
    if isinstance(value, str):
        return json.loads(value)
    separator, parts = value["Fn::Join"]
    assert separator == ""
    tokens = [p for p in parts if not isinstance(p, str)]
    text = "".join(p if isinstance(p, str) else f"@@token{tokens.index(p)}@@" for p in parts)

    def restore(node):
        if isinstance(node, dict):
            return {k: restore(v) for k, v in node.items()}
        if isinstance(node, list):
            return [restore(v) for v in node]
        if isinstance(node, str) and node.startswith("@@token") and node.endswith("@@"):
            return tokens[int(node[len("@@token") : -2])]
        return node

    return restore(json.loads(text))


def _release(template, env, release):
    """(logical id, properties, parsed values) of one Helm release."""
    [(lid, chart)] = [(lid, c) for lid, c in _charts(template, env).items() if c["Properties"]["Release"] == release]
    return lid, chart, _json_with_tokens(chart["Properties"].get("Values", "{}"))


def _manifest_objects(template, env):
    objects = []
    for resource in template(env, "platform").find_resources("Custom::AWSCDK-EKS-KubernetesResource").values():
        objects += _json_with_tokens(resource["Properties"]["Manifest"])
    return objects


def _contains(actual, expected, path=""):
    """Every key of `expected` is in `actual` with the same value (recursively for mappings)."""
    for key, value in expected.items():
        assert key in actual, f"{path}.{key} missing"
        if isinstance(value, dict):
            _contains(actual[key], value, f"{path}.{key}")
        else:
            assert actual[key] == value, f"{path}.{key}: {actual[key]!r} != {value!r}"


def _alerts_topic_import(template, env):
    """The platform's reference to the alerts stack's topic: an import of its exported Ref."""
    alerts = template(env, "alerts")
    [topic_id] = alerts.find_resources("AWS::SNS::Topic")
    [export] = [
        o["Export"]["Name"]
        for o in alerts.find_outputs("*").values()
        if o["Value"] == {"Ref": topic_id} and "Export" in o
    ]
    return {"Fn::ImportValue": export}


def _policies_for(template, env, service_account):
    """The managed policies attached to the role associated with `service_account`."""
    t = template(env, "platform")
    [assoc] = [
        a
        for a in t.find_resources("AWS::EKS::PodIdentityAssociation").values()
        if a["Properties"]["ServiceAccount"] == service_account
    ]
    role_id = assoc["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    return [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in t.find_resources("AWS::IAM::ManagedPolicy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]


def _policy_for(template, env, service_account):
    """Every statement the role associated with `service_account` has, across its managed policies."""
    return [s for statements in _policies_for(template, env, service_account) for s in statements]


def _staged_chart(assembly, props):
    """Chart.yaml of the zip asset a HelmChart installs (ChartAssetURL ends in <hash>.zip)."""
    url = json.dumps(props["ChartAssetURL"])
    [asset_hash] = set(re.findall(r"([0-9a-f]{64})\.zip", url))
    staged = {p.resolve() for p in assembly.outdir.glob(f"asset.{asset_hash}*") if p.is_dir()}
    assert len(staged) == 1, f"asset {asset_hash} staged as {staged}"
    return yamlio.load((staged.pop() / "Chart.yaml").read_text())


@pytest.mark.parametrize("env", ENVS)
def test_helm_charts_install_the_vendored_chart_at_its_pin(assembly, template, env):
    charts = {c["Properties"]["Release"]: c["Properties"] for c in _charts(template, env).values()}
    for release, version in PINNED.items():
        assert _staged_chart(assembly, charts[release])["version"] == version, release
    for props in charts.values():
        # A repository or version would make the handler fetch from the internet instead.
        assert "Repository" not in props and "Version" not in props
        assert _staged_chart(assembly, props)["name"]
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
    base, cni = by_release["istio-base"][0], by_release["istio-cni"][0]
    assert base in by_release["istio-cni"][1].get("DependsOn", [])
    istiod_deps = by_release["istiod"][1].get("DependsOn", [])
    assert base in istiod_deps and cni in istiod_deps


def test_istiod_takes_the_mesh_charts_values(template):
    _, _, values = _release(template, "prod", istio.ISTIOD)
    _contains(values, istiod_helm_values())
    assert values["pilot"]["cni"] == {"enabled": True}
    assert values["global"]["proxy"]["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}
    assert values["pilot"]["nodeSelector"] == {"node-role": "system"}


def test_gatekeeper_takes_the_policies_charts_values(template):
    _, _, values = _release(template, "prod", gatekeeper.NAME)
    _contains(values, gatekeeper_helm_values())
    assert values["validatingWebhookFailurePolicy"] == "Ignore" and values["auditInterval"] == 60
    assert values["audit"]["tolerations"] and values["audit"]["nodeSelector"] == {"node-role": "system"}


def test_merge_values_refuses_conflicting_leaves():
    assert merge_values({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}
    assert merge_values({"a": 1}, {"a": 1}) == {"a": 1}
    with pytest.raises(ValueError, match=r"a\.b"):
        merge_values({"a": {"b": 1}}, {"a": {"b": 2}})


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
    # The Supabase chart itself (chartsupabase<hash>), not its db-bootstrap or db-migrate charts.
    services = next(m for lid, m in manifests.items() if re.fullmatch(r"chartsupabase[0-9A-F]{8}", lid))
    assert set(job_waits) <= set(services["DependsOn"])


@pytest.mark.parametrize("env", ENVS)
def test_external_secrets_reads_only_this_environments_prefix(template, cfg, env):
    statements = _policy_for(template, env, external_secrets.SERVICE_ACCOUNT)
    read = next(s for s in statements if s["Sid"] == "ReadEnvironmentSecrets")
    assert sorted(read["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert read["Resource"].endswith(f":secret:{cfg.project}/{env}/*")
    assert all(s["Resource"] != "*" for s in statements)


@pytest.mark.parametrize("env", ENVS)
def test_external_secrets_reads_each_configured_secret_by_exact_name(template, cfg, env):
    e = cfg.environments[env]
    statements = {s["Sid"]: s for s in _policy_for(template, env, external_secrets.SERVICE_ACCOUNT)}
    names = [p.secret_name for p in e.auth.oauth_providers if not p.secret_name.startswith(f"{cfg.project}/{env}/")]
    if not names:
        assert "ReadConfiguredSecrets" not in statements
        return
    configured = statements["ReadConfiguredSecrets"]
    assert sorted(configured["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    resources = configured["Resource"] if isinstance(configured["Resource"], list) else [configured["Resource"]]
    assert sorted(resources) == sorted(
        f"arn:aws:secretsmanager:{e.region}:{e.account.id}:secret:{n}-??????" for n in names
    )


def test_external_secrets_reads_alert_receiver_secrets_and_nothing_broader(cfg):
    env = cfg.environments["staging"]
    obs = env.observability.model_copy(
        update={
            "slack_webhook_secret_name": "ops/alerting/slack",
            "pagerduty_secret_name": "supabase/staging/pagerduty",
        }
    )
    env = env.model_copy(update={"observability": obs})
    ctx = _context(cfg, "staging")
    docs = [
        s.to_json()
        for s in external_secrets.statements(ctx, extra_secret_names=external_secrets.configured_secret_names(env))
    ]
    by_sid = {d["Sid"]: d for d in docs}
    prefix = f"arn:aws:secretsmanager:{env.region}:{env.account.id}:secret:"
    # The PagerDuty secret sits under the environment prefix, which the first statement already grants.
    assert by_sid["ReadConfiguredSecrets"]["Resource"] == f"{prefix}ops/alerting/slack-??????"
    assert by_sid["ReadEnvironmentSecrets"]["Resource"] == f"{prefix}supabase/staging/*"
    decrypt = by_sid["DecryptThroughSecretsManager"]
    assert decrypt["Resource"] == f"arn:aws:kms:{env.region}:{env.account.id}:key/data"
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{env.region}.amazonaws.com"}}
    assert set(by_sid) == {"ReadEnvironmentSecrets", "ReadConfiguredSecrets", "DecryptThroughSecretsManager"}


def test_load_balancer_controller_mutations_are_tag_scoped(template):
    statements = {s["Sid"]: s for s in _policy_for(template, "prod", aws_load_balancer_controller.SERVICE_ACCOUNT)}
    tag = "aws:ResourceTag/elbv2.k8s.aws/cluster"
    assert statements["ModifyOwnedLoadBalancer"]["Condition"]["Null"][tag] == "false"
    assert statements["ManageOwnedSecurityGroup"]["Condition"]["Null"][tag] == "false"
    star = [sid for sid, s in statements.items() if s["Resource"] == "*"]
    assert star == ["Discover"]
    assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in statements["Discover"]["Action"])


UPSTREAM_ALB_POLICY = Path(__file__).parents[1] / "fixtures/upstream/aws-load-balancer-controller/iam_policy.json"


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _upstream_grants_missing(upstream, ours):
    """Each (action, condition) upstream grants that no statement of ours grants with the same
    condition, plus each action of ours upstream never grants. Resources are left out on purpose:
    ours are narrowed to this account, region and VPC."""
    granted = {(a, json.dumps(s.get("Condition"), sort_keys=True)) for s in ours for a in _as_list(s["Action"])}
    wanted = {(a, json.dumps(s.get("Condition"), sort_keys=True)) for s in upstream for a in _as_list(s["Action"])}
    extra = {a for a, _ in granted} - {a for a, _ in wanted}
    return sorted(wanted - granted) + sorted(("extra", a) for a in extra)


def test_load_balancer_controller_grants_what_upstream_grants_under_the_same_conditions(template):
    upstream = json.loads(UPSTREAM_ALB_POLICY.read_text())["Statement"]
    ours = _policy_for(template, "prod", aws_load_balancer_controller.SERVICE_ACCOUNT)
    assert _upstream_grants_missing(upstream, ours) == []
    # The comparison notices any one statement missing, and a condition dropped from one.
    for index in range(len(ours)):
        assert _upstream_grants_missing(upstream, ours[:index] + ours[index + 1 :]), ours[index]["Sid"]
    unconditioned = [dict(s, Condition=None) if s["Sid"] == "ManageOwnedSecurityGroup" else s for s in ours]
    assert _upstream_grants_missing(upstream, unconditioned)


def test_load_balancer_controller_policy_is_split_by_concern(template):
    policies = _policies_for(template, "prod", aws_load_balancer_controller.SERVICE_ACCOUNT)
    assert len(policies) == 2
    load_balancers, surroundings = ({a for s in p for a in _as_list(s["Action"])} for p in policies)
    assert all(a.startswith("elasticloadbalancing:") for a in load_balancers)
    assert not any(
        a.startswith("elasticloadbalancing:") and not a.split(":")[1].startswith("Describe") for a in surroundings
    )


def test_cluster_autoscaler_scales_only_owned_groups(template, cfg):
    statements = {s["Sid"]: s for s in _policy_for(template, "prod", cluster_autoscaler.SERVICE_ACCOUNT)}
    scale = statements["ScaleOwnedGroups"]
    assert scale["Condition"]["StringEquals"] == {
        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cfg.project}-prod": "owned"
    }


def test_alertmanager_publishes_only_to_alerts_topic(template):
    t = template("prod", "platform")
    t.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {"Namespace": OBSERVABILITY_NAMESPACE, "ServiceAccount": kube_prometheus_stack.SERVICE_ACCOUNT},
    )
    [statement] = _policy_for(template, "prod", kube_prometheus_stack.SERVICE_ACCOUNT)
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == _alerts_topic_import(template, "prod")
    _, _, values = _release(template, "prod", kube_prometheus_stack.NAME)
    assert values["alertmanager"]["serviceAccount"] == {"create": True, "name": kube_prometheus_stack.SERVICE_ACCOUNT}
    # The receiver Alertmanager signs for is the same topic.
    [amc] = [o for o in _manifest_objects(template, "prod") if o["kind"] == "AlertmanagerConfig"]
    [sns] = [r for r in amc["spec"]["receivers"] if r["name"] == "sns"]
    assert sns["snsConfigs"][0]["topicARN"] == statement["Resource"]


def test_alerts_key_lets_account_publishers_encrypt_through_sns(template, cfg):
    """Why Alertmanager and falcosidekick need no KMS grant of their own on the encrypted topic."""
    e = cfg.environments["prod"]
    [key] = template("prod", "alerts").find_resources("AWS::KMS::Key").values()
    [statement] = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AccountPublishersThroughSns"
    ]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert statement["Condition"]["StringEquals"] == {
        "kms:CallerAccount": e.account.id,
        "kms:ViaService": f"sns.{e.region}.amazonaws.com",
    }


def test_kube_prometheus_stack_release_and_alertmanager_configuration(template):
    _, chart, values = _release(template, "prod", "kube-prometheus-stack")
    assert chart["Properties"]["Namespace"] == "observability"
    assert {"release": chart["Properties"]["Release"]} == RELEASE_LABELS
    assert ALERTMANAGER_CONFIG_NAME == "supabase-alerting"
    assert values["alertmanager"]["alertmanagerSpec"]["alertmanagerConfiguration"] == {"name": "supabase-alerting"}
    # The referenced object is applied by the platform, in the Alertmanager's own namespace.
    [amc] = [o for o in _manifest_objects(template, "prod") if o["kind"] == "AlertmanagerConfig"]
    assert (amc["metadata"]["name"], amc["metadata"]["namespace"]) == ("supabase-alerting", "observability")


def test_kube_state_metrics_exposes_node_capacity_labels(template):
    _, _, values = _release(template, "prod", kube_prometheus_stack.NAME)
    assert values["kube-state-metrics"]["metricLabelsAllowlist"] == [
        "nodes=[eks.amazonaws.com/capacityType,kubernetes.io/arch]"
    ]


@pytest.mark.parametrize("env", ENVS)
def test_prometheus_retention_and_volume_from_config(template, cfg, env):
    obs = cfg.environments[env].observability
    spec = _release(template, env, kube_prometheus_stack.NAME)[2]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == f"{obs.metrics_retention_days}d"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == f"{obs.metrics_storage_gib}Gi"
    assert claim["storageClassName"] == STORAGE_CLASS
    classes = [o["metadata"]["name"] for o in _manifest_objects(template, env) if o["kind"] == "StorageClass"]
    assert classes == [STORAGE_CLASS]


def test_prometheus_selects_the_release_label_in_every_namespace(template):
    spec = _release(template, "prod", kube_prometheus_stack.NAME)[2]["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "probe", "rule"):
        assert spec[f"{kind}Selector"] == {"matchLabels": {"release": "kube-prometheus-stack"}}
        # Unset: the chart renders `{}`, every namespace (the ServiceMonitors live in supabase).
        assert f"{kind}NamespaceSelector" not in spec
    monitored = [
        o
        for o in _manifest_objects(template, "prod")
        if o["kind"] in ("ServiceMonitor", "PodMonitor", "Probe", "PrometheusRule")
    ]
    assert {o["metadata"]["namespace"] for o in monitored} >= {"supabase", "observability"}
    for obj in monitored:
        assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", obj["metadata"]["name"]


def test_grafana_admin_password_is_generated_never_a_literal(template):
    grafana = _release(template, "prod", kube_prometheus_stack.NAME)[2]["grafana"]
    text = json.dumps(grafana).lower()
    assert "adminpassword" not in text and "admin_password" not in text and "gf_security_admin" not in text
    # No existingSecret either: the chart generates the Secret once and keeps it on upgrades.
    assert "admin" not in grafana


def test_prometheus_scrapes_meshed_pods_with_its_istio_certificate(template, cfg):
    assert cfg.environments["prod"].features.istio
    _lid, chart, values = _release(template, "prod", kube_prometheus_stack.NAME)
    spec = values["prometheus"]["prometheusSpec"]
    annotations = spec["podMetadata"]["annotations"]
    assert spec["podMetadata"]["labels"] == {"sidecar.istio.io/inject": "true"}
    assert annotations["traffic.sidecar.istio.io/includeInboundPorts"] == ""
    assert annotations["traffic.sidecar.istio.io/includeOutboundIPRanges"] == ""
    output_dir = yamlio.load(annotations["proxy.istio.io/config"])["proxyMetadata"]["OUTPUT_CERTS"]
    [proxy_mount] = json.loads(annotations["sidecar.istio.io/userVolumeMount"])
    assert proxy_mount["mountPath"] == output_dir
    [volume] = spec["volumes"]
    assert volume == {"name": proxy_mount["name"], "emptyDir": {"medium": "Memory"}}
    [mount] = spec["volumeMounts"]
    assert mount["name"] == volume["name"] and mount["readOnly"] is True
    [scrape_class] = spec["scrapeClasses"]
    assert scrape_class["name"] == kube_prometheus_stack.ISTIO_SCRAPE_CLASS and not scrape_class.get("default")
    # The class the monitoring chart's meshed ServiceMonitors name is the one Prometheus defines
    # (the operator rejects a ServiceMonitor naming an undefined class).
    monitoring = MonitoringChart(
        cdk8s.App(), "monitoring", cfg=cfg, env_name="prod", values=from_config(cfg, "prod")
    ).to_json()
    used = {o["spec"]["scrapeClass"] for o in monitoring if "scrapeClass" in o.get("spec", {})}
    assert used == {scrape_class["name"]}
    tls = scrape_class["tlsConfig"]
    assert {tls[k] for k in ("caFile", "certFile", "keyFile")} == {
        f"{mount['mountPath']}/{f}" for f in ("root-cert.pem", "cert-chain.pem", "key.pem")
    }
    # The mesh admits Prometheus by this service account's SPIFFE principal.
    assert PROMETHEUS_PRINCIPAL.endswith(
        f"/ns/{chart['Properties']['Namespace']}/sa/{values['prometheus']['serviceAccount']['name']}"
    )
    istiod_id = _release(template, "prod", istio.ISTIOD)[0]
    assert istiod_id in chart.get("DependsOn", [])


def test_prometheus_has_no_sidecar_without_the_mesh(cfg):
    ctx = _context(cfg, "dev")
    addon = kube_prometheus_stack.build(ctx, retention_days=7, storage_gib=20, mesh=False)
    spec = addon.values["prometheus"]["prometheusSpec"]
    assert not {"podMetadata", "volumes", "volumeMounts", "scrapeClasses"} & set(spec)
    assert addon.depends_on == ()


def test_falco_publishes_to_the_alerts_topic_it_is_granted(template, cfg):
    _, _, values = _release(template, "prod", falco.NAME)
    topic = values["falcosidekick"]["config"]["aws"]["sns"]["topicarn"]
    [statement] = _policy_for(template, "prod", falco.SIDEKICK_SERVICE_ACCOUNT)
    assert topic == statement["Resource"] == _alerts_topic_import(template, "prod")
    assert topic != from_config(cfg, "prod").alerts_topic_arn


@pytest.mark.parametrize("env", ENVS)
def test_platform_uses_the_stacks_arns_not_config_stand_ins(template, cfg, env):
    """Charts and add-ons get the certificate, web ACL and topic as tokens of the stacks that own them."""
    stand_ins = from_config(cfg, env)
    text = json.dumps(template(env, "platform").to_json())
    for value in (stand_ins.certificate_arn, stand_ins.waf_acl_arn, stand_ins.alerts_topic_arn):
        assert value not in text
    imports = set(re.findall(r'"Fn::ImportValue": "([^"]+)"', text))
    assert {i.split(":")[0] for i in imports} >= {f"{env}-storage", f"{env}-alerts"}


def test_otel_collector_identity_is_the_cluster_stacks_only(template):
    cluster, platform = template("prod", "cluster"), template("prod", "platform")
    associations = [
        a["Properties"]
        for a in cluster.find_resources("AWS::EKS::PodIdentityAssociation").values()
        if a["Properties"]["ServiceAccount"] == OTEL_COLLECTOR
    ]
    assert [(a["Namespace"], a["ServiceAccount"]) for a in associations] == [("observability", "otel-collector")]
    assert not [
        a
        for a in platform.find_resources("AWS::EKS::PodIdentityAssociation").values()
        if a["Properties"]["ServiceAccount"] == OTEL_COLLECTOR
    ]
    role_id = associations[0]["RoleArn"]["Fn::GetAtt"][0]
    [policy] = [
        p
        for p in cluster.find_resources("AWS::IAM::ManagedPolicy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    } <= set(statement["Action"])
    # The collector the monitoring chart deploys runs as that service account.
    [deployment] = [
        o
        for o in _manifest_objects(template, "prod")
        if o["kind"] == "Deployment" and o["metadata"]["name"] == OTEL_COLLECTOR
    ]
    assert deployment["metadata"]["namespace"] == "observability"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == OTEL_COLLECTOR


def test_velero_scoped_to_velero_bucket(template, cfg):
    statements = {s["Sid"]: s for s in _policy_for(template, "prod", "velero-server")}
    assert statements["BackupObjects"]["Resource"] == naming.bucket_objects_arn(naming.velero_bucket(cfg, "prod"))
    assert [sid for sid, s in statements.items() if s["Resource"] == "*"] == ["DescribeVolumes"]
    # The bucket and its key are the storage stack's, read through its exports.
    for sid, owner in (("ListBackups", "VeleroBucket"), ("BucketKey", "VeleroKey")):
        imported = statements[sid]["Resource"]["Fn::ImportValue"]
        assert imported.startswith("prod-storage:") and owner in imported, (sid, imported)


def test_external_secrets_decrypts_only_with_the_data_key(template):
    statements = {s["Sid"]: s for s in _policy_for(template, "prod", external_secrets.SERVICE_ACCOUNT)}
    decrypt = statements["DecryptThroughSecretsManager"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    imported = decrypt["Resource"]["Fn::ImportValue"]
    assert imported.startswith("prod-data:") and "DataKey" in imported, imported


def test_dependency_order_and_errors():
    a = HelmAddon(name="a", chart="a", version="1", namespace="n", depends_on=("b",))
    b = HelmAddon(name="b", chart="b", version="1", namespace="n")
    assert [x.name for x in dependency_order([a, b])] == ["b", "a"]
    with pytest.raises(ValueError, match="unknown"):
        dependency_order([a])
    cyclic = HelmAddon(name="b", chart="b", version="1", namespace="n", depends_on=("a",))
    with pytest.raises(ValueError, match="cycle"):
        dependency_order([a, cyclic])


def test_addon_contract_rejects_unpinned_or_unscoped():
    with pytest.raises(ValueError, match="pin"):
        HelmAddon(name="x", chart="x", version="latest", namespace="n")
    with pytest.raises(ValueError, match="statements"):
        HelmAddon(name="x", chart="x", version="1", namespace="n", service_account="sa")
    with pytest.raises(ValueError, match="statements"):
        HelmAddon(
            name="x",
            chart="x",
            version="1",
            namespace="n",
            statements=[iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])],
        )


def test_runbooks_say_where_the_grafana_admin_password_is(template):
    """The Grafana chart writes the generated password into `<fullname>-grafana`; the command in
    the runbooks' Access section must name the Secret this release really creates."""
    _, chart, values = _release(template, "prod", kube_prometheus_stack.NAME)
    secret = f"{values['fullnameOverride']}-grafana"
    runbooks = (Path(__file__).resolve().parents[2] / "docs" / "runbooks.md").read_text()
    access = runbooks.split("\n## Access\n", 1)[1].split("\n## ", 1)[0]
    assert (
        f"kubectl -n {chart['Properties']['Namespace']} get secret {secret} "
        "-o jsonpath='{.data.admin-password}' | base64 -d"
    ) in access

"""Container logs, end to end on what deploys: the agent's rendered configuration, the namespaces
it covers, the Fargate log router's ConfigMap, and the log group, key, queries and grants in the
synthesized templates.

Fluent Bit itself does not install here (no PyPI, npm or Debian 12 package), so its configuration
is read with a strict reader of its documented classic format (tests/fluent_bit_conf.py) and its
references are checked: every parser a rendered pod suggests is defined in a file the agent
loads, and the output writes to the environment's containers log group. Coverage is derived from
the rendered manifests and Helm releases of every environment of both organizations, not from
a list: each namespace that runs pods is either tailed on the nodes (the DaemonSet runs on every
node group and no filter drops it) or a Fargate namespace with the router configured.
"""

from __future__ import annotations

import fnmatch
import re
from functools import cache
from typing import Any

import pytest

from config import load_config, naming
from constructs_lib.addons import fluent_bit
from constructs_lib.container_logs import WRITER_ACTIONS
from constructs_lib.eks_cluster import SPOT_TAINT, SYSTEM_TAINT
from k8s_charts.aws_values import from_config
from k8s_charts.base import FARGATE_LOGGING_CONFIGMAP, FARGATE_LOGGING_NAMESPACE
from k8s_charts.supabase import logs
from k8s_charts.supabase.props import SupabaseProps
from tests import fluent_bit_conf
from tests.conftest import ENVIRONMENT_KINDS, ORG_CONFIGS
from tests.deploy import helm
from tests.rendered import manifests as rendered_manifests

CASES = helm.environments()
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Rollout"}
# Where the chart mounts its ConfigMap (templates/daemonset.yaml: fluentbit-config at /fluent-bit/etc/),
# and the stock parsers file the AWS for Fluent Bit image ships.
CONFIG_MOUNT = "/fluent-bit/etc/"
IMAGE_PARSERS = "/fluent-bit/parsers/parsers.conf"
# Fargate's log router accepts only these ConfigMap keys, filters and outputs
# (https://docs.aws.amazon.com/eks/latest/userguide/fargate-logging.html).
FARGATE_KEYS = {"flb_log_cw", "filters.conf", "output.conf", "parsers.conf"}
FARGATE_FILTERS = {"grep", "parser", "record_modifier", "rewrite_tag", "throttle", "nest", "modify", "kubernetes"}
FARGATE_OUTPUTS = {"cloudwatch_logs", "es", "firehose", "kinesis_firehose", "kinesis_streams", "opensearch"}


def _id(case: tuple[str, str]) -> str:
    return "-".join(case)


@cache
def agent(org: str, env: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The rendered DaemonSet and ConfigMap data of the agent."""
    objects = helm.render_environment(org, env)[fluent_bit.NAME]
    daemonset = next(o for o in objects if o["kind"] == "DaemonSet")
    configmap = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == fluent_bit.NAME)
    return daemonset, configmap["data"]


@cache
def manifests(org: str, env: str) -> list[dict[str, Any]]:
    return [o for objs in rendered_manifests(env, org).values() for o in objs]


def pod_namespaces(org: str, env: str) -> set[str]:
    """Every namespace a rendered chart or Helm release runs pods in."""
    found = {o["metadata"].get("namespace") for o in manifests(org, env) if o["kind"] in POD_KINDS}
    addons = {a.name: a.namespace for a in helm.addons(org, env)}
    for release, objects in helm.render_environment(org, env).items():
        found |= {o["metadata"].get("namespace", addons[release]) for o in objects if o["kind"] in POD_KINDS}
    return {ns for ns in found if ns}


def pod_templates(org: str, env: str) -> list[dict[str, Any]]:
    out = []
    objects = [*manifests(org, env), *(o for objs in helm.render_environment(org, env).values() for o in objs)]
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] == "CronJob":
            spec = spec.get("jobTemplate", {}).get("spec", {})
        if "template" in spec:
            out.append(spec["template"])
    return out


def sections(text: str, kind: str) -> list[fluent_bit_conf.Section]:
    return [s for s in fluent_bit_conf.read(text) if s.kind == kind]


def tolerated(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    """Kubernetes' toleration match (an empty key with Exists tolerates every taint)."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator") == "Exists" and not t.get("key"):
            return True
        if t.get("key") != taint["key"]:
            continue
        if t.get("operator") == "Exists" or t.get("value") == taint["value"]:
            return True
    return False


NODE_TAINTS = [
    {"key": t.key, "value": t.value, "effect": {"NO_SCHEDULE": "NoSchedule"}[t.effect.name]}
    for t in (SYSTEM_TAINT, SPOT_TAINT)
]


def uncovered(
    namespaces: set[str], *, fargate: set[str], daemonset: dict[str, Any], conf: str, templates: list[dict[str, Any]]
) -> list[str]:
    """Why each namespace's container logs would not reach CloudWatch Logs (empty: all covered)."""
    problems = []
    pod = daemonset["spec"]["template"]["spec"]
    for taint in NODE_TAINTS:
        if not tolerated(pod.get("tolerations") or [], taint):
            problems.append(f"the agent does not tolerate node taint {taint['key']}")
    if pod.get("nodeSelector") or pod.get("affinity"):
        problems.append("the agent is restricted to some nodes")
    tails = [s.entries["path"] for s in sections(conf, "INPUT") if s.name == "tail"]
    drops = [s for s in sections(conf, "FILTER") if s.name == "grep"]
    for ns in sorted(namespaces - fargate):
        # The kubelet's name for a container's log file: <pod>_<namespace>_<container>-<id>.log.
        sample = f"/var/log/containers/pod-7d9f_{ns}_app-0123abcd.log"
        if not any(fnmatch.fnmatch(sample, glob) for glob in tails):
            problems.append(f"{ns}: no tail input reads its log files")
        for grep in drops:
            if ns in " ".join(grep.all("exclude") + grep.all("regex")):
                problems.append(f"{ns}: a grep filter names it")
    for template in templates:
        if (template.get("metadata", {}).get("annotations") or {}).get("fluentbit.io/exclude") == "true":
            problems.append(f"a pod template opts out: {template.get('metadata', {}).get('labels')}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_agent_config_reads_as_fluent_bit_classic_config(case: tuple[str, str]) -> None:
    _, data = agent(*case)
    kinds = [s.kind for s in fluent_bit_conf.read(data["fluent-bit.conf"])]
    assert kinds.count("SERVICE") == 1 and "INPUT" in kinds and "OUTPUT" in kinds
    for parser in sections(data["parser_extra.conf"], "PARSER"):
        re.compile(parser.entries["regex"].replace("(?<", "(?P<"))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_agent_writes_to_the_environments_log_group(case: tuple[str, str]) -> None:
    org, env = case
    cfg = load_config(ORG_CONFIGS[org])
    _, data = agent(org, env)
    outputs = sections(data["fluent-bit.conf"], "OUTPUT")
    assert [o.name for o in outputs] == ["cloudwatch_logs"]
    out = outputs[0].entries
    assert out["log_group_name"] == naming.container_log_group(naming.cluster_name(cfg, env))
    assert out["region"] == cfg.environments[env].region
    # The group is the project's (key, retention): the agent must not create one of its own.
    assert out.get("auto_create_group", "false").lower() in ("false", "off")
    assert out["match"] == "*"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_every_suggested_parser_is_loaded(case: tuple[str, str]) -> None:
    _, data = agent(*case)
    service = sections(data["fluent-bit.conf"], "SERVICE")[0]
    loaded = service.all("parsers_file")
    extra = [p for p in loaded if p != IMAGE_PARSERS]
    assert all(p.startswith(CONFIG_MOUNT) and p.removeprefix(CONFIG_MOUNT) in data for p in extra), loaded
    defined = {s.name for p in extra for s in sections(data[p.removeprefix(CONFIG_MOUNT)], "PARSER")}
    suggested = {
        v
        for t in pod_templates(*case)
        for k, v in (t.get("metadata", {}).get("annotations") or {}).items()
        if k.startswith(logs.PARSER_ANNOTATION)
    }
    assert suggested and suggested <= defined
    kube = next(s for s in sections(data["fluent-bit.conf"], "FILTER") if s.name == "kubernetes").entries
    assert kube["k8s-logging.parser"] == "On" and kube["merge_log"] == "On"
    assert kube["merge_log_key"] == logs.MERGE_KEY and kube["keep_log"] == "Off"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_every_namespace_the_platform_runs_is_covered(case: tuple[str, str]) -> None:
    org, env = case
    fargate = set(load_config(ORG_CONFIGS[org]).environments[env].cluster.fargate_namespaces)
    namespaces = pod_namespaces(org, env)
    assert {"supabase", "observability", "kube-system"} <= namespaces
    daemonset, data = agent(org, env)
    assert (
        uncovered(
            namespaces,
            fargate=fargate,
            daemonset=daemonset,
            conf=data["fluent-bit.conf"],
            templates=pod_templates(org, env),
        )
        == []
    )
    if fargate:
        fargate_router(org, env)


def test_coverage_gaps_are_reported() -> None:
    _, data = agent("default", "prod")
    spot_only = {
        "spec": {
            "template": {"spec": {"tolerations": [{"key": "spot", "operator": "Exists"}], "nodeSelector": {"a": "b"}}}
        }
    }
    conf = data["fluent-bit.conf"].replace("/var/log/containers/*.log", "/var/log/containers/*_supabase_*.log")
    conf += "\n[FILTER]\n    Name    grep\n    Match   *\n    Exclude $kubernetes['namespace_name'] ^velero$\n"
    problems = uncovered(
        {"supabase", "velero", "batch-jobs"},
        fargate={"batch-jobs"},
        daemonset=spot_only,
        conf=conf,
        templates=[{"metadata": {"annotations": {"fluentbit.io/exclude": "true"}}}],
    )
    assert "the agent does not tolerate node taint CriticalAddonsOnly" in problems
    assert "the agent is restricted to some nodes" in problems
    assert "velero: no tail input reads its log files" in problems
    assert "velero: a grep filter names it" in problems
    assert any(p.startswith("a pod template opts out") for p in problems)
    assert not any(p.startswith("supabase") or p.startswith("batch-jobs") for p in problems)


def fargate_router(org: str, env: str) -> None:
    cfg = load_config(ORG_CONFIGS[org])
    objects = manifests(org, env)
    namespace = next(
        o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == FARGATE_LOGGING_NAMESPACE.name
    )
    assert namespace["metadata"]["labels"]["aws-observability"] == "enabled"
    data = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap"
        and o["metadata"]["name"] == FARGATE_LOGGING_CONFIGMAP
        and o["metadata"]["namespace"] == FARGATE_LOGGING_NAMESPACE.name
    )["data"]
    assert set(data) <= FARGATE_KEYS
    filters = sections(data["filters.conf"], "FILTER")
    outputs = sections(data["output.conf"], "OUTPUT")
    parsers = {s.name for s in sections(data["parsers.conf"], "PARSER")}
    assert {f.name for f in filters} <= FARGATE_FILTERS and {o.name for o in outputs} <= FARGATE_OUTPUTS
    assert {f.entries["parser"] for f in filters if f.name == "parser"} <= parsers
    kube = next(f for f in filters if f.name == "kubernetes").entries
    assert kube["merge_log_key"] == logs.MERGE_KEY
    out = outputs[0].entries
    assert out["log_group_name"] == naming.container_log_group(naming.cluster_name(cfg, env))
    assert out["region"] == cfg.environments[env].region and out["auto_create_group"] == "false"


def test_no_fargate_router_without_fargate_namespaces() -> None:
    cfg = load_config(ORG_CONFIGS["acme"])
    env = next(e for e, spec in cfg.environments.items() if not spec.cluster.fargate_namespaces)
    assert not [o for o in manifests("acme", env) if o["metadata"].get("name") == FARGATE_LOGGING_NAMESPACE.name]


# --- the synthesized templates ------------------------------------------------------------------


def _resources(template_json: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == kind}


@pytest.mark.parametrize("env", ENVIRONMENT_KINDS)
def test_log_group_is_encrypted_with_its_own_key_and_configured_retention(assembly, cfg, env: str) -> None:
    tpl = assembly.template_json(f"{env}/cluster")
    name = naming.container_log_group(naming.cluster_name(cfg, env))
    groups = [g for g in _resources(tpl, "AWS::Logs::LogGroup").values() if g["Properties"]["LogGroupName"] == name]
    assert len(groups) == 1
    props = groups[0]["Properties"]
    assert props["RetentionInDays"] == cfg.environments[env].observability.log_retention_days
    key_id = props["KmsKeyId"]["Fn::GetAtt"][0]
    key_policy = tpl["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    logs_statement = next(s for s in key_policy if s.get("Sid") == "CloudWatchLogsEncryptsThisAccountsLogGroups")
    context = logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert context["Fn::Join"][1][-1].endswith(f":log-group:{name}")


@pytest.mark.parametrize("env", ENVIRONMENT_KINDS)
def test_saved_queries_target_the_log_group(assembly, cfg, env: str) -> None:
    tpl = assembly.template_json(f"{env}/cluster")
    cluster = naming.cluster_name(cfg, env)
    queries = {q["Properties"]["Name"]: q["Properties"] for q in _resources(tpl, "AWS::Logs::QueryDefinition").values()}
    assert set(queries) == {
        f"{cluster}/{n}" for n in ("auth-failures", "5xx-by-route", "slow-postgrest-requests", "realtime-disconnects")
    }
    supabase = SupabaseProps.from_config(cfg, env, from_config(cfg, env))
    tested = {f"{cluster}/{q.name}": q.render() for q in logs.saved_queries(supabase)}
    for name, props in queries.items():
        assert props["LogGroupNames"] == [naming.container_log_group(cluster)]
        # The text tests/unit/test_logs.py runs on the sample lines is the text deployed.
        assert props["QueryString"] == tested[name]


def _text(value: Any) -> str:
    """An ARN as text, with intrinsic functions other than Fn::Join shown as "?"."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(_text(p) for p in value["Fn::Join"][1])
    return "?"


def _policy_actions_and_resources(policy: dict[str, Any]) -> list[tuple[set[str], list[str]]]:
    out = []
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        out.append((set(actions), [_text(r) for r in resources]))
    return out


@pytest.mark.parametrize("env", ENVIRONMENT_KINDS)
def test_writers_may_write_to_the_log_group_only(assembly, cfg, env: str) -> None:
    name = naming.container_log_group(naming.cluster_name(cfg, env))
    platform = assembly.template_json(f"{env}/platform")
    associations = [
        a["Properties"]
        for a in _resources(platform, "AWS::EKS::PodIdentityAssociation").values()
        if a["Properties"]["ServiceAccount"] == fluent_bit.SERVICE_ACCOUNT
    ]
    assert [(a["Namespace"]) for a in associations] == [fluent_bit.NAMESPACE]
    writers = [platform, assembly.template_json(f"{env}/cluster")]
    found = 0
    for tpl in writers:
        for policy in _resources(tpl, "AWS::IAM::ManagedPolicy").values():
            grants = _policy_actions_and_resources(policy)
            if any(name in r for _, resources in grants for r in resources):
                found += 1
                assert len(grants) == 1 and grants[0][0] == set(WRITER_ACTIONS)
                assert [r.split(":log-group:", 1)[1] for r in grants[0][1]] == [f"{name}:*"]
    # Fluent Bit's role; and the Fargate pod execution role where the environment has Fargate namespaces.
    assert found == (2 if cfg.environments[env].cluster.fargate_namespaces else 1)

"""The failover drills (FIS experiment templates) against the FIS actions reference.

FIS validates a template only when it is created in an account; this rehearses the same rules
offline on every synthesized environment: known action ids, the target key and resource type
each action takes, its required and allowed parameters and their value ranges, the IAM actions
the experiment role needs for it, stop conditions on existing alarms that notify the alerts
topic, and an encrypted log destination. Each rule is shown failing on a broken copy.

Source of the table: https://docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html
(sections "aws:rds:reboot-db-instances", "aws:network:disrupt-connectivity",
"aws:ec2:send-spot-instance-interruptions"), targets:
https://docs.aws.amazon.com/fis/latest/userguide/targets.html, stop conditions:
https://docs.aws.amazon.com/fis/latest/userguide/stop-conditions.html, logging:
https://docs.aws.amazon.com/fis/latest/userguide/monitoring-logging.html.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from config import load_config
from tests.conftest import ORG_CONFIGS
from tests.deploy.cloud_assembly import CloudAssembly, Stack
from tests.deploy.iam_policy import action_matches, listed

FIS_TEMPLATE = "AWS::FIS::ExperimentTemplate"
ISO_DURATION = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?")
SELECTION_MODE = re.compile(r"ALL|COUNT\(\d+\)|PERCENT\((?:[1-9]\d?|100)\)")
MAX_STOP_CONDITIONS = 5
DRILLS = {"rds-failover", "az-node-loss", "spot-interruption"}


def seconds(iso: str) -> int | None:
    m = ISO_DURATION.fullmatch(iso)
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


@dataclass(frozen=True)
class Parameter:
    required: bool
    check: Any  # value -> bool


@dataclass(frozen=True)
class ActionDoc:
    target_key: str
    resource_type: str
    parameters: Mapping[str, Parameter]
    permissions: tuple[str, ...]
    extra: dict = field(default_factory=dict)


def _between(low: int, high: int):
    return lambda v: (s := seconds(v)) is not None and low <= s <= high


FIS_ACTIONS: dict[str, ActionDoc] = {
    "aws:rds:reboot-db-instances": ActionDoc(
        target_key="DBInstances",
        resource_type="aws:rds:db",
        parameters={"forceFailover": Parameter(False, lambda v: v in ("true", "false"))},
        permissions=("rds:RebootDBInstance", "rds:DescribeDBInstances", "tag:GetResources"),
    ),
    "aws:network:disrupt-connectivity": ActionDoc(
        target_key="Subnets",
        resource_type="aws:ec2:subnet",
        parameters={
            "duration": Parameter(True, _between(60, 12 * 3600)),
            "scope": Parameter(
                False,
                lambda v: v in ("all", "availability-zone", "dynamodb", "prefix-list", "s3", "vpc", "s3-express"),
            ),
            "prefixListIdentifier": Parameter(False, lambda v: bool(v)),
        },
        permissions=(
            "ec2:CreateNetworkAcl",
            "ec2:CreateNetworkAclEntry",
            "ec2:CreateTags",
            "ec2:DeleteNetworkAcl",
            "ec2:DescribeManagedPrefixLists",
            "ec2:DescribeNetworkAcls",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcs",
            "ec2:GetManagedPrefixListEntries",
            "ec2:ReplaceNetworkAclAssociation",
        ),
    ),
    "aws:ec2:send-spot-instance-interruptions": ActionDoc(
        target_key="SpotInstances",
        resource_type="aws:ec2:spot-instance",
        parameters={"durationBeforeInterruption": Parameter(True, _between(120, 900))},
        permissions=("ec2:SendSpotInstanceInterruptions", "ec2:DescribeInstances"),
    ),
}
LOGGING_PERMISSIONS = (
    "logs:CreateLogDelivery",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def problems(stack: Stack) -> list[str]:
    """Everything FIS (or the drill's purpose) would refuse in one stack's templates."""
    out: list[str] = []
    resources = stack.resources_by_id
    for logical_id, template in stack.resources(FIS_TEMPLATE):
        props = template["Properties"]
        where = f"{stack.stack_name}/{logical_id}"
        targets = props.get("Targets", {})
        for name, action in props.get("Actions", {}).items():
            doc = FIS_ACTIONS.get(action.get("ActionId"))
            if doc is None:
                out.append(f"{where}: action {name}: unknown action id {action.get('ActionId')}")
                continue
            params = action.get("Parameters", {})
            for key, spec in doc.parameters.items():
                if spec.required and key not in params:
                    out.append(f"{where}: {action['ActionId']} requires parameter {key}")
            for key, value in params.items():
                spec = doc.parameters.get(key)
                if spec is None:
                    out.append(f"{where}: {action['ActionId']} has no parameter {key}")
                elif not spec.check(value):
                    out.append(f"{where}: {action['ActionId']} parameter {key}={value!r} out of range")
            action_targets = action.get("Targets", {})
            if set(action_targets) != {doc.target_key}:
                out.append(
                    f"{where}: {action['ActionId']} takes target key {doc.target_key}, got {sorted(action_targets)}"
                )
            for target_name in action_targets.values():
                target = targets.get(target_name)
                if target is None:
                    out.append(f"{where}: target {target_name} is not defined")
                    continue
                if target.get("ResourceType") != doc.resource_type:
                    out.append(
                        f"{where}: {action['ActionId']} acts on {doc.resource_type}, target is {target.get('ResourceType')}"
                    )
                if bool(target.get("ResourceArns")) == bool(target.get("ResourceTags")):
                    out.append(f"{where}: target {target_name} needs resource ARNs or tags (one of them)")
                if not SELECTION_MODE.fullmatch(str(target.get("SelectionMode"))):
                    out.append(f"{where}: target {target_name} selection mode {target.get('SelectionMode')!r}")
            role = resources.get(_ref(props.get("RoleArn")) or "")
            if role is None or role["Type"] != "AWS::IAM::Role":
                out.append(f"{where}: role is not a role of this stack")
                continue
            trusted = [
                p
                for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
                for p in listed(s["Principal"].get("Service"))
            ]
            if trusted != ["fis.amazonaws.com"]:
                out.append(f"{where}: role trusts {trusted}, not FIS alone")
            statements = [
                s
                for arn in role["Properties"].get("ManagedPolicyArns", [])
                if (policy := resources.get(_ref(arn) or "")) is not None
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
            ]
            for needed in (*doc.permissions, *LOGGING_PERMISSIONS):
                if not any(s["Effect"] == "Allow" and action_matches(s, needed) for s in statements):
                    out.append(f"{where}: role lacks {needed}")
            if any(action_matches(s, "*") or any(a.endswith(":*") for a in listed(s["Action"])) for s in statements):
                out.append(f"{where}: role grants a service wildcard")
        stops = props.get("StopConditions", [])
        if not 0 < len(stops) <= MAX_STOP_CONDITIONS:
            out.append(f"{where}: {len(stops)} stop conditions (1 to {MAX_STOP_CONDITIONS})")
        for stop in stops:
            alarm = resources.get(_ref(stop.get("Value")) or "")
            if (
                stop.get("Source") != "aws:cloudwatch:alarm"
                or alarm is None
                or alarm["Type"] != "AWS::CloudWatch::Alarm"
            ):
                out.append(f"{where}: stop condition {stop} is not an alarm of this stack")
            elif not alarm["Properties"].get("AlarmActions"):
                out.append(f"{where}: stop alarm {_ref(stop['Value'])} notifies nobody")
        log = props.get("LogConfiguration", {})
        group = resources.get(_ref(log.get("CloudWatchLogsConfiguration", {}).get("LogGroupArn")) or "")
        if log.get("LogSchemaVersion") != 2 or group is None or group["Type"] != "AWS::Logs::LogGroup":
            out.append(f"{where}: no CloudWatch Logs destination (schema 2)")
        elif "KmsKeyId" not in group["Properties"]:
            out.append(f"{where}: the drill log group is not encrypted")
    return out


def _observability(assembly: CloudAssembly) -> list[Stack]:
    return [s for s in assembly if s.stack_name.endswith("-observability")]


def test_every_environment_has_the_three_drills(cloud_assembly: CloudAssembly):
    cfg = load_config(ORG_CONFIGS[cloud_assembly.name])
    stacks = _observability(cloud_assembly)
    assert len(stacks) == len(cfg.environments)
    for stack in stacks:
        names = {t["Properties"]["Tags"]["Name"].rsplit("-drill-", 1)[1] for _, t in stack.resources(FIS_TEMPLATE)}
        assert names == DRILLS, stack.stack_name
        env = cfg.environments[stack.stack_name.removeprefix(f"{cfg.project}-").removesuffix("-observability")]
        (rds,) = [
            a
            for _, t in stack.resources(FIS_TEMPLATE)
            for a in t["Properties"]["Actions"].values()
            if a["ActionId"] == "aws:rds:reboot-db-instances"
        ]
        # Force a failover only where there is a standby to fail over to (RDS refuses otherwise).
        assert rds["Parameters"]["forceFailover"] == ("true" if env.database.multi_az else "false")


def test_drills_follow_the_fis_actions_reference(cloud_assembly: CloudAssembly):
    found = [p for stack in _observability(cloud_assembly) for p in problems(stack)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda a, t: a.update(ActionId="aws:rds:failover-db-instance"), "unknown action id"),
        (lambda a, t: a["Parameters"].clear(), "requires parameter"),
        (lambda a, t: a["Parameters"].update(durationBeforeInterruption="PT20M", duration="PT20M"), "out of range"),
        (lambda a, t: a["Parameters"].update(bogus="1"), "has no parameter"),
        (lambda a, t: a.update(Targets={"Instances": "target"}), "takes target key"),
        (lambda a, t: t["Properties"]["Targets"]["target"].update(ResourceType="aws:ec2:instance"), "acts on"),
        (lambda a, t: t["Properties"].update(StopConditions=[]), "stop conditions"),
        (lambda a, t: t["Properties"]["LogConfiguration"].update(LogSchemaVersion=1), "CloudWatch Logs destination"),
    ],
)
def test_a_broken_template_is_refused(cloud_assembly: CloudAssembly, breakage, expected):
    stack = _observability(cloud_assembly)[0]
    template = copy.deepcopy(dict(stack.template))
    broken = 0
    for resource in template["Resources"].values():
        if resource["Type"] == FIS_TEMPLATE:
            for action in resource["Properties"]["Actions"].values():
                breakage(action, resource)
                broken += 1
    assert broken == len(DRILLS)
    found = problems(Stack(**{**stack.__dict__, "template": template}))
    assert any(expected in p for p in found), found


def test_a_role_missing_a_permission_is_refused(cloud_assembly: CloudAssembly):
    stack = _observability(cloud_assembly)[0]
    template = copy.deepcopy(dict(stack.template))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                statement["Action"] = [
                    a for a in listed(statement["Action"]) if a != "ec2:SendSpotInstanceInterruptions"
                ] or ["ec2:DescribeTags"]
    found = problems(Stack(**{**stack.__dict__, "template": template}))
    assert any("lacks ec2:SendSpotInstanceInterruptions" in p for p in found), found

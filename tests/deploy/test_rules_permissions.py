"""Each permission rule fails on a broken fixture: a service the execution policy lacks, an IAM
name outside its scope, an SCP that denies the execution role."""

from __future__ import annotations

import tests.deploy.rules  # noqa: F401  (registers the rules)
from config.naming import EXECUTION_POLICY_NAME
from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.iam_policy import Request, allowed_by, denied_by
from tests.deploy.registry import RULES
from tests.deploy.rules.permissions import deploy_calls, service_prefix

MEMBER = "333333333333"
EXEC_ROLE = f"arn:${{AWS::Partition}}:iam::{MEMBER}:role/cdk-hnb659fds-cfn-exec-role-{MEMBER}-us-east-1"
PIPELINE_DEPLOYED = {"account": MEMBER, "stage": "dev", "properties": {"cloudFormationExecutionRoleArn": EXEC_ROLE}}


def access_stack(services: list[str]) -> dict:
    statements = [
        {"Sid": "PlatformServices", "Effect": "Allow", "Action": [f"{s}:*" for s in services], "Resource": "*"},
        {
            "Sid": "StackOwnedIam",
            "Effect": "Allow",
            "Action": "iam:*",
            "Resource": [
                {
                    "Fn::Join": [
                        "",
                        ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":role/dev-*"],
                    ]
                }
            ],
        },
        {"Sid": "NoLongLivedCredentials", "Effect": "Deny", "Action": ["iam:CreateUser"], "Resource": "*"},
    ]
    return {
        "Resources": {
            "P": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"ManagedPolicyName": EXECUTION_POLICY_NAME, "PolicyDocument": {"Statement": statements}},
            }
        }
    }


def security_stack(*resources: tuple[str, dict]) -> dict:
    return {"Resources": {f"R{i}": {"Type": t, "Properties": p} for i, (t, p) in enumerate(resources)}}


def run(rule_id: str, templates: dict, **stack_kwargs) -> list[str]:
    outcome = RULES[rule_id](CloudAssembly.from_templates(templates, **stack_kwargs))
    assert outcome.checked > 0
    return outcome.findings


def test_service_prefix_from_type_name():
    assert service_prefix("AWS::Pipes::Pipe") == "pipes"
    assert service_prefix("AWS::ElasticLoadBalancingV2::LoadBalancer") == "elasticloadbalancing"
    assert "pipes:CreatePipe" in deploy_calls("AWS::Pipes::Pipe")
    assert "guardduty:UpdateDetector" in deploy_calls("AWS::GuardDuty::Detector")


def test_evaluator_conditions_and_not_action():
    deny = [
        {
            "Effect": "Deny",
            "NotAction": ["iam:*"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}},
        }
    ]
    assert denied_by(deny, Request("ec2:RunInstances", context={"aws:RequestedRegion": "eu-west-1"}))
    assert not denied_by(deny, Request("ec2:RunInstances", context={"aws:RequestedRegion": "us-east-1"}))
    assert not denied_by(deny, Request("iam:CreateRole", context={"aws:RequestedRegion": "eu-west-1"}))
    allow = [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"},
    ]
    assert allowed_by(allow, Request("s3:PutObject")) and not allowed_by(allow, Request("s3:DeleteBucket"))


def test_execution_policy_must_cover_every_resource_type():
    pipe = ("AWS::Pipes::Pipe", {"RoleArn": "x"})
    topic = ("AWS::SNS::Topic", {})
    templates = {"access": access_stack(["sns", "pipes"]), "security": security_stack(pipe, topic)}
    kwargs = {"access": {"account": MEMBER}, "security": PIPELINE_DEPLOYED}
    assert not run("execution-policy-covers-resources", templates, **kwargs)
    templates["access"] = access_stack(["sns"])
    findings = run("execution-policy-covers-resources", templates, **kwargs)
    assert len(findings) == 1 and "AWS::Pipes::Pipe needs pipes:CreatePipe" in findings[0]


def test_explicit_iam_names_must_stay_in_the_stack_prefix():
    def role(name: str, path: str = "/") -> tuple[str, dict]:
        return "AWS::IAM::Role", {"RoleName": name, "Path": path, "AssumeRolePolicyDocument": {}}

    kwargs = {"access": {"account": MEMBER}, "security": {**PIPELINE_DEPLOYED, "stack_name": "dev-security"}}
    ok = {"access": access_stack([]), "security": security_stack(role("dev-responder"))}
    assert not run("execution-policy-names-own-iam", ok, **kwargs)
    for broken in (role("responder"), role("dev-responder", "/ops/")):
        findings = run(
            "execution-policy-names-own-iam", {"access": access_stack([]), "security": security_stack(broken)}, **kwargs
        )
        assert len(findings) == 1 and "outside the execution policy" in findings[0]


def org_stack(exceptions: list[str]) -> dict:
    content = {
        "Statement": [
            {
                "Sid": "DenyDisablingAudit",
                "Effect": "Deny",
                "Action": ["guardduty:UpdateDetector", "guardduty:DeleteDetector"],
                "Resource": "*",
                "Condition": {"ArnNotLike": {"aws:PrincipalArn": exceptions}},
            }
        ]
    }
    return {
        "Resources": {
            "Scp": {
                "Type": "AWS::Organizations::Policy",
                "Properties": {"Type": "SERVICE_CONTROL_POLICY", "TargetIds": ["ou-1"], "Content": content},
            }
        }
    }


def test_scps_must_let_the_execution_role_update_and_roll_back():
    templates = {"security": security_stack(("AWS::GuardDuty::Detector", {"Enable": True}))}
    kwargs = {"org": {"account": "111111111111"}, "security": PIPELINE_DEPLOYED}
    broken = {**templates, "org": org_stack(["arn:aws:iam::*:role/OrganizationAccountAccessRole"])}
    findings = run("scp-allows-deployers", broken, **kwargs)
    assert len(findings) == 1 and "guardduty:UpdateDetector" in findings[0] and "cfn-exec-role" in findings[0]
    fixed = {
        **templates,
        "org": org_stack(
            ["arn:aws:iam::*:role/OrganizationAccountAccessRole", "arn:aws:iam::*:role/cdk-hnb659fds-cfn-exec-role-*"]
        ),
    }
    assert not run("scp-allows-deployers", fixed, **kwargs)


def test_scps_do_not_apply_to_the_management_account():
    templates = {
        "org": {
            **org_stack([]),
            "Resources": {**org_stack([])["Resources"], "D": {"Type": "AWS::GuardDuty::Detector", "Properties": {}}},
        }
    }
    assert not RULES["scp-allows-deployers"](CloudAssembly.from_templates(templates)).findings

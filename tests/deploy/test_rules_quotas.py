"""Each quota rule passes a fixture inside the documented limit and fails one just over it."""

from __future__ import annotations

import json

import pytest

import tests.deploy.rules  # noqa: F401  (registers the rules)
from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.intrinsics import PSEUDO_MAX_LENGTH, policy_length, worst_case
from tests.deploy.registry import RULES


def run(rule_id: str, templates: dict, **stack_kwargs) -> list[str]:
    outcome = RULES[rule_id](CloudAssembly.from_templates(templates, **stack_kwargs))
    assert outcome.checked > 0
    return outcome.findings


def document(actions: int, *, resource=None) -> dict:
    resource = resource or "*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": [f"s3:GetObjectVersion{i:05d}" for i in range(actions)], "Resource": resource}
        ],
    }


def managed_policy(doc: dict) -> dict:
    return {"Resources": {"P": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": doc}}}}


def test_worst_case_lengthens_intrinsics_to_their_maximum():
    template = {"Resources": {}}
    arn = worst_case(
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":role/x"]]},
        template,
    )
    assert len(arn) == len("arn:") + PSEUDO_MAX_LENGTH["AWS::Partition"] + len(":iam::") + 12 + len(":role/x")
    assert len(worst_case({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*"}, template)) > 128
    spaced = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "a b"}]}
    assert policy_length(spaced, template) == policy_length(spaced, template, count_whitespace=True) - 1


def test_managed_policy_size():
    assert not run("iam-managed-policy-size", {"s": managed_policy(document(10))})
    # Each action is 28 characters with quotes and comma: 230 of them exceed 6,144.
    assert run("iam-managed-policy-size", {"s": managed_policy(document(230))})


def test_managed_policy_size_counts_resolved_intrinsics():
    small = document(200)
    assert not run("iam-managed-policy-size", {"s": managed_policy(small)})
    imports = [{"Fn::ImportValue": f"export-{i}"} for i in range(10)]
    assert run("iam-managed-policy-size", {"s": managed_policy(document(200, resource=imports))})


def test_role_inline_policies_add_up():
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {},
            "Policies": [{"PolicyName": "a", "PolicyDocument": document(200)}],
        },
    }
    extra = {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": document(200), "Roles": [{"Ref": "R"}]}}
    assert not run("iam-role-inline-policy-size", {"s": {"Resources": {"R": role}}})
    assert run("iam-role-inline-policy-size", {"s": {"Resources": {"R": role, "P1": extra, "P2": extra}}})


def test_trust_policy_size():
    def role(principals: int) -> dict:
        trust = {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"AWS": [{"Fn::GetAtt": [f"Role{i}", "Arn"]} for i in range(principals)]},
                }
            ]
        }
        return {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}}}

    assert not run("iam-trust-policy-size", {"s": role(2)})
    assert run("iam-trust-policy-size", {"s": role(8)})


def scps(count: int, *, actions: int = 1) -> dict:
    return {
        "Resources": {
            f"Scp{i}": {
                "Type": "AWS::Organizations::Policy",
                "Properties": {
                    "Type": "SERVICE_CONTROL_POLICY",
                    "TargetIds": [{"Fn::GetAtt": ["Ou", "Id"]}, "r-abcd"],
                    "Content": document(actions),
                },
            }
            for i in range(count)
        }
    }


def test_scp_size():
    assert not run("scp-size", {"org": scps(1, actions=150)})
    assert run("scp-size", {"org": scps(1, actions=190)})


def test_scps_per_target_count_full_aws_access():
    assert not run("scp-per-target", {"org": scps(4)})
    findings = run("scp-per-target", {"org": scps(5)})
    assert len(findings) == 2 and "6 SCPs" in findings[0]


def test_template_size_depends_on_how_the_template_travels():
    template = {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Metadata": {"pad": "x" * 60_000}}}}
    via_s3 = {"properties": {"stackTemplateAssetObjectUrl": "s3://bucket/t.json"}}
    assert not run("cfn-template-size", {"s": template}, s=via_s3)
    assert run("cfn-template-size", {"s": template})
    huge = {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Metadata": {"pad": "x" * 1_048_576}}}}
    assert run("cfn-template-size", {"s": huge}, s=via_s3)


@pytest.mark.parametrize(("section", "limit"), [("Resources", 500), ("Outputs", 200), ("Parameters", 200)])
def test_template_counts(section, limit):
    def template(count):
        return {section: {f"X{i}": {"Type": "AWS::SNS::Topic", "Value": "v"} for i in range(count)}}

    assert not run("cfn-template-counts", {"s": template(limit)})
    assert run("cfn-template-counts", {"s": template(limit + 1)})


def kubectl_stacks(wait: str, *, handler_timeout: int = 900) -> dict:
    cluster = {
        "Resources": {
            "Handler": {"Type": "AWS::Lambda::Function", "Properties": {"Timeout": handler_timeout}},
            "Framework": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Timeout": 900,
                    "Environment": {"Variables": {"USER_ON_EVENT_FUNCTION_ARN": {"Fn::GetAtt": ["Handler", "Arn"]}}},
                },
            },
        },
        "Outputs": {"Token": {"Value": {"Fn::GetAtt": ["Framework", "Arn"]}, "Export": {"Name": "cluster:Token"}}},
    }
    platform = {
        "Resources": {
            "Chart": {
                "Type": "Custom::AWSCDK-EKS-HelmChart",
                "Properties": {"ServiceToken": {"Fn::ImportValue": "cluster:Token"}, "Timeout": wait},
            }
        }
    }
    return {"cluster": cluster, "platform": platform}


def test_helm_wait_must_end_before_the_provider_lambda():
    assert not run("lambda-timeout-covers-waits", kubectl_stacks("14m"))
    assert run("lambda-timeout-covers-waits", kubectl_stacks("900s"))
    assert run("lambda-timeout-covers-waits", kubectl_stacks("720s", handler_timeout=600))


def test_lambda_timeout_is_at_most_15_minutes():
    template = {"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {"Timeout": 901}}}}
    assert run("lambda-timeout-covers-waits", {"s": template})


def test_reserved_concurrency_fails_in_new_accounts():
    def function(reserved=None) -> dict:
        props = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
        return {"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": props}}}

    assert not run("lambda-reserved-concurrency", {"a": function(), "b": function(0)})
    assert run("lambda-reserved-concurrency", {"a": function(), "b": function(1)})


def test_lambda_code_and_layers_unzip_to_at_most_250_mb(tmp_path):
    """The function's folder and its layer's folder add up; sparse files stand in for wheels."""

    def assembly(layer_bytes: int, layers: int = 1) -> dict:
        for name, size in (("code", 1_000), ("layer", layer_bytes)):
            (tmp_path / f"asset.{name}").mkdir(exist_ok=True)
            with (tmp_path / f"asset.{name}" / "blob").open("wb") as blob:
                blob.truncate(size)
        manifest = {
            "files": {
                name: {
                    "source": {"path": f"asset.{name}", "packaging": "zip"},
                    "destinations": {"current": {"objectKey": f"{name}.zip"}},
                }
                for name in ("code", "layer")
            }
        }
        (tmp_path / "s.assets.json").write_text(json.dumps(manifest))
        layer = {"Type": "AWS::Lambda::LayerVersion", "Properties": {"Content": {"S3Key": "layer.zip"}}}
        function = {"Code": {"S3Key": "code.zip"}, "Layers": [{"Ref": "L"}] * layers}
        return {"L": layer, "F": {"Type": "AWS::Lambda::Function", "Properties": function}}

    def findings(layer_bytes: int, layers: int = 1) -> list[str]:
        template = {"Resources": assembly(layer_bytes, layers)}
        return run("lambda-package-size", {"s": template}, s={"template_path": tmp_path / "s.template.json"})

    assert not findings(262_144_000 - 1_000)
    assert findings(262_144_000 - 999) == ["s/F: code and layers unzip to 262,144,001 bytes, Lambda allows 262,144,000"]
    assert findings(10, layers=6) == ["s/F: 6 layers, Lambda allows 5"]

"""The restore validation wiring in each environment's data template: the rule fires for this
plan's completed restore jobs only (rehearsed with EventBridge's own matcher in moto), the
function reaches the database, restored instances land behind the database's security group,
and the function ships its handler with the pinned driver in a layer."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from constructs_lib import lambda_deps
from constructs_lib.lambda_deps import RESTORE_VALIDATION
from constructs_lib.restore_validation import RESTORE_JOB_EVENT
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS
PLAN_ARN = "arn:aws:backup:eu-west-1:123456789012:restore-testing-plan:supabase_prod-4c5d"


def _of_type(t, type_: str) -> dict[str, dict]:
    return t.find_resources(type_)


def _rule(t) -> dict:
    rules = [
        r
        for r in _of_type(t, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail-type") == [RESTORE_JOB_EVENT]
    ]
    assert len(rules) == 1
    return rules[0]


def _event(status: str, plan_arn: str) -> dict:
    # As AWS Backup sends it (https://docs.aws.amazon.com/aws-backup/latest/devguide/eventbridge.html).
    return {
        "version": "0",
        "id": "7f3a9c1e-0000-4000-8000-000000000000",
        "detail-type": RESTORE_JOB_EVENT,
        "source": "aws.backup",
        "account": "123456789012",
        "time": "2026-12-05T07:12:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "restoreJobId": "a1b2c3d4",
            "status": status,
            "resourceType": "RDS",
            "createdResourceArn": "arn:aws:rds:eu-west-1:123456789012:db:awsbackup-restore-test-7f3a9c",
            "restoreTestingPlanArn": plan_arn,
        },
    }


@pytest.mark.parametrize("env", ENVS)
def test_rule_matches_only_completed_jobs_of_this_plan(template, env):
    t = template(env, "data")
    (plan_id,) = _of_type(t, "AWS::Backup::RestoreTestingPlan")
    pattern = _rule(t)["Properties"]["EventPattern"]
    assert pattern["detail"]["restoreTestingPlanArn"] == [{"Fn::GetAtt": [plan_id, "RestoreTestingPlanArn"]}]
    concrete = json.dumps({**pattern, "detail": {**pattern["detail"], "restoreTestingPlanArn": [PLAN_ARN]}})
    with mock_aws():
        events = boto3.client("events", region_name="eu-west-1")
        sqs = boto3.client("sqs", region_name="eu-west-1")
        queue = sqs.create_queue(QueueName="restore-validation")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="restore-validation", EventPattern=concrete)
        events.put_targets(Rule="restore-validation", Targets=[{"Id": "q", "Arn": queue_arn}])

        def delivered(event: dict) -> bool:
            """EventBridge (moto) routes the event through the rule, or not."""
            events.put_events(
                Entries=[
                    {
                        "Source": event["source"],
                        "DetailType": event["detail-type"],
                        "Detail": json.dumps(event["detail"]),
                    }
                ]
            )
            received = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])
            for m in received:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            return bool(received)

        assert delivered(_event("COMPLETED", PLAN_ARN))
        assert not delivered(_event("FAILED", PLAN_ARN))
        assert not delivered(_event("COMPLETED", PLAN_ARN.replace("prod", "staging")))


@pytest.mark.parametrize("env", ENVS)
def test_function_reaches_the_database_and_restored_instances_share_its_group(template, env):
    t = template(env, "data")
    (db_id,) = [
        k for k, v in _of_type(t, "AWS::RDS::DBInstance").items() if "SourceDBInstanceIdentifier" not in v["Properties"]
    ]
    db_groups = _of_type(t, "AWS::RDS::DBInstance")[db_id]["Properties"]["VPCSecurityGroups"]
    assert len(db_groups) == 1
    db_group = db_groups[0]["Fn::GetAtt"][0]
    ingress = [
        r["Properties"]
        for r in _of_type(t, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [db_group, "GroupId"]}
    ]
    sources = {i["SourceSecurityGroupId"]["Fn::GetAtt"][0] for i in ingress if i["FromPort"] == 5432}
    functions = {
        k: v
        for k, v in _of_type(t, "AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == "handler.handler" and "RO_SECRET_ARN" in json.dumps(v)
    }
    (function,) = functions.values()
    (function_group,) = [g["Fn::GetAtt"][0] for g in function["Properties"]["VpcConfig"]["SecurityGroupIds"]]
    assert function_group in sources
    (selection,) = _of_type(t, "AWS::Backup::RestoreTestingSelection").values()
    overrides = selection["Properties"]["RestoreMetadataOverrides"]
    assert overrides["vpcSecurityGroupIds"] == {"Fn::Join": ["", ['["', {"Fn::GetAtt": [db_group, "GroupId"]}, '"]']]}
    env_vars = function["Properties"]["Environment"]["Variables"]
    assert env_vars["DB_NAME"] == "postgres" and env_vars["SOURCE_PORT"] == "5432"


@pytest.mark.parametrize("env", ENVS[:1])
def test_function_ships_the_handler_and_a_layer_of_the_pinned_driver(assembly, template, env):
    t = template(env, "data")
    resources = t.to_json()["Resources"]
    (function,) = [v for v in _of_type(t, "AWS::Lambda::Function").values() if "RO_SECRET_ARN" in json.dumps(v)]
    props = function["Properties"]
    assert props["Runtime"] == RESTORE_VALIDATION.runtime.name
    assert props["Architectures"] == [RESTORE_VALIDATION.architecture.name]
    code = Path(assembly.outdir) / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
    assert sorted(p.name for p in code.iterdir()) == ["handler.py"]
    # pg8000 and its dependencies: the wheels `make install` fetched for this runtime and
    # architecture, under python/ as Lambda reads a layer (/opt/python on sys.path).
    (layer_ref,) = props["Layers"]
    layer = resources[layer_ref["Ref"]]["Properties"]
    assert layer["CompatibleRuntimes"] == [props["Runtime"]]
    assert layer["CompatibleArchitectures"] == props["Architectures"]
    deps = Path(assembly.outdir) / f"asset.{layer['Content']['S3Key'].removesuffix('.zip')}"
    assert [p.name for p in deps.iterdir()] == ["python"]
    assert (deps / "python" / "pg8000" / "native.py").is_file() and (deps / "python" / "scramp" / "core.py").is_file()
    assert not lambda_deps.problems(
        deps / "python",
        runtime=RESTORE_VALIDATION.runtime,
        architecture=RESTORE_VALIDATION.architecture,
        pinned=lambda_deps.pins(RESTORE_VALIDATION.requirements),
    )

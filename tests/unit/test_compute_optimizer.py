"""Compute Optimizer enrollment: the handler's calls (botocore Stubber, no network) and the org
stack's inline function with its narrow role, still deployable without bootstrap."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from botocore.stub import Stubber

from config import load_config
from constructs_lib.compute_optimizer import HANDLER, SERVICE
from ops.compute_optimizer import handler
from stacks.composition import ORG_STACK_ID
from stacks.org_stack import OrganizationStack

# What the rehearsal allows an inline (bootstrap-free) template.
INLINE_TEMPLATE_LIMIT = 51_200


def _client():
    return boto3.client("compute-optimizer", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_enroll_the_organization(request_type: str) -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "update_enrollment_status", {"status": "Active"}, {"status": "Active", "includeMemberAccounts": True}
        )
        assert handler.enroll(client, request_type) == {"Status": "Active"}
        stub.assert_no_pending_responses()


def test_delete_leaves_the_enrollment() -> None:
    client = _client()
    with Stubber(client):  # any call would raise: no response is queued
        assert handler.enroll(client, "Delete") == {}


@pytest.fixture
def cfnresponse(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The module CloudFormation provides to inline code, recording what the handler sends."""
    sent: list[tuple[Any, ...]] = []
    module = types.ModuleType("cfnresponse")
    module.SUCCESS, module.FAILED = "SUCCESS", "FAILED"  # type: ignore[attr-defined]
    module.send = lambda *args, **kwargs: sent.append((*args, kwargs))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cfnresponse", module)
    return sent


def test_handler_reports_success_and_failure(cfnresponse, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client()
    monkeypatch.setattr(boto3, "client", lambda service: client)
    with Stubber(client) as stub:
        stub.add_response("update_enrollment_status", {"status": "Active"})
        stub.add_client_error("update_enrollment_status", "AccessDeniedException", "not the management account")
        handler.handler({"RequestType": "Create"}, None)
        handler.handler({"RequestType": "Update"}, None)
    (_, _, ok, data, physical, _), (_, _, failed, _, _, kwargs) = cfnresponse
    assert (ok, data, physical) == ("SUCCESS", {"Status": "Active"}, handler.PHYSICAL_ID)
    assert failed == "FAILED" and "not the management account" in kwargs["reason"]


@pytest.fixture(scope="module")
def org_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], int]:
    cfg = load_config()
    out = tmp_path_factory.mktemp("org")
    app = cdk.App(outdir=str(out))
    OrganizationStack(
        app,
        ORG_STACK_ID,
        cfg=cfg,
        env=cdk.Environment(account=cfg.organization.management_account_id, region=cfg.organization.home_region),
        synthesizer=cdk.LegacyStackSynthesizer(),
    )
    app.synth()
    text = (Path(out) / f"{ORG_STACK_ID}.template.json").read_text()
    return json.loads(text), len(text)


def _of_type(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == type_]


def test_org_stack_runs_the_handler_inline(org_template) -> None:
    template, size = org_template
    [function] = [f for f in _of_type(template, "AWS::Lambda::Function") if "ZipFile" in f["Properties"]["Code"]]
    assert function["Properties"]["Code"]["ZipFile"] == HANDLER.read_text()
    assert function["Properties"]["Handler"] == "index.handler"
    [enrollment] = _of_type(template, "AWS::CloudFormation::CustomResource")
    assert enrollment["Properties"]["ServiceToken"]["Fn::GetAtt"][0] in template["Resources"]
    # No asset: the org stack still deploys inline, before any bootstrap.
    assert not any("S3Bucket" in f["Properties"]["Code"] for f in _of_type(template, "AWS::Lambda::Function"))
    assert size < INLINE_TEMPLATE_LIMIT


def test_enrollment_role_may_do_only_what_opting_in_needs(org_template) -> None:
    template, _ = org_template
    [policy] = [
        p
        for p in _of_type(template, "AWS::IAM::ManagedPolicy")
        if any(s.get("Sid") == "Enroll" for s in p["Properties"]["PolicyDocument"]["Statement"])
    ]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["Enroll"]["Action"] == "compute-optimizer:UpdateEnrollmentStatus"
    assert statements["ServiceLinkedRole"]["Condition"] == {"StringEquals": {"iam:AWSServiceName": SERVICE}}
    assert "AWSServiceRoleForComputeOptimizer" in json.dumps(statements["ServiceLinkedRole"]["Resource"])
    assert statements["TrustedAccess"]["Condition"] == {"StringEquals": {"organizations:ServicePrincipal": SERVICE}}
    actions = {a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {
        "compute-optimizer:UpdateEnrollmentStatus",
        "iam:CreateServiceLinkedRole",
        "organizations:EnableAWSServiceAccess",
        "organizations:DescribeOrganization",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }

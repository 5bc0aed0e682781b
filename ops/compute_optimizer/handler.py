"""CloudFormation custom resource: opts the organization in to AWS Compute Optimizer.

No CloudFormation type enrolls an account (AWS::ComputeOptimizer has only AutomationRule), so
the org stack runs this handler, inlined into the function (the org stack deploys before any
bootstrap, so it carries no asset; CloudFormation provides `cfnresponse` to inline Python code).
Create and Update call UpdateEnrollmentStatus(Active, includeMemberAccounts) from the management
account: every member account is enrolled and its EC2, Auto Scaling, EBS and Lambda right-sizing
recommendations appear there. Delete leaves the enrollment: opting out deletes the
recommendations and their history, which is a decision for a person, not a stack teardown.
"""

from __future__ import annotations

from typing import Any

PHYSICAL_ID = "compute-optimizer-organization-enrollment"


def enroll(client: Any, request_type: str) -> dict[str, Any]:
    """The enrollment call for one CloudFormation request; returns the status Compute Optimizer reports."""
    if request_type == "Delete":
        return {}
    response = client.update_enrollment_status(status="Active", includeMemberAccounts=True)
    return {"Status": response.get("status", "")}


def handler(event: dict[str, Any], context: Any) -> None:
    import boto3
    import cfnresponse  # type: ignore[import-not-found]  # provided by CloudFormation to inline code

    try:
        data = enroll(boto3.client("compute-optimizer"), event["RequestType"])
        cfnresponse.send(event, context, cfnresponse.SUCCESS, data, PHYSICAL_ID)
    except Exception as error:  # every failure must reach CloudFormation, or the stack waits an hour
        cfnresponse.send(event, context, cfnresponse.FAILED, {}, PHYSICAL_ID, reason=str(error)[:500])

"""cdk-nag (v3) wiring and the only sanctioned way to acknowledge a finding.

Every acknowledgement goes through `acknowledge`, on the narrowest construct, with a reason a
reviewer can check; the tests count them and reject vague reasons.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks
from constructs import IConstruct

MIN_REASON_LENGTH = 40


def nag_packs() -> list:
    return [AwsSolutionsChecks(), NIST80053R5Checks()]


def enable_nag(app: cdk.App) -> None:
    """Run the packs on every synth: violations fail `cdk synth`."""
    cdk.Validations.of(app).add_plugins(*nag_packs())


def acknowledge(construct: IConstruct, *findings: tuple[str, str]) -> None:
    """Acknowledge (rule id, reason) pairs on one construct.

    Rule ids may carry a finding suffix, e.g. "AwsSolutions-IAM5[Action::s3:*]".
    """
    for rule_id, reason in findings:
        if len(reason.strip()) < MIN_REASON_LENGTH:
            raise ValueError(f"acknowledgement of {rule_id} on {construct.node.path} needs a specific reason")
        cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))

"""Cross-account deployment: execution policy per member account and the bootstrap commands."""

import pytest

from config.naming import EXECUTION_POLICY_NAME
from scripts.bootstrap import commands
from tests.conftest import ENVIRONMENTS


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_execution_policy_scopes_iam_to_stack_names(template, cfg, env):
    t = template(f"{env}-deploy-access")
    policies = t.find_resources("AWS::IAM::ManagedPolicy", {"Properties": {"ManagedPolicyName": EXECUTION_POLICY_NAME}})
    (policy,) = policies.values()
    assert policy["DeletionPolicy"] == "Retain"
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    iam_resources = statements["StackOwnedIam"]["Resource"]
    account = cfg.environments[env].account.id
    assert all(f":iam::{account}:" in str(r) and f"/{env}-*" in str(r) for r in iam_resources), iam_resources
    assert statements["NoLongLivedCredentials"]["Effect"] == "Deny"
    assert "iam:CreateAccessKey" in statements["NoLongLivedCredentials"]["Action"]
    assert "iam:*" not in statements["PlatformServices"]["Action"]
    assert "organizations:*" not in statements["PlatformServices"]["Action"]


def test_bootstrap_trusts_tooling_for_every_account_and_region(cfg):
    cmds = commands(cfg)
    targets = {c[3] for c in cmds}
    for env in cfg.environments.values():
        for region in {env.region, env.dr_region, "us-east-1"}:
            assert f"aws://{env.account.id}/{region}" in targets
    for command in cmds[1:]:
        assert command[command.index("--trust") + 1] == cfg.organization.tooling.id
        policy = command[command.index("--cloudformation-execution-policies") + 1]
        assert policy.endswith(f":policy/{EXECUTION_POLICY_NAME}") and "AdministratorAccess" not in policy
    assert cmds[0][3] == f"aws://{cfg.organization.tooling.id}/{cfg.organization.tooling_region}"


def test_bootstrap_covers_every_stack_that_needs_it(assembly, cfg):
    """Each account and region a stack needs bootstrap resources in is one `make bootstrap` prints."""

    bootstrapped = {command[3] for command in commands(cfg)}
    needing = {stack.env for stack in assembly.cloud if stack.needs_bootstrap}
    assert needing and needing <= bootstrapped, needing - bootstrapped

"""Builds the whole app from the organization config: what `app.py` and the tests share."""

from __future__ import annotations

import aws_cdk as cdk

from config.model import ORG_STACK_ID, PIPELINE_STACK_ID, OrgConfig
from constructs_lib.checkov import add_framework_function_skips
from constructs_lib.nag import enable_nag
from stacks.deploy_access_stack import DeployAccessStack
from stacks.org_stack import OrganizationStack
from stacks.pipeline_stack import PipelineStack
from stacks.stage import EnvironmentStage


def build_app(app: cdk.App, cfg: OrgConfig, *, nag: bool = True) -> dict[str, cdk.Stage]:
    """Adds every stack. `nag=False` is for the tests, which run the packs per stack themselves."""
    org = cfg.organization
    OrganizationStack(
        app,
        ORG_STACK_ID,
        stack_name=f"{cfg.project}-organization",
        cfg=cfg,
        env=cdk.Environment(account=org.management_account_id, region=org.home_region),
        # Deployed with the management account's own credentials: that account is never
        # bootstrapped, so no CDK roles that other accounts could assume exist there. The legacy
        # synthesizer names no bootstrap role and the CLI sends its template inline (it must
        # stay below 51,200 bytes and without assets: rehearsal rules cfn-template-size,
        # journey-bootstrap-order); BootstraplessSynthesizer would still name the bootstrap roles.
        synthesizer=cdk.LegacyStackSynthesizer(),
        termination_protection=True,
        description=f"{cfg.project}: OUs, member accounts, SCPs, organization trail",
    )
    for name, env in cfg.environments.items():
        DeployAccessStack(
            app,
            f"{name}-deploy-access",
            stack_name=f"{name}-deploy-access",
            stack_prefixes=[f"{name}-"],
            env=cdk.Environment(account=env.account.id, region=env.region),
            description=f"{cfg.project} {name}: CloudFormation execution policy for cross-account deploys",
        )
    stages = {name: EnvironmentStage(app, name, cfg=cfg, env_name=name) for name in cfg.environments}
    # Before the pipeline: CDK Pipelines synthesizes each stage it adds, and a stage's
    # assembly is cached from that first synthesis.
    add_framework_function_skips(app)
    PipelineStack(
        app,
        PIPELINE_STACK_ID,
        stack_name=f"{cfg.project}-pipeline",
        cfg=cfg,
        stages=stages,
        env=cdk.Environment(account=org.tooling.id, region=org.tooling_region),
        description=f"{cfg.project}: cross-account delivery pipeline (CDK Pipelines)",
    )
    # Again for the pipeline stack and the per-region support stacks it generated.
    add_framework_function_skips(app)
    if nag:
        enable_nag(app)
    return stages

"""The delivery pipeline, in the tooling account: source -> synth and full test suite ->
security scan -> first environment (+ live smoke tests) -> manual approval -> next ones.

Every environment deploys into its own account and region through the bootstrap roles that
trust the tooling account (`make bootstrap`).
"""

from __future__ import annotations

import re
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codestarnotifications as notifications
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import pipelines
from constructs import Construct

from config import naming
from config.loader import DEFAULT_CONFIG, ConfigError
from config.model import OrgConfig
from constructs_lib.checkov import skip
from constructs_lib.nag import acknowledge, acknowledge_generated_grants

# Pinned scanner for the image step; Trivy publishes checksummed Debian packages.
TRIVY_VERSION = "0.67.2"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
# The scan step installs PyYAML alone (scripts/images.py needs nothing else), at the project's pin.
PYYAML_REQUIREMENT = next(
    line for line in (REPOSITORY_ROOT / "requirements.txt").read_text().splitlines() if line.startswith("PyYAML==")
)


# The wildcard actions CDK's grant helpers emit (grantReadWrite on buckets and keys).
GENERATED_GRANT_ACTIONS = frozenset(
    {
        "s3:GetObject*",
        "s3:GetBucket*",
        "s3:List*",
        "s3:DeleteObject*",
        "s3:Abort*",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
    }
)


def smoke_role_arn(cfg: OrgConfig, env_name: str) -> str:
    return f"arn:aws:iam::{cfg.environments[env_name].account.id}:role/{naming.smoke_role_name(env_name)}"


def smoke_runner_role_arn(cfg: OrgConfig, env_name: str) -> str:
    """The smoke-test project's own role in the tooling account: the only one the environment's smoke role trusts."""
    return f"arn:aws:iam::{cfg.organization.tooling.id}:role/{cfg.project}-smoke-runner-{env_name}"


def deploying_config(scope: Construct) -> str:
    """The config file this app was synthesized from, relative to the repository root.

    The pipeline builds, tests and smoke-tests from source, so it must be handed the same file
    (`-c config=...`, which `make ... CONFIG=...` passes), and that file must be in the repository.
    """
    given = Path(scope.node.try_get_context("config") or DEFAULT_CONFIG).resolve()
    if not given.is_relative_to(REPOSITORY_ROOT):
        raise ConfigError(
            f"-c config: '{given}' given; the pipeline builds, tests and smoke-tests from the repository "
            f"({REPOSITORY_ROOT}), so its config must be a file in it; fix: commit the config to the "
            "repository and synthesize with CONFIG=<its path in the repository>"
        )
    return given.relative_to(REPOSITORY_ROOT).as_posix()


class PipelineStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cfg: OrgConfig,
        stages: dict[str, cdk.Stage],
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        source = pipelines.CodePipelineSource.connection(
            cfg.pipeline.repository,
            cfg.pipeline.branch,
            connection_arn=cfg.pipeline.connection_arn,
        )
        self.config_path = deploying_config(self)
        self.synth = pipelines.ShellStep(
            "SynthAndTest",
            input=source,
            # The README's test command, on the config this pipeline was deployed from: the whole
            # offline suite gates every deployment, and self-mutation keeps the same config.
            # `make test` runs `make synth` first, which leaves cdk.out for the deploy stages.
            commands=[f"make test CONFIG={self.config_path}"],
            primary_output_directory="cdk.out",
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"{cfg.project}-delivery",
            synth=self.synth,
            # CDK creates the KMS-encrypted artifact bucket and, for the DR regions, a support
            # stack per region with its replication bucket; the keys let each environment
            # account's deploy role read artifacts.
            cross_account_keys=True,
            enable_key_rotation=True,
            pipeline_type=codepipeline.PipelineType.V2,
            self_mutation=True,
            publish_assets_in_parallel=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=BUILD_IMAGE,
                    compute_type=codebuild.ComputeType.LARGE,
                ),
                timeout=cdk.Duration.minutes(60),
            ),
        )
        self.security_scan = pipelines.CodeBuildStep(
            "SecurityScan",
            input=source,
            additional_inputs={"cdk.out": self.synth.primary_output},
            install_commands=[
                f"curl -sSfL -o /tmp/trivy.deb https://get.trivy.dev/deb/trivy_{TRIVY_VERSION}_Linux-64bit.deb",
                "dpkg -i /tmp/trivy.deb",
                f"pip install --quiet {PYYAML_REQUIREMENT}",
            ],
            commands=[
                # cdk-nag already failed the synth on any finding; keep its report in the log as evidence.
                "cat cdk.out/validation-report.json || true",
                "python3 -m scripts.images cdk.out/manifests > images.txt",
                'while read -r image; do trivy image --quiet --severity CRITICAL --ignore-unfixed --exit-code 1 "$image"; done < images.txt',
            ],
        )
        self.waves = []
        self.smoke_runners: list[iam.Role] = []
        for position, env_name in enumerate(cfg.pipeline.promotion_order):
            env = cfg.environments[env_name]
            pre: list[pipelines.Step] = (
                [self.security_scan]
                if position == 0
                else [
                    pipelines.ManualApprovalStep(
                        f"Promote-{env_name}", comment=f"Promote to {env_name} after the smoke tests passed"
                    ),
                ]
            )
            runner_arn = smoke_runner_role_arn(cfg, env_name)
            runner = iam.Role(
                self,
                f"SmokeRunner-{env_name}",
                role_name=runner_arn.rsplit("/", 1)[1],
                assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
                description=f"CodeBuild role of the {env_name} smoke tests; {env_name}'s smoke role trusts only it",
            )
            self.smoke_runners.append(runner)
            smoke = pipelines.CodeBuildStep(
                f"SmokeTests-{env_name}",
                input=source,
                role=runner,
                env={
                    "SUPABASE_URL": f"https://{naming.api_host(env)}",
                    "SUPABASE_ENV": env_name,
                    "SUPABASE_CONFIG": self.config_path,
                    "SMOKE_ROLE_ARN": smoke_role_arn(cfg, env_name),
                },
                commands=[
                    "make install",
                    # CodeBuild's credentials assume the environment's read-only smoke role.
                    "mkdir -p ~/.aws && printf '[profile smoke]\\nrole_arn = %s\\ncredential_source = EcsContainer\\n' "
                    '"$SMOKE_ROLE_ARN" > ~/.aws/config',
                    "AWS_PROFILE=smoke .venv/bin/python -m pytest -m smoke tests/smoke -q",
                ],
                role_policy_statements=[
                    iam.PolicyStatement(
                        actions=["sts:AssumeRole"],
                        resources=[smoke_role_arn(cfg, env_name)],
                    )
                ],
            )
            self.waves.append(self.pipeline.add_stage(stages[env_name], pre=pre, post=[smoke]))

        self.pipeline.build_pipeline()
        self._acknowledge_generated_resources()
        # cfn-lint's E3703 wants the deploy actions' RoleArn as one Fn::Sub string; CDK Pipelines
        # renders the bootstrap role ARNs with Fn::Join over AWS::Partition, which is equivalent.
        self.pipeline.pipeline.node.default_child.add_metadata(
            "cfn-lint",
            {"config": {"ignore_checks": ["E3703"]}},
        )
        topic_key = kms.Key(
            self, "NotificationsKey", enable_key_rotation=True, description="Pipeline failure notifications"
        )
        topic_key.grant_encrypt_decrypt(iam.ServicePrincipal("codestar-notifications.amazonaws.com"))
        self.notifications_topic = sns.Topic(
            self,
            "PipelineNotifications",
            master_key=topic_key,
            enforce_ssl=True,
            topic_name=f"{cfg.project}-pipeline-notifications",
        )
        self.notifications_topic.add_subscription(subscriptions.EmailSubscription(cfg.organization.tooling.email))
        self.notification_rule = notifications.NotificationRule(
            self,
            "PipelineFailures",
            source=self.pipeline.pipeline,
            events=[
                "codepipeline-pipeline-pipeline-execution-failed",
                "codepipeline-pipeline-manual-approval-needed",
                "codepipeline-pipeline-stage-execution-failed",
            ],
            targets=[self.notifications_topic],
            detail_type=notifications.DetailType.FULL,
        )

    def _acknowledge_generated_resources(self) -> None:
        """CDK Pipelines writes its buckets and its roles' policies; acknowledge reviewed findings only."""
        code_pipeline = self.pipeline.pipeline
        buckets = [code_pipeline.artifact_bucket] + [
            support.replication_bucket for support in code_pipeline.cross_region_support.values()
        ]
        bucket_ids = [cdk.Stack.of(b).get_logical_id(b.node.default_child) for b in buckets]
        # The support stacks' replication buckets get physical names CDK generates (from this
        # stack's name, truncated); resolving them here yields exactly those literals.
        replication_bucket_names = [
            self.resolve(support.replication_bucket.bucket_name)
            for support in code_pipeline.cross_region_support.values()
        ]
        allowed_resources = (
            *(rf"<{bucket_id}\.Arn>/\*" for bucket_id in bucket_ids),
            *(rf"arn:<AWS::Partition>:s3:::{re.escape(name)}/\*" for name in replication_bucket_names),
            rf"arn:<AWS::Partition>:logs:{self.region}:{self.account}:log-group:/aws/codebuild/.*",
            rf"arn:<AWS::Partition>:codebuild:{self.region}:{self.account}:report-group/.*",
            # Self-mutation and asset publishing assume the CDK bootstrap roles of each target
            # account; CDK Pipelines conditions these on the aws-cdk:bootstrap-role tag.
            r"arn:\*:iam::\d{12}:role/\*",
            r"\*",
        )
        reason = (
            "CDK Pipelines grant: object-level access to this pipeline's artifact and replication buckets and "
            "keys, and its own CodeBuild log groups and report groups"
        )
        scopes = [self.pipeline, *self.smoke_runners] + [
            support.stack for support in code_pipeline.cross_region_support.values()
        ]
        for scope in scopes:
            for construct in scope.node.find_all():
                if isinstance(construct, iam.CfnPolicy):
                    acknowledge_generated_grants(
                        construct,
                        reason=reason,
                        allowed_actions=GENERATED_GRANT_ACTIONS,
                        allowed_resources=allowed_resources,
                    )
                    skip(
                        construct,
                        (
                            "CKV_AWS_111",
                            "CDK Pipelines policy: writes go to this pipeline's artifact buckets and its CodeBuild logs/reports",
                        ),
                    )
                    acknowledge(
                        construct,
                        (
                            "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
                            "policy generated by CDK Pipelines for one of its own roles; CDK regenerates it on every synth",
                        ),
                    )
        for bucket in buckets:
            skip(
                bucket.node.default_child,
                (
                    "CKV_AWS_18",
                    "pipeline artifact bucket generated by CDK Pipelines; every read and write is in CloudTrail",
                ),
                (
                    "CKV_AWS_21",
                    "artifacts are immutable per execution and rebuilt from source; versions would only add cost",
                ),
            )
            acknowledge(
                bucket.node.default_child,
                (
                    "AwsSolutions::AwsSolutions-S1",
                    "pipeline artifact bucket generated by CDK Pipelines; every read and write is already in CloudTrail",
                ),
                (
                    "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled",
                    "pipeline artifact bucket generated by CDK Pipelines; every read and write is already in CloudTrail",
                ),
                (
                    "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
                    "pipeline artifacts are reproducible from the source repository at the same commit; no DR copy is needed",
                ),
                (
                    "NIST.800.53.R5::NIST.800.53.R5-S3BucketVersioningEnabled",
                    "artifacts are immutable per execution and rebuilt from source; versions would only add cost",
                ),
            )

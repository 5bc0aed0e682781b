"""Per-environment feature flags, delivered by AWS AppConfig with a gradual, alarm-guarded rollout.

Flags let a release ship dark and be switched on in steps; AppConfig deploys each change to
a growing share of clients (linear, with a bake time) and rolls it back if the environment's
alarms fire during the rollout. Clients read flags through the AppConfig Data API or the
AppConfig agent sidecar (README "Feature flags").
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_appconfig as appconfig
from constructs import Construct

from config.model import OrgConfig


def flags_document(flags: dict[str, bool]) -> dict:
    """AppConfig's AWS.AppConfig.FeatureFlags content format."""
    return {
        "version": "1",
        "flags": {name: {"name": name} for name in sorted(flags)},
        "values": {name: {"enabled": enabled} for name, enabled in sorted(flags.items())},
    }


class FeatureFlagsStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        self.application = appconfig.Application(
            self,
            "Application",
            application_name=f"{cfg.project}-{env_name}",
            description=f"{cfg.project} {env_name} release flags",
        )
        self.appconfig_environment = appconfig.Environment(
            self,
            "Environment",
            application=self.application,
            environment_name=env_name,
        )
        # Production moves slower: a bad flag reaches at most a fifth of clients per step and
        # is watched for longer before the rollout completes.
        self.strategy = appconfig.DeploymentStrategy(
            self,
            "GradualRollout",
            deployment_strategy_name=f"{cfg.project}-{env_name}-gradual",
            rollout_strategy=appconfig.RolloutStrategy.linear(
                growth_factor=20 if env.production else 50,
                deployment_duration=cdk.Duration.minutes(20 if env.production else 4),
                final_bake_time=cdk.Duration.minutes(15 if env.production else 2),
            ),
        )
        self.flags = appconfig.HostedConfiguration(
            self,
            "ReleaseFlags",
            application=self.application,
            name="release-flags",
            type=appconfig.ConfigurationType.FEATURE_FLAGS,
            content=appconfig.ConfigurationContent.from_inline_json(json.dumps(flags_document(env.release_flags))),
            deployment_strategy=self.strategy,
            deploy_to=[self.appconfig_environment],
        )

"""One cdk.Stage per environment: used by `cdk deploy ENV/*` and by the delivery pipeline."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from config import naming
from config.model import OrgConfig
from stacks.network_stack import NetworkStack


class EnvironmentStage(cdk.Stage):
    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, **kwargs) -> None:
        env = cfg.environments[env_name]
        super().__init__(scope, id_, env=cdk.Environment(account=env.account.id, region=env.region), **kwargs)
        self.env_name = env_name
        stateful = {"termination_protection": env.production}

        def name(unit: str) -> str:
            return naming.stack_name(env_name, unit)

        self.network = NetworkStack(
            self, "network", stack_name=name("network"), env_name=env_name, env_config=env,
            description=f"{cfg.project} {env_name}: VPC, flow logs, endpoints", **stateful,
        )
        for stack in self.node.children:
            if isinstance(stack, cdk.Stack):
                cdk.Tags.of(stack).add("project", cfg.project)
                cdk.Tags.of(stack).add("environment", env_name)

"""One environment's cost guardrails: a monthly budget and Cost Anomaly Detection.

Both notify the alerts topic (whose policy admits budgets.amazonaws.com and
costalerts.amazonaws.com). Spend is attributed through the `project` and `environment` tags
the stage puts on every stack; docs/alerts-aws.md says how to activate them as cost
allocation tags.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from config.model import OrgConfig
from constructs_lib.alarms import BudgetAlerts, CostAnomalyAlerts


class CostStack(cdk.Stack):
    def __init__(
        self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, alerts_topic: sns.ITopic, **kwargs
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        name = f"{cfg.project}-{env_name}"
        self.budget = BudgetAlerts(
            self,
            "Budget",
            budget_name=f"{name}-monthly",
            monthly_usd=env.monthly_budget_usd,
            email=env.alert_email,
            topic=alerts_topic,
        )
        self.anomalies = CostAnomalyAlerts(
            self,
            "Anomalies",
            name=name,
            monthly_usd=env.monthly_budget_usd,
            topic=alerts_topic,
        )

"""Where alerts go: critical and warning to the environment's SNS topic (and Slack or
PagerDuty when configured), info nowhere but the Alertmanager and Grafana UIs."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from config.model import Observability
from k8s_charts.aws_values import AwsValues
from k8s_charts.monitoring.objects import OBSERVABILITY_NAMESPACE, RELEASE_LABELS, api_object, external_secret

ALERTMANAGER_CONFIG_NAME = "supabase-alerting"
SLACK_SECRET = "alertmanager-slack"
PAGERDUTY_SECRET = "alertmanager-pagerduty"


def _severity(regex: str) -> list[dict[str, str]]:
    return [{"name": "severity", "matchType": "=~", "value": regex}]


def add_alertmanager_config(scope: Construct, values: AwsValues, obs: Observability) -> None:
    receivers: list[dict[str, Any]] = [
        {"name": "null"},
        {
            "name": "sns",
            "snsConfigs": [
                {
                    "topicARN": values.alerts_topic_arn,
                    # No keys: Alertmanager's pod identity role grants sns:Publish on this topic.
                    "sigv4": {"region": values.region},
                    "subject": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})",
                    "sendResolved": True,
                }
            ],
        },
    ]
    routes: list[dict[str, Any]] = []
    if obs.pagerduty_secret_name:
        external_secret(
            scope,
            "pagerduty-secret",
            name=PAGERDUTY_SECRET,
            namespace=OBSERVABILITY_NAMESPACE,
            data=[("routing-key", obs.pagerduty_secret_name, None)],
        )
        receivers.append(
            {
                "name": "pagerduty",
                "pagerdutyConfigs": [
                    {"routingKey": {"name": PAGERDUTY_SECRET, "key": "routing-key"}, "sendResolved": True}
                ],
            }
        )
        routes.append({"receiver": "pagerduty", "matchers": _severity("critical"), "continue": True})
    if obs.slack_webhook_secret_name:
        external_secret(
            scope,
            "slack-secret",
            name=SLACK_SECRET,
            namespace=OBSERVABILITY_NAMESPACE,
            data=[("webhook-url", obs.slack_webhook_secret_name, None)],
        )
        receivers.append(
            {
                "name": "slack",
                "slackConfigs": [
                    {
                        "apiURL": {"name": SLACK_SECRET, "key": "webhook-url"},
                        "sendResolved": True,
                        "title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
                        "text": "{{ range .Alerts }}{{ .Annotations.summary }} {{ .Annotations.runbook_url }}\n{{ end }}",
                    }
                ],
            }
        )
        routes.append({"receiver": "slack", "matchers": _severity("critical|warning"), "continue": True})
    routes.append({"receiver": "sns", "matchers": _severity("critical|warning")})
    routes.append({"receiver": "null", "matchers": _severity("info")})

    api_object(
        scope,
        "alertmanager-config",
        api_version="monitoring.coreos.com/v1alpha1",
        kind="AlertmanagerConfig",
        name=ALERTMANAGER_CONFIG_NAME,
        namespace=OBSERVABILITY_NAMESPACE,
        labels=RELEASE_LABELS,
        body={
            "spec": {
                "route": {
                    "receiver": "null",
                    "groupBy": ["alertname", "namespace", "severity"],
                    "groupWait": "30s",
                    "groupInterval": "5m",
                    "repeatInterval": "4h",
                    "routes": routes,
                },
                "receivers": receivers,
                "inhibitRules": [
                    {
                        "sourceMatch": [{"name": "severity", "matchType": "=", "value": "critical"}],
                        "targetMatch": [{"name": "severity", "matchType": "=", "value": "warning"}],
                        "equal": ["alertname", "namespace"],
                    }
                ],
            }
        },
    )

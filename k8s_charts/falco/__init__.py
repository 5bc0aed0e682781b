"""Falco runtime detection: the project's rules and the values of the falco Helm release.

The CDK installs the vendored falco chart (charts/falco-<FALCO_CHART_VERSION>, charts/SOURCES.yaml)
with `helm_values(values)`: the modern eBPF probe without a privileged container, the rules of
`supabase_rules.yaml` as `customRules`, and falcosidekick publishing WARNING and above to the
environment's alerts SNS topic. falcosidekick signs its SNS calls with the EKS Pod Identity of
SIDEKICK_SERVICE_ACCOUNT in FALCO_NAMESPACE, which needs sns:Publish on that topic only.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from config import yamlio
from k8s_charts.aws_values import AwsValues

FALCO_CHART_VERSION = "9.1.0"  # Falco 0.44.1; bundles falcosidekick chart 0.12.x
FALCO_NAMESPACE = "falco"
# The falco chart sends events to http://<release>-falcosidekick:2801 whatever the subchart's
# fullnameOverride says, and falcosidekick runs as a service account named like its Service:
# both keep the default name (tests/deploy/test_helm_charts.py renders the two together).
SIDEKICK_SERVICE_ACCOUNT = "falco-falcosidekick"
RULES_FILE = "supabase-rules.yaml"
ALERT_MINIMUM_PRIORITY = "warning"

# Macros of Falco's default ruleset (falco-rules:5, rules/falco_rules.yaml) that our
# conditions use. Nothing else is borrowed: a rename upstream breaks only these four.
DEFAULT_RULESET_MACROS = ("spawned_process", "container", "open_write", "open_read")
DEFAULT_RULESET_LISTS: tuple[str, ...] = ()


# The committed file is shipped as written (comments included); only the VPC range changes.
VPC_PLACEHOLDER = "- list: supabase_vpc_cidrs\n  items: []\n"


def rules_yaml(vpc_cidr: str) -> str:
    text = resources.files(__package__).joinpath("supabase_rules.yaml").read_text(encoding="utf-8")
    if text.count(VPC_PLACEHOLDER) != 1:
        raise ValueError("supabase_rules.yaml must define supabase_vpc_cidrs once, with items: []")
    # Falco reads an unquoted CIDR as a word; the inner quotes make it an address range.
    return text.replace(VPC_PLACEHOLDER, f"- list: supabase_vpc_cidrs\n  items: ['\"{vpc_cidr}\"']\n")


def rules(vpc_cidr: str) -> list[dict[str, Any]]:
    """The rule file as data, with the environment's VPC range filled in."""
    return yamlio.load(rules_yaml(vpc_cidr))


def helm_values(values: AwsValues) -> dict[str, Any]:
    return {
        "driver": {"kind": "modern_ebpf", "modernEbpf": {"leastPrivileged": True}},
        "tty": False,
        "falco": {"json_output": True, "json_include_output_property": True},
        "customRules": {RULES_FILE: rules_yaml(values.vpc_cidr)},
        "falcosidekick": {
            "enabled": True,
            "replicaCount": 2,
            "config": {
                "aws": {
                    # Pod Identity: the SDK finds its credentials through the agent, so no
                    # role annotation on the service account.
                    "useirsa": False,
                    "region": values.region,
                    "checkidentity": True,
                    "sns": {
                        "topicarn": values.alerts_topic_arn,
                        "rawjson": False,
                        "minimumpriority": ALERT_MINIMUM_PRIORITY,
                    },
                },
            },
        },
    }

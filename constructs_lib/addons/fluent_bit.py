"""AWS for Fluent Bit: every container's stdout/stderr on every node, to CloudWatch Logs.

A DaemonSet tails the kubelet's container log files (/var/log/containers/*.log, one per
container of every namespace), adds the pod's Kubernetes metadata, turns each JSON line into
fields (and each PostgREST or Realtime text line, by the parser its pod suggests: see
k8s_charts/supabase/logs.py) and writes to the environment's containers log group, one stream
per pod and container. Pods on Fargate have no node to run it on: the Fargate log router writes
them to the same group (k8s_charts/base, aws-logging).

It tolerates every taint, so it runs on the system, app and spot nodes alike. It runs as root
without capabilities: the log files are root's, readable by their owner only (mode 0640), and
its read position is kept in a file under the same hostPath (Gatekeeper exempts this one
workload for hostPath and the root user: k8s_charts/policies).
"""

from __future__ import annotations

from config import naming
from constructs_lib.addons import kube_prometheus_stack
from constructs_lib.addons.base import AddonContext, HelmAddon
from constructs_lib.container_logs import WILDCARD_REASON, log_group_arn, writer_statements
from k8s_charts.supabase.logs import MERGE_KEY, parsers_conf

NAME = "aws-for-fluent-bit"
VERSION = "0.2.0"  # AWS for Fluent Bit 3.2.1
NAMESPACE = kube_prometheus_stack.NAMESPACE
SERVICE_ACCOUNT = "fluent-bit"
# The chart's DaemonSet and ConfigMap take this name (fullnameOverride); Gatekeeper's exemption names it.
WORKLOAD = NAME
LOG_VOLUME = {"name": "varlog", "hostPath": {"path": "/var/log"}}
LOG_MOUNT = {"name": "varlog", "mountPath": "/var/log"}
# One stream per container instance; the prefix names the fallback stream of a record the
# kubernetes filter could not enrich.
STREAM_TEMPLATE = "$kubernetes['namespace_name'].$kubernetes['pod_name'].$kubernetes['container_name']"
STREAM_PREFIX = "unmatched-"


def build(ctx: AddonContext) -> HelmAddon:
    group_arn = log_group_arn(
        partition=ctx.partition, region=ctx.values.region, account=ctx.values.account, cluster=ctx.cluster_name
    )
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        values={
            "fullnameOverride": NAME,
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "service": {"extraParsers": parsers_conf()},
            "filter": {"mergeLogKey": MERGE_KEY, "keepLog": "Off", "k8sLoggingParser": "On"},
            "cloudWatchLogs": {
                "region": ctx.values.region,
                "logGroupName": naming.container_log_group(ctx.cluster_name),
                "logStreamTemplate": STREAM_TEMPLATE,
                "logStreamPrefix": STREAM_PREFIX,
                # The group exists with its key and retention (ContainerLogs); the agent only writes.
                "autoCreateGroup": False,
            },
            # containerd writes under /var/log/pods (the /var/log/containers links point there):
            # the chart's Docker directory does not exist on EKS nodes.
            "volumes": [LOG_VOLUME],
            "volumeMounts": [LOG_MOUNT],
            "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containerSecurityContext": {
                "runAsUser": 0,
                "runAsNonRoot": False,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
            "tolerations": [{"operator": "Exists"}],
            "priorityClassName": "system-node-critical",
        },
        service_account=SERVICE_ACCOUNT,
        statements=writer_statements(group_arn),
        wildcard_reason=WILDCARD_REASON,
    )

"""Everything applied through the cluster's kubectl provider, in a fixed order.

1. Charts marked `apply_before_controllers` (k8s_charts.base: namespaces with Pod Security
   labels, the default StorageClass): controllers' pods must be admitted under the right
   profile from their first start, and Prometheus claims gp3 volumes while its release installs.
2. The Helm controllers of the add-on registry, in their declared dependency order, each with
   its Pod Identity role. They bring the CRDs (External Secrets, Velero, Prometheus operator,
   Argo Rollouts, Gatekeeper, Falco, Istio) and Helm waits until their webhooks serve.
3. Every other chart `build_charts` returns, after all controllers. A cdk8s dependency between
   two charts (`chart.add_dependency(other)`) becomes a deploy-time dependency; when the chart
   depended on contains Jobs, the dependent chart also waits until each Job has succeeded
   (a KubernetesObjectValue polling `.status.succeeded`, which stays empty until the Job
   completes and fails the deploy after JOB_TIMEOUT). That is how the Supabase services wait
   for the database bootstrap Job.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import aws_cdk as cdk
import cdk8s
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IDependable

from config import naming
from config.model import OrgConfig
from constructs_lib.addons import AddonContext, AddonRegistry, platform_addons
from k8s_charts.aws_values import AwsValues, from_config
from k8s_charts.environment import build_charts

JOB_TIMEOUT = cdk.Duration.minutes(14)
# Every region config accepts is a commercial one; a literal keeps IAM ARNs readable (and cdk-nag findings stable).
PARTITION = "aws"


def aws_values(cfg: OrgConfig, env_name: str, *, certificate_arn: str, waf_acl_arn: str, storage_bucket_name: str,
               alerts_topic_arn: str) -> AwsValues:
    """Config-derived values with the few that only CloudFormation knows replaced by tokens."""
    return dataclasses.replace(
        from_config(cfg, env_name), certificate_arn=certificate_arn, waf_acl_arn=waf_acl_arn,
        storage_bucket=storage_bucket_name, alerts_topic_arn=alerts_topic_arn,
    )


def jobs_of(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, name) of every Job among a chart's objects."""
    return [(obj["metadata"].get("namespace", "default"), obj["metadata"]["name"])
            for obj in objects if obj.get("kind") == "Job"]


class PlatformStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, cluster: eks.Cluster,
                 vpc_id: str, certificate_arn: str, regional_web_acl_arn: str, storage_bucket: s3.IBucket,
                 velero_bucket: s3.IBucket, data_key: kms.IKey, alerts_topic_arn: str, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        self.values = aws_values(
            cfg, env_name, certificate_arn=certificate_arn, waf_acl_arn=regional_web_acl_arn,
            storage_bucket_name=storage_bucket.bucket_name, alerts_topic_arn=alerts_topic_arn,
        )
        charts = build_charts(cdk8s.App(), cfg=cfg, env_name=env_name, values=self.values)

        self.manifests: dict[str, eks.KubernetesManifest] = {}
        self.job_waits: dict[str, list[eks.KubernetesObjectValue]] = {}
        early = [c for c in charts if getattr(c, "apply_before_controllers", False)]
        for chart in early:
            self._apply(chart, cluster, after=[])

        # The add-ons get the same values as the charts: falcosidekick's topic, its IAM grant and
        # Alertmanager's SNS receiver all read the one alerts topic token.
        ctx = AddonContext(
            cluster_name=self.values.cluster_name, vpc_id=vpc_id, values=self.values, partition=PARTITION,
            velero_bucket=velero_bucket, velero_bucket_name=naming.velero_bucket(cfg, env_name), data_key=data_key,
        )
        self.registry = AddonRegistry(
            self, "Addons", cluster=cluster, cluster_arn=cluster.cluster_arn,
            addons=platform_addons(ctx, env), after=[self.manifests[c.node.id] for c in early],
        )
        controllers: list[IDependable] = list(self.registry.all_charts)
        for chart in charts:
            if chart not in early:
                self._apply(chart, cluster, after=controllers)
        for chart in charts:
            for dependency in chart.node.dependencies:
                self._order(chart.node.id, dependency.node.id)

    def _apply(self, chart: cdk8s.Chart, cluster: eks.Cluster, *, after: list[IDependable]) -> None:
        chart_id = chart.node.id
        # Namespaces may already exist (e.g. created by EKS or a previous apply): apply, never create-only.
        # Rendering a chart crosses into jsii: once per chart is what keeps synth fast.
        objects = chart.to_json()
        manifest = eks.KubernetesManifest(self, f"chart-{chart_id}", cluster=cluster, manifest=objects, overwrite=True)
        for dependable in after:
            manifest.node.add_dependency(dependable)
        self.manifests[chart_id] = manifest
        waits = []
        for namespace, name in jobs_of(objects):
            wait = eks.KubernetesObjectValue(
                self, f"chart-{chart_id}-job-{name}", cluster=cluster, object_type="job", object_name=name,
                object_namespace=namespace, json_path=".status.succeeded", timeout=JOB_TIMEOUT,
            )
            wait.node.add_dependency(manifest)
            waits.append(wait)
        self.job_waits[chart_id] = waits

    def _order(self, chart_id: str, dependency_id: str) -> None:
        if dependency_id not in self.manifests:
            return
        dependent = self.manifests[chart_id]
        dependent.node.add_dependency(self.manifests[dependency_id])
        for wait in self.job_waits[dependency_id]:
            dependent.node.add_dependency(wait)

"""Everything applied through the cluster's kubectl provider, in a fixed order.

1. Charts marked `apply_before_controllers` (k8s_charts.base: namespaces with Pod Security
   labels, the default StorageClass): controllers' pods must be admitted under the right
   profile from their first start, and Prometheus claims gp3 volumes while its release installs.
2. The Helm controllers of the add-on registry, in their declared dependency order, each with
   its Pod Identity role. They bring the CRDs (External Secrets, Velero, Prometheus operator,
   Argo Rollouts, Gatekeeper, Falco, Istio) and Helm waits until their webhooks serve.
3. Every other chart `build_charts` returns, after all controllers. A chart writing into a
   namespace another chart creates depends on that chart's manifest (CloudFormation would
   otherwise apply both at once). Gatekeeper ConstraintTemplates go out in their own manifest
   first: Gatekeeper creates each constraint kind's CRD asynchronously after ingesting the
   template, and the kubectl handler does not retry "no matches for kind", so the rest of the
   chart waits until every such CRD is Established. A cdk8s dependency between
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
from k8s_charts.policies import CONSTRAINT_API_VERSION

JOB_TIMEOUT = cdk.Duration.minutes(14)
CONSTRAINT_CRD_TIMEOUT = cdk.Duration.minutes(5)
# The kubectl handler's wait returns on the first non-empty output. A new CRD first shows
# Established=False (reason Installing); only the Established=True condition carries the reason
# InitialNamesAccepted (apiextensions-apiserver establishing controller), so this path stays
# empty until the constraint kind is served.
CRD_ESTABLISHED_JSON_PATH = '.status.conditions[?(@.reason=="InitialNamesAccepted")].status'
CONSTRAINT_GROUP = CONSTRAINT_API_VERSION.split("/")[0]
# Every region config accepts is a commercial one; a literal keeps IAM ARNs readable (and cdk-nag findings stable).
PARTITION = "aws"


def aws_values(
    cfg: OrgConfig,
    env_name: str,
    *,
    certificate_arn: str,
    waf_acl_arn: str,
    storage_bucket_name: str,
    alerts_topic_arn: str,
) -> AwsValues:
    """Config-derived values with the few that only CloudFormation knows replaced by tokens."""
    return dataclasses.replace(
        from_config(cfg, env_name),
        certificate_arn=certificate_arn,
        waf_acl_arn=waf_acl_arn,
        storage_bucket=storage_bucket_name,
        alerts_topic_arn=alerts_topic_arn,
    )


def jobs_of(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, name) of every Job among a chart's objects."""
    return [
        (obj["metadata"].get("namespace", "default"), obj["metadata"]["name"])
        for obj in objects
        if obj.get("kind") == "Job"
    ]


class PlatformStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cfg: OrgConfig,
        env_name: str,
        cluster: eks.Cluster,
        vpc_id: str,
        certificate_arn: str,
        regional_web_acl_arn: str,
        storage_bucket: s3.IBucket,
        velero_bucket: s3.IBucket,
        data_key: kms.IKey,
        alerts_topic_arn: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        self.values = aws_values(
            cfg,
            env_name,
            certificate_arn=certificate_arn,
            waf_acl_arn=regional_web_acl_arn,
            storage_bucket_name=storage_bucket.bucket_name,
            alerts_topic_arn=alerts_topic_arn,
        )
        charts = build_charts(cdk8s.App(), cfg=cfg, env_name=env_name, values=self.values)

        self.manifests: dict[str, eks.KubernetesManifest] = {}
        self.job_waits: dict[str, list[eks.KubernetesObjectValue]] = {}
        self.created_namespaces: dict[str, str] = {}
        self.used_namespaces: dict[str, set[str]] = {}
        early = [c for c in charts if getattr(c, "apply_before_controllers", False)]
        for chart in early:
            self._apply(chart, cluster, after=[])

        # The add-ons get the same values as the charts: falcosidekick's topic, its IAM grant and
        # Alertmanager's SNS receiver all read the one alerts topic token.
        ctx = AddonContext(
            cluster_name=self.values.cluster_name,
            vpc_id=vpc_id,
            values=self.values,
            partition=PARTITION,
            velero_bucket=velero_bucket,
            velero_bucket_name=naming.velero_bucket(cfg, env_name),
            data_key=data_key,
        )
        self.registry = AddonRegistry(
            self,
            "Addons",
            cluster=cluster,
            cluster_arn=cluster.cluster_arn,
            addons=platform_addons(ctx, env),
            after=[self.manifests[c.node.id] for c in early],
        )
        controllers: list[IDependable] = list(self.registry.all_charts)
        for chart in charts:
            if chart not in early:
                self._apply(chart, cluster, after=controllers)
        for chart in charts:
            for dependency in chart.node.dependencies:
                self._order(chart.node.id, dependency.node.id)
        for chart_id, namespaces in self.used_namespaces.items():
            for owner in {self.created_namespaces[ns] for ns in namespaces if ns in self.created_namespaces} - {
                chart_id
            }:
                self.manifests[chart_id].node.add_dependency(self.manifests[owner])

    def _apply(self, chart: cdk8s.Chart, cluster: eks.Cluster, *, after: list[IDependable]) -> None:
        chart_id = chart.node.id
        # Namespaces may already exist (e.g. created by EKS or a previous apply): apply, never create-only.
        # Rendering a chart crosses into jsii: once per chart is what keeps synth fast.
        objects = chart.to_json()
        templates = [o for o in objects if o["kind"] == "ConstraintTemplate"]
        if templates:
            after = [*after, *self._constraint_crds(chart_id, templates, cluster, after=after)]
            objects = [o for o in objects if o["kind"] != "ConstraintTemplate"]
        manifest = eks.KubernetesManifest(self, f"chart-{chart_id}", cluster=cluster, manifest=objects, overwrite=True)
        for dependable in after:
            manifest.node.add_dependency(dependable)
        self.manifests[chart_id] = manifest
        self.created_namespaces.update({o["metadata"]["name"]: chart_id for o in objects if o["kind"] == "Namespace"})
        self.used_namespaces[chart_id] = {o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]}
        waits = []
        for namespace, name in jobs_of(objects):
            wait = eks.KubernetesObjectValue(
                self,
                f"chart-{chart_id}-job-{name}",
                cluster=cluster,
                object_type="job",
                object_name=name,
                object_namespace=namespace,
                json_path=".status.succeeded",
                timeout=JOB_TIMEOUT,
            )
            wait.node.add_dependency(manifest)
            waits.append(wait)
        self.job_waits[chart_id] = waits

    def _constraint_crds(
        self, chart_id: str, templates: list[dict[str, Any]], cluster: eks.Cluster, *, after: list[IDependable]
    ) -> list[eks.KubernetesObjectValue]:
        """Applies the ConstraintTemplates; returns one wait per constraint CRD Gatekeeper creates from them."""
        manifest = eks.KubernetesManifest(
            self, f"chart-{chart_id}-templates", cluster=cluster, manifest=templates, overwrite=True
        )
        for dependable in after:
            manifest.node.add_dependency(dependable)
        waits = []
        for template in templates:
            kind = template["spec"]["crd"]["spec"]["names"]["kind"]
            wait = eks.KubernetesObjectValue(
                self,
                f"chart-{chart_id}-crd-{kind.lower()}",
                cluster=cluster,
                object_type="customresourcedefinition",
                object_name=f"{kind.lower()}.{CONSTRAINT_GROUP}",
                json_path=CRD_ESTABLISHED_JSON_PATH,
                timeout=CONSTRAINT_CRD_TIMEOUT,
            )
            wait.node.add_dependency(manifest)
            waits.append(wait)
        return waits

    def _order(self, chart_id: str, dependency_id: str) -> None:
        if dependency_id not in self.manifests:
            return
        dependent = self.manifests[chart_id]
        dependent.node.add_dependency(self.manifests[dependency_id])
        for wait in self.job_waits[dependency_id]:
            dependent.node.add_dependency(wait)

"""One hardened Deployment + Service + ServiceAccount + PDB + HPA per component.

Every component goes through `add_workload`, so the restricted pod security context,
probes, resources, zone spreading and disruption budget cannot be forgotten for one of them;
the profile itself is the platform's one (`k8s_charts/hardening.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from constructs import Construct

from k8s_charts.hardening import (
    SKIP_DIGEST,
    SKIP_SECRET_ENV,
    Probe,
    Resources,
    checkov_annotations,
    container_security_context,
    pod_security_context,
    zone_spread,
)
from k8s_charts.objects import service_account
from k8s_charts.supabase.contract import CANARY_COMPONENTS
from k8s_charts.supabase.images import Image
from k8s_charts.supabase.k8s import api_object, labels, selector
from k8s_charts.supabase.logs import parser_annotations
from k8s_charts.supabase.props import NAMESPACE, Scaling

RUN_AS = 10001  # high UID/GID: never collides with a host user (checkov CKV_K8S_40)


@dataclass(frozen=True, kw_only=True)
class Container:
    name: str
    image: Image
    ports: tuple[tuple[str, int], ...]
    env: tuple[dict[str, Any], ...] = ()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    liveness: Probe
    readiness: Probe
    startup: Probe
    resources: Resources
    writable_paths: tuple[str, ...] = ("/tmp",)
    mounts: tuple[dict[str, Any], ...] = ()

    def render(self, volume_names: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image.ref,
            # Tags are immutable in practice but Always also re-checks pull credentials per pod.
            "imagePullPolicy": "Always",
        }
        if self.command:
            out["command"] = list(self.command)
        if self.args:
            out["args"] = list(self.args)
        out["ports"] = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in self.ports]
        if self.env:
            out["env"] = list(self.env)
        out.update(
            {
                "resources": self.resources.render(),
                "startupProbe": self.startup.render(),
                "livenessProbe": self.liveness.render(),
                "readinessProbe": self.readiness.render(),
                "securityContext": container_security_context(RUN_AS),
            }
        )
        mounts = [{"name": volume_names[p], "mountPath": p} for p in self.writable_paths]
        mounts += list(self.mounts)
        if mounts:
            out["volumeMounts"] = mounts
        return out


@dataclass(frozen=True, kw_only=True)
class ServicePort:
    name: str
    port: int
    target_port: int
    app_protocol: str = "http"


@dataclass(frozen=True, kw_only=True)
class Workload:
    component: str
    containers: tuple[Container, ...]
    service_ports: tuple[ServicePort, ...]
    scaling: Scaling
    production: bool
    volumes: tuple[dict[str, Any], ...] = ()
    pod_annotations: dict[str, str] = field(default_factory=dict)
    extra_metrics: tuple[dict[str, Any], ...] = ()
    checkov_skips: tuple[tuple[str, str], ...] = (SKIP_DIGEST, SKIP_SECRET_ENV)
    termination_grace_seconds: int = 30

    @property
    def version(self) -> str:
        return self.containers[0].image.tag


def _volume_name(path: str) -> str:
    return "rw" + path.replace("/", "-").replace("_", "-").replace(".", "").lower()


def add_workload(scope: Construct, w: Workload) -> None:
    lbl = labels(w.component, w.version)
    sel = selector(w.component)
    paths = sorted({p for c in w.containers for p in c.writable_paths})
    volume_names = {p: _volume_name(p) for p in paths}
    volumes = [{"name": volume_names[p], "emptyDir": {"sizeLimit": "256Mi"}} for p in paths]
    volumes += list(w.volumes)

    service_account(scope, f"ServiceAccount-{w.component}", name=w.component, namespace=NAMESPACE, labels=lbl)

    when_unsatisfiable = "DoNotSchedule" if w.production else "ScheduleAnyway"
    pod_spec: dict[str, Any] = {
        "serviceAccountName": w.component,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": w.termination_grace_seconds,
        "securityContext": pod_security_context(RUN_AS),
        "topologySpreadConstraints": [
            zone_spread(sel, when_unsatisfiable=when_unsatisfiable),
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": sel},
            },
        ],
        "containers": [c.render(volume_names) for c in w.containers],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    template_meta: dict[str, Any] = {"labels": lbl}
    pod_annotations = {**w.pod_annotations, **parser_annotations([(c.name, c.image.repository) for c in w.containers])}
    if pod_annotations:
        template_meta["annotations"] = pod_annotations
    annotations = checkov_annotations(w.checkov_skips)
    # Argo Rollouts scales a canaried Deployment down as its Rollout takes over: a replica count
    # here would scale it back up on every apply, and the HPA must drive the Rollout instead.
    canaried = w.component in CANARY_COMPONENTS
    deployment_spec: dict[str, Any] = {} if canaried else {"replicas": w.scaling.replicas}
    api_object(
        scope,
        api_version="apps/v1",
        kind="Deployment",
        name=w.component,
        labels=lbl,
        annotations=annotations or None,
        body={
            "spec": {
                **deployment_spec,
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": sel},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {"metadata": template_meta, "spec": pod_spec},
            }
        },
    )
    api_object(
        scope,
        api_version="v1",
        kind="Service",
        name=w.component,
        labels=lbl,
        body={
            "spec": {
                "type": "ClusterIP",
                "selector": sel,
                "ports": [
                    {
                        "name": p.name,
                        "port": p.port,
                        "targetPort": p.target_port,
                        "protocol": "TCP",
                        "appProtocol": p.app_protocol,
                    }
                    for p in w.service_ports
                ],
            }
        },
    )
    # maxUnavailable (not minAvailable) so a single-replica environment can still drain a node.
    api_object(
        scope,
        api_version="policy/v1",
        kind="PodDisruptionBudget",
        name=w.component,
        labels=lbl,
        body={
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": sel}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
        },
    )
    # A Rollout has no replica count of its own (the rollouts chart leaves it out), so a canaried
    # component always gets an HPA, even when its floor equals its ceiling.
    if canaried or w.scaling.max_replicas > w.scaling.replicas:
        metrics = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            }
        ]
        metrics += list(w.extra_metrics)
        target = (
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": w.component}
            if canaried
            else {"apiVersion": "apps/v1", "kind": "Deployment", "name": w.component}
        )
        api_object(
            scope,
            api_version="autoscaling/v2",
            kind="HorizontalPodAutoscaler",
            name=w.component,
            labels=lbl,
            body={
                "spec": {
                    "scaleTargetRef": target,
                    "minReplicas": w.scaling.replicas,
                    "maxReplicas": w.scaling.max_replicas,
                    "metrics": metrics,
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
                }
            },
        )

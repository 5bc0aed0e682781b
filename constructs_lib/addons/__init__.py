"""The add-on registry: every cluster controller the platform installs, one module each.

Adding a controller: write a module with `build(ctx) -> HelmAddon` (pinned chart, namespace,
service account and the exact IAM statements it needs, `depends_on` for ordering) and list it
in `platform_addons`. `AddonRegistry` then installs it after its dependencies, with its own
Pod Identity role.
"""

from __future__ import annotations

from config.model import Environment
from constructs_lib.addons import (
    argo_rollouts,
    aws_load_balancer_controller,
    cluster_autoscaler,
    external_dns,
    external_secrets,
    falco,
    fluent_bit,
    gatekeeper,
    istio,
    kube_prometheus_stack,
    opencost,
    prometheus_adapter,
    velero,
    vertical_pod_autoscaler,
)
from constructs_lib.addons.base import AddonContext, HelmAddon
from constructs_lib.addons.pod_identity import PodIdentity
from constructs_lib.addons.registry import AddonRegistry, dependency_order


def platform_addons(ctx: AddonContext, env: Environment) -> list[HelmAddon]:
    found = [
        aws_load_balancer_controller.build(ctx),
        cluster_autoscaler.build(ctx),
        external_secrets.build(ctx, extra_secret_names=external_secrets.configured_secret_names(env)),
        external_dns.build(ctx, hosted_zone_id=env.hosted_zone_id),
        vertical_pod_autoscaler.build(ctx),
        kube_prometheus_stack.build(
            ctx,
            retention_days=env.observability.metrics_retention_days,
            storage_gib=env.observability.metrics_storage_gib,
            mesh=env.features.istio,
        ),
        prometheus_adapter.build(ctx),
        opencost.build(ctx),
        fluent_bit.build(ctx),
        argo_rollouts.build(ctx),
        gatekeeper.build(ctx),
        velero.build(ctx),
    ]
    if env.features.falco:
        found.append(falco.build(ctx))
    if env.features.istio:
        found.extend(istio.build(ctx))
    return found


__all__ = ["AddonContext", "AddonRegistry", "HelmAddon", "PodIdentity", "dependency_order", "platform_addons"]

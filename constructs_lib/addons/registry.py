"""Installs `HelmAddon`s on a cluster in dependency order, each with its own Pod Identity role."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct, IDependable

from constructs_lib.addons.base import HelmAddon
from constructs_lib.addons.pod_identity import PodIdentity


def dependency_order(addons: Sequence[HelmAddon]) -> list[HelmAddon]:
    """Topological order (stable: declaration order among equals); unknown or cyclic deps raise."""
    by_name = {a.name: a for a in addons}
    if len(by_name) != len(addons):
        raise ValueError("add-on names must be unique")
    ordered: list[HelmAddon] = []
    state: dict[str, str] = {}

    def visit(addon: HelmAddon, path: tuple[str, ...]) -> None:
        if state.get(addon.name) == "done":
            return
        if state.get(addon.name) == "visiting":
            raise ValueError(f"add-on dependency cycle: {' -> '.join((*path, addon.name))}")
        state[addon.name] = "visiting"
        for dep in addon.depends_on:
            if dep not in by_name:
                raise ValueError(f"add-on {addon.name} depends on unknown add-on {dep}")
            visit(by_name[dep], (*path, addon.name))
        state[addon.name] = "done"
        ordered.append(addon)

    for addon in addons:
        visit(addon, ())
    return ordered


class AddonRegistry(Construct):
    """One `HelmChart` per add-on from its vendored chart (no namespace creation: namespaces come first, with PSS labels)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        cluster_arn: str,
        addons: Sequence[HelmAddon],
        after: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, id_)
        self.charts: dict[str, eks.HelmChart] = {}
        self.identities: dict[str, PodIdentity] = {}
        for addon in dependency_order(addons):
            if not (addon.chart_dir / "Chart.yaml").is_file():
                raise ValueError(
                    f"add-on {addon.name}: no vendored chart at {addon.chart_dir} (see charts/SOURCES.yaml)"
                )
            chart = eks.HelmChart(
                self,
                addon.name,
                cluster=cluster,
                chart_asset=s3_assets.Asset(self, f"{addon.name}-chart", path=str(addon.chart_dir)),
                release=addon.name,
                namespace=addon.namespace,
                create_namespace=False,
                values=dict(addon.values),
                wait=True,
                atomic=True,
                timeout=addon.timeout,
            )
            for dependable in after:
                chart.node.add_dependency(dependable)
            if addon.service_account:
                identity = PodIdentity(
                    self,
                    f"{addon.name}-identity",
                    cluster_name=cluster.cluster_name,
                    cluster_arn=cluster_arn,
                    namespace=addon.namespace,
                    service_account=addon.service_account,
                    statements=addon.statements,
                    extra_policies=addon.extra_policies,
                    description=f"{addon.name} controller",
                    wildcard_reason=addon.wildcard_reason,
                )
                # The role must exist before the pods start, or they cache an empty credential chain.
                chart.node.add_dependency(identity)
                self.identities[addon.name] = identity
            for dep in addon.depends_on:
                chart.node.add_dependency(self.charts[dep])
            self.charts[addon.name] = chart

    @property
    def all_charts(self) -> list[eks.HelmChart]:
        return list(self.charts.values())

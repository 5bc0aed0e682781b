"""Monthly cost estimate of each environment of a config, from a pinned price table.

Quantities come from the config model and from the facts the stacks and charts build with (node
root volumes, interface endpoints, Prometheus volumes, the ALBs the rendered Ingresses ask for);
prices from `prices.yaml` (its sources and date inside); traffic and stored data, which no config
states, from `usage.yaml`. `tests/deploy/test_cost_quantities.py` holds the quantities to the
synthesized templates, so this estimate counts what deploys.

Usage: python -m scripts.cost [CONFIG]   (`make cost CONFIG=...`)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import yamlio
from config.model import Environment, NodeGroup, OrgConfig

HERE = Path(__file__).resolve().parent
PRICES_FILE = HERE / "prices.yaml"
USAGE_FILE = HERE / "usage.yaml"


# The price sections an environment's region needs, each with the `sources` entry it is read from.
SECTION_SOURCES = {
    "ec2": "ec2",
    "eks_cluster_hourly": "eks",
    "nat_gateway": "vpc",
    "interface_endpoint": "vpc",
    "public_ipv4_hourly": "vpc",
    "alb": "elb",
    "ebs_gp3_gb_month": "ebs",
    "rds_postgres": "rds",
    "elasticache_valkey": "elasticache",
    "s3": "s3",
}
TABLE = "scripts/cost/prices.yaml"


class Unpriced(Exception):
    """The price table lacks something an environment uses; the message names it and the fix."""


@dataclass(frozen=True)
class Prices:
    table: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> Prices:
        return cls(yamlio.load(path.read_text()))

    @property
    def hours(self) -> float:
        return float(self.table["hours_per_month"])

    def discount(self, name: str) -> float:
        return float(self.table["discounts"][name])

    def region(self, region: str, section: str, *, env_path: str) -> Any:
        regions = self.table["regions"]
        source = self.table["sources"][SECTION_SOURCES[section]]
        if region not in regions:
            raise Unpriced(
                f"{env_path}: {region!r} given; {TABLE} has no prices for this region "
                f"(priced: {', '.join(sorted(regions))}); fix: add a regions.{region} section to it with every "
                f"section us-east-1 has, from the AWS price list ({source}), or estimate the config in a priced region"
            )
        if section not in regions[region]:
            raise Unpriced(
                f"{env_path}: {region!r} given; {TABLE} prices it only for {', '.join(sorted(regions[region]))}, "
                f"not {section}; fix: add regions.{region}.{section} to it from {source}"
            )
        return regions[region][section]

    def check(self, cfg: OrgConfig) -> list[str]:
        """Every price section an environment's regions lack, one message each (empty: all priced)."""
        problems = []
        for name, env in cfg.environments.items():
            wanted = [(env.region, s, f"environments.{name}.region") for s in SECTION_SOURCES]
            wanted.append((env.dr_region, "s3", f"environments.{name}.dr_region"))
            for region, section, path in wanted:
                try:
                    self.region(region, section, env_path=path)
                except Unpriced as problem:
                    problems.append(str(problem))
                    if region not in self.table["regions"]:
                        break
        return problems

    def sized(self, families: Mapping[str, Mapping[str, float]], instance: str, *, what: str) -> float:
        """Hourly price of `family.size` from the family's reference size and the normalization factors."""
        family, _, size = instance.rpartition(".")
        if family not in families:
            raise Unpriced(
                f"{what}: {instance!r} has no price (families priced: {', '.join(sorted(families))}); "
                f"fix: add {family} to {TABLE}"
            )
        ((reference, price),) = families[family].items()
        factors = self.table["normalization_factors"]
        return float(price) * factors[size] / factors[reference]


@dataclass(frozen=True)
class Line:
    component: str
    quantity: str
    monthly: float


@dataclass(frozen=True)
class Saving:
    what: str
    monthly: float


@dataclass(frozen=True)
class Estimate:
    env_name: str
    region: str
    production: bool
    budget: float
    lines: tuple[Line, ...]
    x86_on_demand_nodes: float  # every node hour at the x86 equivalent, On-Demand
    graviton_on_demand_nodes: float  # every node hour at its Graviton type, On-Demand
    recommendations: tuple[Saving, ...]

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def nodes(self) -> float:
        return sum(line.monthly for line in self.lines if line.component.startswith("nodes "))

    @property
    def graviton_saving(self) -> float:
        return self.x86_on_demand_nodes - self.graviton_on_demand_nodes

    @property
    def spot_saving(self) -> float:
        return self.graviton_on_demand_nodes - self.nodes

    @property
    def over_budget(self) -> float:
        return self.total - self.budget


@dataclass(frozen=True)
class Facts:
    """What the stacks and charts build beyond the config's own numbers, per environment."""

    root_volume_gib: int  # every node's gp3 root volume (constructs_lib.eks_cluster)
    interface_endpoints: int  # one ENI per zone each (stacks.network_stack)
    prometheus_volumes: int  # one PVC of observability.metrics_storage_gib per replica
    load_balancers: int  # ALBs the rendered Ingresses ask the load balancer controller for
    other_volume_gib: int  # PVCs the charts render themselves


def load_balancers(objects: Sequence[Mapping[str, Any]]) -> int:
    """One ALB per Ingress group: Ingresses sharing `group.name` share one ALB, every other one has its own."""
    groups = set()
    for obj in objects:
        if obj.get("kind") == "Ingress" and obj["spec"].get("ingressClassName") == "alb":
            meta = obj["metadata"]
            group = (meta.get("annotations") or {}).get("alb.ingress.kubernetes.io/group.name")
            groups.add(group or f"{meta.get('namespace')}/{meta['name']}")
    return len(groups)


def claimed_gib(objects: Sequence[Mapping[str, Any]]) -> int:
    """GiB of the PersistentVolumeClaims the manifests create (StatefulSet templates once per replica)."""

    def gib(claim: Mapping[str, Any]) -> int:
        size = str(claim["spec"]["resources"]["requests"]["storage"])
        if not size.endswith("Gi"):
            raise ValueError(f"claim size {size!r}: the estimate reads Gi sizes only")
        return int(size[:-2])

    total = 0
    for obj in objects:
        if obj.get("kind") == "PersistentVolumeClaim":
            total += gib(obj)
        elif obj.get("kind") == "StatefulSet":
            total += obj["spec"].get("replicas", 1) * sum(gib(t) for t in obj["spec"].get("volumeClaimTemplates", []))
    return total


def facts(cfg: OrgConfig, env_name: str) -> Facts:
    # Imported here: cdk8s (seconds of jsii start-up) is not needed by the arithmetic and its tests.
    from k8s_charts.environment import render_manifests

    return facts_of_manifests(render_manifests(cfg, env_name))


def facts_of_manifests(manifests: Mapping[str, list[dict]]) -> Facts:
    """The facts of one environment from its rendered charts (chart id -> Kubernetes objects)."""
    # Imported here, as in `facts`: these pull in the CDK.
    from constructs_lib.addons import kube_prometheus_stack
    from constructs_lib.eks_cluster import ROOT_VOLUME_GIB
    from stacks.network_stack import INTERFACE_ENDPOINTS

    objects = [o for objs in manifests.values() for o in objs]
    return Facts(
        root_volume_gib=ROOT_VOLUME_GIB,
        interface_endpoints=len(INTERFACE_ENDPOINTS),
        prometheus_volumes=kube_prometheus_stack.PROMETHEUS_REPLICAS,
        load_balancers=load_balancers(objects),
        other_volume_gib=claimed_gib(objects),
    )


def _money(value: float) -> str:
    return f"{value:,.2f}"


def estimate(
    cfg: OrgConfig, env_name: str, *, prices: Prices, usage: Mapping[str, Mapping[str, float]], facts: Facts
) -> Estimate:
    env: Environment = cfg.environments[env_name]
    path = f"environments.{env_name}.region"
    region = env.region
    use = usage["production" if env.production else "non_production"]
    hours = prices.hours
    zones = len(env.availability_zones)
    ec2 = prices.region(region, "ec2", env_path=path)
    x86 = prices.table["x86_equivalent"]

    def node_hourly(instance: str, group: str) -> float:
        return prices.sized(ec2, instance, what=f"environments.{env_name}.cluster.{group}.instance_types")

    def x86_hourly(instance: str, group: str) -> float:
        family, _, size = instance.partition(".")
        return node_hourly(f"{x86[family]}.{size}", group)

    lines: list[Line] = []
    add = lines.append
    add(Line("EKS control plane", "1 cluster", prices.region(region, "eks_cluster_hourly", env_path=path) * hours))

    x86_nodes = graviton_nodes = 0.0
    node_count = 0
    # On-Demand groups launch their first listed type (managed node groups' prioritized order);
    # the spot group gets whichever listed type has capacity, priced at their mean.
    groups: list[tuple[str, str, NodeGroup, bool]] = [
        ("system", "system_nodes", env.cluster.system_nodes, False),
        ("app", "app_nodes", env.cluster.app_nodes, False),
        ("spot", "spot_nodes", env.cluster.spot_nodes, True),
    ]
    for label, group_path, group, spot in groups:
        types = group.instance_types if spot else group.instance_types[:1]
        on_demand = sum(node_hourly(t, group_path) for t in types) / len(types)
        as_x86 = sum(x86_hourly(t, group_path) for t in types) / len(types)
        rate = on_demand * (1 - prices.discount("spot")) if spot else on_demand
        node_count += group.desired_size
        x86_nodes += group.desired_size * as_x86 * hours
        graviton_nodes += group.desired_size * on_demand * hours
        shown = "/".join(types)
        add(
            Line(
                f"nodes {label} ({'spot' if spot else 'on-demand'})",
                f"{group.desired_size} x {shown}",
                group.desired_size * rate * hours,
            )
        )

    nat = prices.region(region, "nat_gateway", env_path=path)
    n_nat = env.network.nat_gateways
    add(
        Line(
            "NAT gateways",
            f"{n_nat} x {hours:.0f} h + {use['nat_processed_gb']:g} GB",
            n_nat * nat["hourly"] * hours + use["nat_processed_gb"] * nat["per_gb"],
        )
    )
    endpoint = prices.region(region, "interface_endpoint", env_path=path)
    enis = facts.interface_endpoints * zones
    add(
        Line(
            "VPC interface endpoints",
            f"{facts.interface_endpoints} x {zones} zones + {use['interface_endpoint_gb']:g} GB",
            enis * endpoint["hourly_per_az"] * hours + use["interface_endpoint_gb"] * endpoint["per_gb"],
        )
    )
    alb = prices.region(region, "alb", env_path=path)
    add(
        Line(
            "Application Load Balancers",
            f"{facts.load_balancers} x ({hours:.0f} h + {use['alb_lcu']:g} LCU)",
            facts.load_balancers * (alb["hourly"] + use["alb_lcu"] * alb["per_lcu_hour"]) * hours,
        )
    )
    # Public IPv4: one Elastic IP per NAT gateway and one address per zone for each internet-facing ALB.
    addresses = n_nat + facts.load_balancers * zones
    add(
        Line(
            "public IPv4 addresses",
            f"{addresses} addresses",
            addresses * prices.region(region, "public_ipv4_hourly", env_path=path) * hours,
        )
    )
    volume_gib = (
        node_count * facts.root_volume_gib
        + facts.prometheus_volumes * env.observability.metrics_storage_gib
        + facts.other_volume_gib
    )
    add(
        Line(
            "EBS gp3",
            f"{volume_gib} GiB ({node_count} node roots, {facts.prometheus_volumes} Prometheus)",
            volume_gib * prices.region(region, "ebs_gp3_gb_month", env_path=path),
        )
    )

    db = env.database
    rds = prices.region(region, "rds_postgres", env_path=path)
    db_hourly = prices.sized(
        rds["instance"], db.instance_class, what=f"environments.{env_name}.database.instance_class"
    )
    primary = db_hourly * (rds["multi_az_factor"] if db.multi_az else 1) * hours
    add(Line("RDS primary", f"{db.instance_class}{' Multi-AZ' if db.multi_az else ''}", primary))
    storage_price = rds["gp3_gb_month"]["multi_az" if db.multi_az else "single_az"]
    add(Line("RDS primary storage", f"{db.allocated_storage_gib} GiB gp3", db.allocated_storage_gib * storage_price))
    replicas = db.read_replicas * db_hourly * hours
    if db.read_replicas:
        add(Line("RDS read replicas", f"{db.read_replicas} x {db.instance_class}", replicas))
        add(
            Line(
                "RDS replica storage",
                f"{db.read_replicas} x {db.allocated_storage_gib} GiB gp3",
                db.read_replicas * db.allocated_storage_gib * rds["gp3_gb_month"]["single_az"],
            )
        )

    cache = prices.region(region, "elasticache_valkey", env_path=path)
    cache_nodes = 1 + env.cache.replicas_per_shard
    valkey = (
        cache_nodes
        * prices.sized(cache["node"], env.cache.node_type, what=f"environments.{env_name}.cache.node_type")
        * hours
    )
    add(Line("ElastiCache Valkey", f"{cache_nodes} x {env.cache.node_type}", valkey))

    s3 = prices.region(region, "s3", env_path=path)
    replica_s3 = prices.region(env.dr_region, "s3", env_path=f"environments.{env_name}.dr_region")
    add(
        Line(
            "S3 Storage bucket",
            f"{use['s3_stored_gb']:g} GB + {use['s3_put_thousand']:g}k PUT + {use['s3_get_thousand']:g}k GET",
            use["s3_stored_gb"] * s3["standard_gb_month"]
            + use["s3_put_thousand"] * s3["put_per_1000"]
            + use["s3_get_thousand"] * s3["get_per_1000"],
        )
    )
    add(
        Line(
            f"S3 replica in {env.dr_region} (RTC)",
            f"{use['s3_stored_gb']:g} GB + {use['s3_written_gb']:g} GB replicated",
            use["s3_stored_gb"] * replica_s3["standard_gb_month"]
            + use["s3_written_gb"] * (s3["replication_transfer_per_gb"] + s3["rtc_per_gb"]),
        )
    )
    if env.features.cloudfront:
        cf = prices.table["cloudfront"]
        add(
            Line(
                "CloudFront",
                f"{use['cloudfront_gb']:g} GB + {use['cloudfront_requests_million']:g}M HTTPS requests",
                use["cloudfront_gb"] * cf["per_gb"]
                + use["cloudfront_requests_million"] * 100 * cf["per_10k_https_requests"],
            )
        )

    # Steady components: the database, the cache and the nodes the groups never scale below.
    baseline = sum(g.min_size * node_hourly(g.instance_types[0], p) * hours for _, p, g, spot in groups if not spot)
    baseline_nodes = sum(g.min_size for _, _, g, spot in groups if not spot)
    sp = prices.discount("compute_savings_plan_1yr_no_upfront")
    recommendations = (
        Saving(
            f"RDS: 1-year no-upfront reserved instances for {db.instance_class}"
            f"{' Multi-AZ' if db.multi_az else ''}{f' and {db.read_replicas} replica(s)' if db.read_replicas else ''}",
            (primary + replicas) * prices.discount("rds_reserved_1yr_no_upfront"),
        ),
        Saving(
            f"ElastiCache: 1-year no-upfront reserved nodes, {cache_nodes} x {env.cache.node_type}",
            valkey * prices.discount("elasticache_reserved_1yr_no_upfront"),
        ),
        Saving(
            f"Nodes: 1-year no-upfront Compute Savings Plan of ${baseline / hours * (1 - sp):.3f}/h "
            f"for the {baseline_nodes} baseline On-Demand nodes (the groups' min_size)",
            baseline * sp,
        ),
    )
    return Estimate(
        env_name=env_name,
        region=region,
        production=env.production,
        budget=float(env.monthly_budget_usd),
        lines=tuple(lines),
        x86_on_demand_nodes=x86_nodes,
        graviton_on_demand_nodes=graviton_nodes,
        recommendations=recommendations,
    )


NOT_PRICED = (
    "Not priced: Fargate pods (batch-jobs, per use), CloudWatch logs and metrics, WAF, KMS keys, Secrets Manager, "
    "Route 53, GuardDuty/Security Hub/Config/Inspector, AWS Backup and RDS backup storage beyond the free "
    "allowance, data transfer out of the ALB, tax."
)


def render(estimates: list[Estimate], *, prices: Prices, usage_file: Path = USAGE_FILE) -> str:
    out: list[str] = []
    width = max(len(line.quantity) for e in estimates for line in e.lines)
    for e in estimates:
        out.append(f"== {e.env_name} ({e.region}, {'production' if e.production else 'non-production'}) ==")
        out.append(f"{'component':<34}{'quantity':<{width + 2}}{'USD/month':>12}")
        out.extend(f"{line.component:<34}{line.quantity:<{width + 2}}{_money(line.monthly):>12}" for line in e.lines)
        out.append(f"{'total':<34}{'':<{width + 2}}{_money(e.total):>12}")
        verdict = (
            f"WARNING: over budget by ${_money(e.over_budget)}"
            if e.over_budget > 0
            else f"ok, {e.total / e.budget:.0%} of it"
        )
        out.append(f"{'monthly budget':<34}{'':<{width + 2}}{_money(e.budget):>12}  {verdict}")
        out.append(
            f"Graviton and spot: the same nodes as x86 On-Demand would cost ${_money(e.x86_on_demand_nodes)}; "
            f"Graviton saves ${_money(e.graviton_saving)}, spot saves ${_money(e.spot_saving)} "
            f"({(e.graviton_saving + e.spot_saving) / e.x86_on_demand_nodes:.0%} of x86 On-Demand)"
            if e.x86_on_demand_nodes
            else "Graviton and spot: no nodes"
        )
        out.append("Commitments for the steady components" + ("" if e.production else " (if it runs all month)") + ":")
        out.extend(f"  - {s.what}: saves ${_money(s.monthly)}/month" for s in e.recommendations)
        committed = e.total - sum(s.monthly for s in e.recommendations)
        out.append(f"  with all three: ${_money(committed)}/month")
        out.append("")
    out.append(f"{'environment':<14}{'region':<16}{'estimate':>12}{'budget':>12}  status")
    for e in estimates:
        status = f"WARNING: exceeds budget by ${_money(e.over_budget)}" if e.over_budget > 0 else "within budget"
        out.append(f"{e.env_name:<14}{e.region:<16}{_money(e.total):>12}{_money(e.budget):>12}  {status}")
    out.append("")
    out.append(
        f"Prices: {TABLE} as of {prices.table['as_of']}, On-Demand USD, "
        f"{prices.hours:g} h/month; spot at {prices.discount('spot'):.0%} off. Usage: scripts/cost/{usage_file.name} "
        "(traffic and stored data); nodes at desired_size."
    )
    out.append(NOT_PRICED)
    return "\n".join(out)


def estimate_all(
    cfg: OrgConfig, *, prices: Prices, usage: Mapping[str, Mapping[str, float]], facts_of: Callable[[str], Facts]
) -> list[Estimate]:
    return [estimate(cfg, name, prices=prices, usage=usage, facts=facts_of(name)) for name in cfg.environments]


def load_usage(path: Path = USAGE_FILE) -> dict[str, dict[str, float]]:
    return yamlio.load(path.read_text())

"""What Prometheus scrapes: Supabase components, the data-tier exporters, controllers, probes."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from database.roles import READ_ONLY_ROLE
from k8s_charts.aws_values import AwsValues
from k8s_charts.catalog import CATALOG
from k8s_charts.hardening import SKIP_DIGEST, Probe
from k8s_charts.monitoring.objects import (
    OBSERVABILITY_NAMESPACE,
    RELEASE_LABELS,
    SUPABASE_NAMESPACE,
    Workload,
    add_workload,
    api_object,
    external_secret,
    from_prometheus,
    network_policy,
)
from k8s_charts.objects import DNS_EGRESS
from k8s_charts.supabase.contract import REALTIME_METRICS_TOKEN_KEY, REALTIME_METRICS_TOKEN_SECRET

POSTGRES_EXPORTER_IMAGE = "quay.io/prometheuscommunity/postgres-exporter:v0.20.1"
REDIS_EXPORTER_IMAGE = "oliver006/redis_exporter:v1.74.0"
BLACKBOX_EXPORTER_IMAGE = "quay.io/prometheus/blackbox-exporter:v0.27.0"
BLACKBOX_URL = f"blackbox-exporter.{OBSERVABILITY_NAMESPACE}.svc:9115"
# Defined by the kube-prometheus-stack add-on (Prometheus' scrapeClasses) when features.istio
# is on: its tlsConfig presents Prometheus' Istio workload certificate. Kept here, not in the
# add-on, because charts never import the CDK side.
ISTIO_SCRAPE_CLASS = "istio-mtls"


@dataclass(frozen=True, kw_only=True)
class ScrapeTarget:
    """One Supabase component whose Service has a port named `metrics`."""

    component: str
    path: str = "/metrics"
    bearer_token: bool = False


SUPABASE_TARGETS: tuple[ScrapeTarget, ...] = tuple(
    ScrapeTarget(component=c.name, path=c.metrics_path, bearer_token=c.metrics_bearer_token)
    for c in CATALOG.values()
    if c.metrics_port is not None
)


def add_supabase_service_monitors(scope: Construct, *, mesh: bool) -> None:
    """With the mesh on, the supabase namespace is STRICT mTLS and its metrics ports admit only
    Prometheus' principal (docs/security.md): scrapes go over https with the Istio scrape class."""
    # In the supabase namespace because the operator reads a ServiceMonitor's
    # authorization Secret from the ServiceMonitor's own namespace (Realtime's token).
    for target in SUPABASE_TARGETS:
        endpoint: dict = {
            "port": "metrics",
            "path": target.path,
            "interval": "30s",
            "scrapeTimeout": "10s",
            "honorLabels": False,
        }
        if mesh:
            endpoint["scheme"] = "https"
        if target.bearer_token:
            endpoint["authorization"] = {
                "type": "Bearer",
                "credentials": {
                    # Written by the Supabase chart: a JWT signed with Realtime's METRICS_JWT_SECRET.
                    "name": REALTIME_METRICS_TOKEN_SECRET,
                    "key": REALTIME_METRICS_TOKEN_KEY,
                },
            }
        spec: dict = {
            "jobLabel": "app.kubernetes.io/name",
            "namespaceSelector": {"matchNames": [SUPABASE_NAMESPACE]},
            "selector": {
                "matchLabels": {"app.kubernetes.io/name": target.component, "app.kubernetes.io/part-of": "supabase"}
            },
            "endpoints": [endpoint],
        }
        if mesh:
            spec["scrapeClass"] = ISTIO_SCRAPE_CLASS
        api_object(
            scope,
            f"sm-{target.component}",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            name=target.component,
            namespace=SUPABASE_NAMESPACE,
            labels=RELEASE_LABELS,
            body={"spec": spec},
        )


def add_controller_pod_monitors(scope: Construct) -> None:
    """Controllers installed by Helm from the CDK: their pods expose a named metrics port."""
    controllers = (
        ("external-secrets", "external-secrets", "external-secrets", "metrics"),
        ("aws-load-balancer-controller", "kube-system", "aws-load-balancer-controller", "metrics-server"),
    )
    for name, namespace, app, port in controllers:
        api_object(
            scope,
            f"pm-{name}",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            name=name,
            namespace=OBSERVABILITY_NAMESPACE,
            labels=RELEASE_LABELS,
            body={
                "spec": {
                    "jobLabel": "app.kubernetes.io/name",
                    "namespaceSelector": {"matchNames": [namespace]},
                    "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                    "podMetricsEndpoints": [{"port": port, "path": "/metrics", "interval": "30s"}],
                }
            },
        )


def _exporter_monitor(scope: Construct, name: str, port: str) -> None:
    api_object(
        scope,
        f"sm-{name}",
        api_version="monitoring.coreos.com/v1",
        kind="ServiceMonitor",
        name=name,
        namespace=OBSERVABILITY_NAMESPACE,
        labels=RELEASE_LABELS,
        body={
            "spec": {
                "jobLabel": "app.kubernetes.io/name",
                "namespaceSelector": {"matchNames": [OBSERVABILITY_NAMESPACE]},
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "endpoints": [{"port": port, "path": "/metrics", "interval": "30s", "scrapeTimeout": "20s"}],
            }
        },
    )


def _egress_to_vpc(cidr: str, port: int) -> dict:
    return {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": port}]}


def add_postgres_exporters(scope: Construct, values: AwsValues, *, read_replicas: int) -> None:
    """One exporter for the writer, one for the reader endpoint (replication lag is only visible there)."""
    external_secret(
        scope,
        "postgres-exporter-credentials",
        name="postgres-exporter",
        namespace=OBSERVABILITY_NAMESPACE,
        data=[
            ("username", f"{values.secret_prefix}db/{READ_ONLY_ROLE}", "username"),
            ("password", f"{values.secret_prefix}db/{READ_ONLY_ROLE}", "password"),
        ],
    )
    endpoints = [("postgres-exporter", values.db_host)]
    if read_replicas:
        endpoints.append(("postgres-exporter-replica", values.db_read_host))
    for name, host in endpoints:
        add_workload(
            scope,
            Workload(
                name=name,
                namespace=OBSERVABILITY_NAMESPACE,
                image=POSTGRES_EXPORTER_IMAGE,
                ports={"metrics": 9187},
                probe=Probe(port="metrics", path="/"),
                args=[
                    "--collector.stat_statements",
                    "--collector.long_running_transactions",
                    "--collector.stat_statements.limit=50",
                ],
                env=[
                    {
                        "name": "DATA_SOURCE_URI",
                        # RDS forces TLS (rds.force_ssl=1); `require` because the image has no RDS CA bundle.
                        "value": f"{host}:{values.db_port}/{values.db_name}?sslmode=require",
                    },
                    {"name": "DATA_SOURCE_USER_FILE", "value": "/etc/secrets/username"},
                    {"name": "DATA_SOURCE_PASS_FILE", "value": "/etc/secrets/password"},
                ],
                secret_files="postgres-exporter",
            ),
        )
        _exporter_monitor(scope, name, "metrics")
        network_policy(
            scope,
            f"{name}-netpol",
            name=name,
            namespace=OBSERVABILITY_NAMESPACE,
            pod_selector={"app.kubernetes.io/name": name},
            ingress=[from_prometheus(9187)],
            egress=[DNS_EGRESS, _egress_to_vpc(values.vpc_cidr, values.db_port)],
        )


def add_redis_exporter(scope: Construct, values: AwsValues) -> None:
    external_secret(
        scope,
        "redis-exporter-credentials",
        name="redis-exporter",
        namespace=OBSERVABILITY_NAMESPACE,
        data=[("REDIS_PASSWORD", f"{values.secret_prefix}redis", "auth_token")],
    )
    add_workload(
        scope,
        Workload(
            name="redis-exporter",
            namespace=OBSERVABILITY_NAMESPACE,
            image=REDIS_EXPORTER_IMAGE,
            ports={"metrics": 9121},
            probe=Probe(port="metrics", path="/health"),
            # rediss:// is TLS: ElastiCache has in-transit encryption on, with an AUTH token.
            env=[{"name": "REDIS_ADDR", "value": f"rediss://{values.redis_host}:{values.redis_port}"}],
            env_from_secret="redis-exporter",
            checkov_skips=(
                SKIP_DIGEST,
                (
                    "CKV_K8S_35",
                    "redis_exporter's password file is a per-URI JSON map for "
                    "multi-target scraping; the single token comes from an "
                    "ESO-managed Secret, never a literal",
                ),
            ),
        ),
    )
    _exporter_monitor(scope, "redis-exporter", "metrics")
    network_policy(
        scope,
        "redis-exporter-netpol",
        name="redis-exporter",
        namespace=OBSERVABILITY_NAMESPACE,
        pod_selector={"app.kubernetes.io/name": "redis-exporter"},
        ingress=[from_prometheus(9121)],
        egress=[DNS_EGRESS, _egress_to_vpc(values.vpc_cidr, values.redis_port)],
    )


BLACKBOX_CONFIG = """\
modules:
  https_tls:
    prober: http
    timeout: 10s
    http:
      method: GET
      preferred_ip_protocol: ip4
      fail_if_not_ssl: true
      # Kong answers 401/404 on a bare path without an API key; the probe is about TLS and reachability.
      valid_status_codes: [200, 301, 302, 401, 404]
"""


def add_certificate_probe(scope: Construct, values: AwsValues) -> None:
    """Blackbox exporter probing the public hostnames: `probe_ssl_earliest_cert_expiry` is the
    certificate the client really sees (the ALB's ACM certificate, or CloudFront's), so a
    failed ACM DNS-validated renewal shows up before the old certificate lapses."""
    api_object(
        scope,
        "blackbox-config",
        api_version="v1",
        kind="ConfigMap",
        name="blackbox-exporter",
        namespace=OBSERVABILITY_NAMESPACE,
        labels={"app.kubernetes.io/name": "blackbox-exporter"},
        body={"data": {"blackbox.yml": BLACKBOX_CONFIG}},
    )
    add_workload(
        scope,
        Workload(
            name="blackbox-exporter",
            namespace=OBSERVABILITY_NAMESPACE,
            image=BLACKBOX_EXPORTER_IMAGE,
            ports={"http": 9115},
            probe=Probe(port="http", path="/-/healthy"),
            args=["--config.file=/etc/blackbox/blackbox.yml"],
            config_map="blackbox-exporter",
            config_mount="/etc/blackbox",
        ),
    )
    network_policy(
        scope,
        "blackbox-netpol",
        name="blackbox-exporter",
        namespace=OBSERVABILITY_NAMESPACE,
        pod_selector={"app.kubernetes.io/name": "blackbox-exporter"},
        ingress=[from_prometheus(9115)],
        egress=[DNS_EGRESS, {"ports": [{"protocol": "TCP", "port": 443}]}],
    )
    api_object(
        scope,
        "probe-public-endpoints",
        api_version="monitoring.coreos.com/v1",
        kind="Probe",
        name="public-endpoints",
        namespace=OBSERVABILITY_NAMESPACE,
        labels=RELEASE_LABELS,
        body={
            "spec": {
                "jobName": "blackbox",
                "interval": "60s",
                "module": "https_tls",
                "prober": {"url": BLACKBOX_URL, "path": "/probe", "scheme": "http"},
                "targets": {
                    "staticConfig": {"static": [f"https://{values.api_host}/", f"https://{values.studio_host}/"]}
                },
            }
        },
    )

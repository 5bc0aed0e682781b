"""OpenTelemetry collector (ADOT) receiving OTLP from Supabase services and exporting to X-Ray."""

from __future__ import annotations

from constructs import Construct

from config import yamlio
from k8s_charts.aws_values import AwsValues
from k8s_charts.hardening import Probe
from k8s_charts.monitoring.objects import (
    OBSERVABILITY_NAMESPACE,
    SUPABASE_NAMESPACE,
    Workload,
    add_workload,
    api_object,
    network_policy,
)
from k8s_charts.objects import DNS_EGRESS

ADOT_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
OTEL_COLLECTOR = "otel-collector"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
HEALTH_PORT = 13133


def collector_config(*, region: str, sample_ratio: float) -> dict:
    return {
        "extensions": {"health_check": {"endpoint": f"0.0.0.0:{HEALTH_PORT}"}},
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"},
                }
            }
        },
        "processors": {
            # First in the pipeline so that overload sheds data instead of OOM-killing the pod.
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25},
            "probabilistic_sampler": {"sampling_percentage": round(sample_ratio * 100, 4)},
            "batch": {"timeout": "5s", "send_batch_size": 512},
        },
        "exporters": {"awsxray": {"region": region}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "probabilistic_sampler", "batch"],
                    "exporters": ["awsxray"],
                }
            },
        },
    }


def add_otel_collector(scope: Construct, values: AwsValues, *, sample_ratio: float) -> None:
    api_object(
        scope,
        "otel-config",
        api_version="v1",
        kind="ConfigMap",
        name=OTEL_COLLECTOR,
        namespace=OBSERVABILITY_NAMESPACE,
        labels={"app.kubernetes.io/name": OTEL_COLLECTOR},
        body={
            "data": {
                "config.yaml": yamlio.dump(
                    collector_config(region=values.region, sample_ratio=sample_ratio), sort_keys=False
                )
            }
        },
    )
    add_workload(
        scope,
        Workload(
            name=OTEL_COLLECTOR,
            namespace=OBSERVABILITY_NAMESPACE,
            image=ADOT_IMAGE,
            ports={"otlp-grpc": OTLP_GRPC_PORT, "otlp-http": OTLP_HTTP_PORT, "health": HEALTH_PORT},
            probe=Probe(port="health", path="/"),
            args=["--config=/conf/config.yaml"],
            config_map=OTEL_COLLECTOR,
            config_mount="/conf",
            replicas=2,
            cpu_request="100m",
            cpu_limit="1",
            memory_request="256Mi",
            memory_limit="512Mi",
            run_as_user=10001,
        ),
    )
    network_policy(
        scope,
        "otel-netpol",
        name=OTEL_COLLECTOR,
        namespace=OBSERVABILITY_NAMESPACE,
        pod_selector={"app.kubernetes.io/name": OTEL_COLLECTOR},
        ingress=[
            {
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": SUPABASE_NAMESPACE}}}],
                "ports": [{"protocol": "TCP", "port": OTLP_GRPC_PORT}, {"protocol": "TCP", "port": OTLP_HTTP_PORT}],
            }
        ],
        # X-Ray's regional endpoint (or its VPC interface endpoint) on 443.
        egress=[DNS_EGRESS, {"ports": [{"protocol": "TCP", "port": 443}]}],
    )

"""Public entry: one ALB (AWS Load Balancer Controller) for the API and Studio hosts -> Kong."""

from __future__ import annotations

import json

from constructs import Construct

from k8s_charts.supabase import images, kong
from k8s_charts.supabase.k8s import api_object, labels
from k8s_charts.supabase.props import SupabaseProps

SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # TLS 1.3 + 1.2 only
# Realtime websockets stay open for long; the ALB default (60 s) would cut idle sockets.
IDLE_TIMEOUT_SECONDS = 3600


def add_ingress(scope: Construct, props: SupabaseProps) -> None:
    values = props.values
    attributes = [
        f"idle_timeout.timeout_seconds={IDLE_TIMEOUT_SECONDS}",
        "routing.http.drop_invalid_header_fields.enabled=true",
    ]
    if values.production:
        attributes.append("deletion_protection.enabled=true")
    annotations = {
        "alb.ingress.kubernetes.io/scheme": "internet-facing",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/backend-protocol": "HTTP",
        "alb.ingress.kubernetes.io/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
        "alb.ingress.kubernetes.io/ssl-redirect": "443",
        "alb.ingress.kubernetes.io/ssl-policy": SSL_POLICY,
        "alb.ingress.kubernetes.io/certificate-arn": values.certificate_arn,
        "alb.ingress.kubernetes.io/wafv2-acl-arn": values.waf_acl_arn,
        "alb.ingress.kubernetes.io/load-balancer-attributes": ",".join(attributes),
        # Kong's readiness endpoint on its status listener: ready only once the config loaded.
        "alb.ingress.kubernetes.io/healthcheck-port": str(kong.STATUS_PORT),
        "alb.ingress.kubernetes.io/healthcheck-path": "/status/ready",
        "alb.ingress.kubernetes.io/success-codes": "200",
    }
    backend = {"service": {"name": "kong", "port": {"number": kong.PROXY_PORT}}}
    api_object(
        scope,
        api_version="networking.k8s.io/v1",
        kind="Ingress",
        name="supabase",
        labels=labels("kong", images.KONG.tag),
        annotations=annotations,
        body={
            "spec": {
                "ingressClassName": "alb",
                "tls": [{"hosts": [values.api_host, values.studio_host]}],
                "rules": [
                    {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
                    for host in (values.api_host, values.studio_host)
                ],
            }
        },
    )

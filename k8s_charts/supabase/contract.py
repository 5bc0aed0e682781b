"""What other charts and tools rely on from the Supabase chart, defined once.

The rollouts chart, the monitoring chart and the incident-response function each depend on
something this chart renders (a Deployment to take over, a Secret to read, a label to honour).
They import it from here, or, where they cannot import (the Lambda ships alone), a test holds
their copy to this one.
"""

from __future__ import annotations

from dataclasses import dataclass

# Set on a pod by ops/incident_response/handler.py. NetworkPolicies only add allows, so every
# allow policy of the chart leaves pods carrying it out of its podSelector.
QUARANTINE_LABEL = "security.supabase.io/quarantine"
NOT_QUARANTINED = {"key": QUARANTINE_LABEL, "operator": "DoesNotExist"}

# Bearer token the Prometheus operator sends to Realtime's /metrics (read by the monitoring
# chart's ServiceMonitor, which must live in the Secret's namespace).
REALTIME_METRICS_TOKEN_SECRET = "realtime-metrics-token"
REALTIME_METRICS_TOKEN_KEY = "token"

# The custom metric the Realtime HPA scales on, per pod: Realtime's node-local count of open
# websocket connections. It is on /metrics, the endpoint the monitoring chart scrapes; the
# per-tenant `realtime_connections_connected` is only on /tenant-metrics. prometheus-adapter
# (constructs_lib.addons.prometheus_adapter) serves the series under this same name.
REALTIME_CONNECTIONS_METRIC = "realtime_connections_global_connected"


@dataclass(frozen=True, kw_only=True)
class CanaryTarget:
    component: str  # Deployment = Service = Rollout name in the supabase namespace
    kong_service: str  # regex over the Kong service names routed to it (kong.py route names)
    max_p95_ms: int


# Components whose Deployment Argo Rollouts drives through `workloadRef`. The Supabase chart
# leaves their replica count out and aims their HPA at the Rollout; the rollouts chart renders
# one Rollout each. Reads of /rest/v1 go to rest-ro and writes to rest, so each canary watches
# only its own routes.
CANARY_TARGETS: tuple[CanaryTarget, ...] = (
    CanaryTarget(component="auth", kong_service="auth-v1.*", max_p95_ms=500),
    CanaryTarget(component="rest", kong_service="rest-v1-write", max_p95_ms=500),
    CanaryTarget(component="rest-ro", kong_service="rest-v1-(read|openapi)", max_p95_ms=500),
    CanaryTarget(component="storage", kong_service="storage-v1.*", max_p95_ms=2000),
    CanaryTarget(component="functions", kong_service="functions-v1", max_p95_ms=3000),
)
CANARY_COMPONENTS = frozenset(t.component for t in CANARY_TARGETS)

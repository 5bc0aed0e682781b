"""Argo Rollouts canaries for the stateless Supabase API services.

Each Rollout points at the Supabase chart's Deployment with `workloadRef`, so the pod
template stays in a plain Deployment (scanned by checkov and kubernetes-validate) and
Argo Rollouts scales that Deployment down progressively as the Rollout takes over.

Traffic is split by replica count, not by Istio weights: the canary gets its share of
pods behind the existing Service. That works whether or not features.istio is on, and it
leaves the Istio VirtualServices (owned by the mesh chart) untouched. The price is a
coarse split (one pod of N), which is why the first step is small and gated by analysis.

`spec.replicas` is left out on purpose: the Supabase chart's HPA for each component must
target the Rollout (scaleTargetRef argoproj.io/v1alpha1 Rollout), and a replica count
here would fight it on every apply, exactly as it would on a Deployment.
"""

from __future__ import annotations

from typing import Any

import cdk8s

from k8s_charts.monitoring.objects import SUPABASE_NAMESPACE, api_object

# One list of canaried components for both charts: the Supabase chart hands these components'
# scaling to the Rollouts rendered here.
from k8s_charts.supabase.contract import CANARY_TARGETS, CanaryTarget

PROMETHEUS_ADDRESS = "http://kube-prometheus-stack-prometheus.observability.svc:9090"
ANALYSIS_TEMPLATE = "kong-canary-health"
SUCCESS_RATE_THRESHOLD = 0.99
ANALYSIS_WINDOW = "2m"

# No traffic in the window gives NaN: an idle environment must not abort every rollout.
SUCCESS_CONDITION = f"len(result) == 0 || isNaN(result[0]) || result[0] >= {SUCCESS_RATE_THRESHOLD}"
LATENCY_CONDITION = "len(result) == 0 || isNaN(result[0]) || result[0] <= {{args.max-p95-ms}}"

SUCCESS_QUERY = (
    f'sum(rate(kong_http_requests_total{{service=~"{{{{args.kong-service}}}}",code!~"5.."}}[{ANALYSIS_WINDOW}]))'
    f' / sum(rate(kong_http_requests_total{{service=~"{{{{args.kong-service}}}}"}}[{ANALYSIS_WINDOW}]))'
)
LATENCY_QUERY = (
    "histogram_quantile(0.95, sum by (le) (rate(kong_request_latency_ms_bucket"
    f'{{service=~"{{{{args.kong-service}}}}"}}[{ANALYSIS_WINDOW}])))'
)


CANARY_STEPS: tuple[dict[str, Any], ...] = (
    {"setWeight": 10},
    {"pause": {"duration": "5m"}},
    {"analysis": {"templates": [{"templateName": ANALYSIS_TEMPLATE}]}},
    {"setWeight": 30},
    {"pause": {"duration": "5m"}},
    {"setWeight": 60},
    {"pause": {"duration": "5m"}},
)


class RolloutsChart(cdk8s.Chart):
    def __init__(self, scope: cdk8s.App, id_: str, *, targets: tuple[CanaryTarget, ...] = CANARY_TARGETS) -> None:
        super().__init__(scope, id_, disable_resource_name_hashes=True)
        measurement = {"interval": "1m", "count": 5, "failureLimit": 1, "consecutiveErrorLimit": 3}
        api_object(
            self,
            "analysis-template",
            api_version="argoproj.io/v1alpha1",
            kind="AnalysisTemplate",
            name=ANALYSIS_TEMPLATE,
            namespace=SUPABASE_NAMESPACE,
            labels={"app.kubernetes.io/part-of": "supabase"},
            body={
                "spec": {
                    "args": [{"name": "kong-service"}, {"name": "max-p95-ms"}],
                    "metrics": [
                        {
                            "name": "success-rate",
                            **measurement,
                            "successCondition": SUCCESS_CONDITION,
                            "provider": {"prometheus": {"address": PROMETHEUS_ADDRESS, "query": SUCCESS_QUERY}},
                        },
                        {
                            "name": "latency-p95",
                            **measurement,
                            "successCondition": LATENCY_CONDITION,
                            "provider": {"prometheus": {"address": PROMETHEUS_ADDRESS, "query": LATENCY_QUERY}},
                        },
                    ],
                }
            },
        )
        for t in targets:
            args = [
                {"name": "kong-service", "value": t.kong_service},
                {"name": "max-p95-ms", "value": str(t.max_p95_ms)},
            ]
            steps = [
                {"analysis": {"templates": s["analysis"]["templates"], "args": args}} if "analysis" in s else s
                for s in CANARY_STEPS
            ]
            api_object(
                self,
                f"rollout-{t.component}",
                api_version="argoproj.io/v1alpha1",
                kind="Rollout",
                name=t.component,
                namespace=SUPABASE_NAMESPACE,
                labels={"app.kubernetes.io/name": t.component, "app.kubernetes.io/part-of": "supabase"},
                body={
                    "spec": {
                        "revisionHistoryLimit": 5,
                        "workloadRef": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": t.component,
                            "scaleDown": "progressively",
                        },
                        "progressDeadlineSeconds": 900,
                        "progressDeadlineAbort": True,
                        "strategy": {
                            "canary": {
                                "maxSurge": 1,
                                "maxUnavailable": 0,
                                "steps": steps,
                                # Watches the whole rollout after the first gate; a failure aborts and
                                # the stable ReplicaSet takes all replicas back.
                                "analysis": {
                                    "templates": [{"templateName": ANALYSIS_TEMPLATE}],
                                    "args": args,
                                    "startingStep": 3,
                                },
                            }
                        },
                    }
                },
            )

"""First response to a high-severity runtime threat in the EKS cluster.

Inputs (one function per cluster):

* GuardDuty EKS findings (EKS Protection audit-log findings and Runtime Monitoring findings)
  from an EventBridge rule on the default bus: `source` `aws.guardduty`, `detail-type`
  `GuardDuty Finding`. Acted on when `detail.severity` >= 7 (High and Critical),
  `detail.resource.eksClusterDetails.name` is this cluster and
  `detail.resource.kubernetesDetails.kubernetesWorkloadDetails` names a pod.
* Falco alerts. Falcosidekick has no EventBridge output; its AWS outputs are Lambda, SQS, SNS,
  CloudWatch Logs, S3, Kinesis and Security Lake, and each sends its JSON payload
  (`rule`, `priority`, `output`, `output_fields`, `time`, ...). The EventBridge path is
  Falcosidekick's SQS output (`config.aws.sqs.url`, `minimumpriority: critical`) -> an
  EventBridge Pipe (source: the queue; target: the default bus with `Source`
  `FALCO_EVENT_SOURCE` and `DetailType` `FALCO_DETAIL_TYPE`; input template `<$.body>` so
  the payload becomes `detail`) -> the same rule as GuardDuty. Falcosidekick's Lambda output
  (`config.aws.lambda.functionname`, invocation type `Event`) may call this function
  directly instead: the bare payload is accepted too. Acted on for priorities Critical,
  Alert and Emergency when `output_fields` carries `k8s.ns.name` and `k8s.pod.name`.

Response: label the pod `security.supabase.io/quarantine=true` (the pod is kept for
forensics, not deleted) and make sure the namespace has the NetworkPolicy `quarantine`, which
selects labelled pods and allows no ingress and no egress. NetworkPolicies only add allows, so
this isolates the pod only if every other policy's podSelector excludes the label
(`matchExpressions: [{key: security.supabase.io/quarantine, operator: DoesNotExist}]`); the
charts must do that. Then a summary goes to the SNS topic `TOPIC_ARN`. Pods in
`PROTECTED_NAMESPACES` (default kube-system) are reported but not touched: isolating a
cluster DNS or CNI pod would take the cluster down with it.

Kubernetes is reached through `KubernetesApi`; the real client speaks HTTPS with an EKS
bearer token (a presigned STS GetCallerIdentity URL) and needs an EKS access entry mapping
this function's role to RBAC that allows `patch` on pods and `get`, `create`, `update` on
networkpolicies.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import boto3

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

QUARANTINE_LABEL = "security.supabase.io/quarantine"
QUARANTINE_REASON_ANNOTATION = "security.supabase.io/quarantine-reason"
POLICY_NAME = "quarantine"
MANAGER = "supabase-incident-response"
GUARDDUTY_MIN_SEVERITY = 7.0
FALCO_PRIORITIES = frozenset({"emergency", "alert", "critical"})
FALCO_EVENT_SOURCE = "supabase.falco"
FALCO_DETAIL_TYPE = "Falco Alert"
DEFAULT_PROTECTED_NAMESPACES = ("kube-system",)
TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# Falco prints <NA> for a field the event does not have (e.g. a process outside any pod).
_FALCO_MISSING = {"", "<NA>", None}


@dataclass(frozen=True, kw_only=True)
class Offender:
    """A pod a trusted detector says is compromised."""

    detector: str
    title: str
    severity: str
    reference: str
    namespace: str
    pod: str
    cluster: str | None = None


@dataclass(frozen=True, kw_only=True)
class Ignored:
    reason: str


def _guardduty(detail: Mapping[str, Any], cluster_name: str) -> Offender | Ignored:
    severity = float(detail.get("severity") or 0)
    if severity < GUARDDUTY_MIN_SEVERITY:
        return Ignored(reason=f"GuardDuty severity {severity} is below {GUARDDUTY_MIN_SEVERITY}")
    resource = detail.get("resource") or {}
    cluster = (resource.get("eksClusterDetails") or {}).get("name")
    if cluster != cluster_name:
        return Ignored(reason=f"finding is for cluster {cluster!r}, this function serves {cluster_name!r}")
    workload = (resource.get("kubernetesDetails") or {}).get("kubernetesWorkloadDetails") or {}
    kind = str(workload.get("type", "")).lower()
    if kind not in ("pod", "pods") or not workload.get("name") or not workload.get("namespace"):
        return Ignored(reason=f"finding names no pod (workload type {kind or 'none'})")
    return Offender(
        detector="GuardDuty",
        title=str(detail.get("type", "unknown finding")),
        severity=str(severity),
        reference=str(detail.get("id", "")),
        namespace=workload["namespace"],
        pod=workload["name"],
        cluster=cluster,
    )


def _falco(payload: Mapping[str, Any]) -> Offender | Ignored:
    priority = str(payload.get("priority", "")).lower()
    if priority not in FALCO_PRIORITIES:
        return Ignored(reason=f"Falco priority {priority or 'none'} is below critical")
    fields = payload.get("output_fields") or {}
    namespace, pod = fields.get("k8s.ns.name"), fields.get("k8s.pod.name")
    if namespace in _FALCO_MISSING or pod in _FALCO_MISSING:
        return Ignored(reason="Falco event names no pod")
    return Offender(
        detector="Falco",
        title=str(payload.get("rule", "unknown rule")),
        severity=priority.capitalize(),
        reference=str(payload.get("uuid") or payload.get("time", "")),
        namespace=str(namespace),
        pod=str(pod),
    )


def parse_event(event: Mapping[str, Any], *, cluster_name: str) -> Offender | Ignored:
    source = event.get("source")
    if source == "aws.guardduty" and event.get("detail-type") == "GuardDuty Finding":
        return _guardduty(event.get("detail") or {}, cluster_name)
    if source == FALCO_EVENT_SOURCE:
        detail = event.get("detail")
        # Without the Pipe's input template the SQS record itself is the detail.
        if isinstance(detail, Mapping) and isinstance(detail.get("body"), str):
            try:
                detail = json.loads(detail["body"])
            except ValueError:
                return Ignored(reason="Falco event body is not JSON")
        return _falco(detail if isinstance(detail, Mapping) else {})
    if "rule" in event and "priority" in event and "output_fields" in event:
        return _falco(event)
    return Ignored(reason=f"not a GuardDuty finding or Falco alert (source {source!r})")


def quarantine_policy(namespace: str) -> dict[str, Any]:
    """Selects quarantined pods and, listing both policy types with no rules, allows nothing."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": POLICY_NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGER},
        },
        "spec": {
            "podSelector": {"matchLabels": {QUARANTINE_LABEL: "true"}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


class KubernetesApi(Protocol):
    def label_pod(self, namespace: str, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        """Merge labels and annotations into the pod; False when the pod no longer exists."""

    def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def create_network_policy(self, namespace: str, body: Mapping[str, Any]) -> None: ...

    def replace_network_policy(self, namespace: str, name: str, body: Mapping[str, Any]) -> None: ...


def ensure_quarantine_policy(kube: KubernetesApi, namespace: str) -> str:
    desired = quarantine_policy(namespace)
    existing = kube.get_network_policy(namespace, POLICY_NAME)
    if existing is None:
        kube.create_network_policy(namespace, desired)
        return "created"
    if existing.get("spec") == desired["spec"]:
        return "unchanged"
    # Someone loosened the policy: a quarantine that lets traffic through is worse than none.
    body = {**desired, "metadata": {**desired["metadata"], "resourceVersion": existing["metadata"]["resourceVersion"]}}
    kube.replace_network_policy(namespace, POLICY_NAME, body)
    return "restored"


def respond(
    offender: Offender,
    *,
    kube: Callable[[], KubernetesApi],
    sns: Any,
    topic_arn: str,
    protected_namespaces: tuple[str, ...],
) -> dict[str, Any]:
    """Quarantine the pod (unless protected) and publish what was done."""
    actions: list[str] = []
    if offender.namespace in protected_namespaces:
        actions.append(f"namespace {offender.namespace} is protected: pod left running, isolate it by hand")
    else:
        api = kube()
        # Policy first, so the pod is cut off the moment the label lands.
        actions.append(f"NetworkPolicy {POLICY_NAME} {ensure_quarantine_policy(api, offender.namespace)}")
        reason = f"{offender.detector}: {offender.title} ({offender.reference})"[:250]
        if api.label_pod(
            offender.namespace, offender.pod, {QUARANTINE_LABEL: "true"}, {QUARANTINE_REASON_ANNOTATION: reason}
        ):
            actions.append(f"labelled pod {QUARANTINE_LABEL}=true")
        else:
            actions.append("pod no longer exists: nothing to isolate")
    summary = {
        "detector": offender.detector,
        "title": offender.title,
        "severity": offender.severity,
        "reference": offender.reference,
        "cluster": offender.cluster,
        "namespace": offender.namespace,
        "pod": offender.pod,
        "actions": actions,
    }
    sns.publish(
        TopicArn=topic_arn,
        # SNS subjects are limited to 100 characters.
        Subject=f"[quarantine] {offender.namespace}/{offender.pod}: {offender.title}"[:100],
        Message=json.dumps(summary, indent=2),
    )
    LOG.info(
        "responded to %s %s on %s/%s: %s", offender.detector, offender.title, offender.namespace, offender.pod, actions
    )
    return summary


def eks_token(cluster_name: str, *, sts_client: Any) -> str:
    """Bearer token EKS accepts: a presigned STS GetCallerIdentity URL, cluster header signed.

    EKS replays the URL against STS to learn the caller's role; the signed `x-k8s-aws-id`
    header stops a token minted for one cluster from being replayed against another.
    """

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster_name

    event_name = "before-sign.sts.GetCallerIdentity"
    sts_client.meta.events.register(event_name, add_cluster_header)
    try:
        url = sts_client.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    finally:
        sts_client.meta.events.unregister(event_name, add_cluster_header)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


class KubernetesError(Exception):
    pass


class EksKubernetesClient:
    """The four API calls the response needs, over urllib with an EKS bearer token."""

    def __init__(self, *, endpoint: str, ca_data: str | None, token: str, timeout_seconds: float = 10.0) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._token = token
        self._timeout = timeout_seconds
        # The cluster CA is the only trust anchor when given: the API server's certificate is
        # signed by it, not by a public CA.
        self._ssl = ssl.create_default_context(cadata=base64.b64decode(ca_data).decode("ascii") if ca_data else None)

    @classmethod
    def for_cluster(
        cls, *, cluster_name: str, endpoint: str | None, ca_data: str | None, session: Any
    ) -> EksKubernetesClient:
        if not endpoint or not ca_data:
            cluster = session.client("eks").describe_cluster(name=cluster_name)["cluster"]
            endpoint, ca_data = cluster["endpoint"], cluster["certificateAuthority"]["data"]
        return cls(endpoint=endpoint, ca_data=ca_data, token=eks_token(cluster_name, sts_client=session.client("sts")))

    def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any] | None]:
        request = urllib.request.Request(
            self._endpoint + path,
            method=method,
            data=json.dumps(body).encode("utf-8") if body is not None else None,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                "Content-Type": content_type,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._ssl) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 404, None
            raise KubernetesError(f"{method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from None

    def label_pod(self, namespace: str, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        path = f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}"
        patch = {"metadata": {"labels": dict(labels), "annotations": dict(annotations)}}
        status, _ = self._call("PATCH", path, patch, content_type="application/merge-patch+json")
        return status != 404

    def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._call("GET", f"{_policies(namespace)}/{_q(name)}")[1]

    def create_network_policy(self, namespace: str, body: Mapping[str, Any]) -> None:
        self._call("POST", _policies(namespace), body)

    def replace_network_policy(self, namespace: str, name: str, body: Mapping[str, Any]) -> None:
        self._call("PUT", f"{_policies(namespace)}/{_q(name)}", body)


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _policies(namespace: str) -> str:
    return f"/apis/networking.k8s.io/v1/namespaces/{_q(namespace)}/networkpolicies"


@functools.cache
def _session() -> Any:
    return boto3.session.Session()


def handler(
    event: Mapping[str, Any], context: Any, *, kube: KubernetesApi | None = None, sns: Any = None
) -> dict[str, Any]:
    cluster_name = os.environ["CLUSTER_NAME"]
    verdict = parse_event(event, cluster_name=cluster_name)
    if isinstance(verdict, Ignored):
        LOG.info("ignored: %s", verdict.reason)
        return {"action": "ignored", "reason": verdict.reason}

    def real_kube() -> KubernetesApi:
        return EksKubernetesClient.for_cluster(
            cluster_name=cluster_name,
            endpoint=os.environ.get("CLUSTER_ENDPOINT"),
            ca_data=os.environ.get("CLUSTER_CA"),
            session=_session(),
        )

    configured = os.environ.get("PROTECTED_NAMESPACES", ",".join(DEFAULT_PROTECTED_NAMESPACES))
    protected = tuple(name.strip() for name in configured.split(",") if name.strip())
    summary = respond(
        verdict,
        kube=(lambda: kube) if kube is not None else real_kube,
        sns=sns if sns is not None else _session().client("sns"),
        topic_arn=os.environ["TOPIC_ARN"],
        protected_namespaces=protected,
    )
    return {"action": "responded", **summary}

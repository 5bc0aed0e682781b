"""Incident response: GuardDuty and Falco events in, quarantine and an SNS summary out.

AWS calls go to moto; Kubernetes is a recording fake behind the handler's interface, and the
real urllib client is exercised against a local HTTPS API stand-in with a generated CA.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import ssl
import threading
import urllib.error
import urllib.parse

import boto3
import kubernetes_validate
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws

from ops.incident_response import handler as ir

REGION = "us-east-1"
CLUSTER = "supabase-prod"


class FakeKube:
    """Behaves like the API server for the calls the handler makes, and records them."""

    def __init__(self, pods: dict[tuple[str, str], dict] | None = None) -> None:
        self.pods = (
            pods
            if pods is not None
            else {("supabase", "rest-7d9f-abcde"): {"labels": {"app": "rest"}, "annotations": {}}}
        )
        self.policies: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple] = []

    def label_pod(self, namespace, name, labels, annotations):
        self.calls.append(("label_pod", namespace, name, dict(labels)))
        pod = self.pods.get((namespace, name))
        if pod is None:
            return False
        pod["labels"].update(labels)
        pod["annotations"].update(annotations)
        return True

    def get_network_policy(self, namespace, name):
        self.calls.append(("get_network_policy", namespace, name))
        return copy.deepcopy(self.policies.get((namespace, name)))

    def create_network_policy(self, namespace, body):
        self.calls.append(("create_network_policy", namespace, body["metadata"]["name"]))
        key = (namespace, body["metadata"]["name"])
        assert key not in self.policies, "AlreadyExists: the API server would answer 409"
        self.policies[key] = {**copy.deepcopy(dict(body)), "metadata": {**body["metadata"], "resourceVersion": "1"}}

    def replace_network_policy(self, namespace, name, body):
        self.calls.append(("replace_network_policy", namespace, name))
        current = self.policies[(namespace, name)]
        assert body["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"], (
            "Conflict: stale resourceVersion"
        )
        version = str(int(current["metadata"]["resourceVersion"]) + 1)
        self.policies[(namespace, name)] = {
            **copy.deepcopy(dict(body)),
            "metadata": {**body["metadata"], "resourceVersion": version},
        }

    def writes(self) -> list[tuple]:
        return [c for c in self.calls if c[0] != "get_network_policy"]


def guardduty_event(
    *,
    severity: float = 8.0,
    workload_type: str = "pods",
    cluster: str = CLUSTER,
    namespace: str = "supabase",
    name: str = "rest-7d9f-abcde",
) -> dict:
    """Shaped like GuardDuty's EventBridge event for an EKS Runtime Monitoring finding."""
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": "123456789012",
        "time": "2026-11-20T10:15:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "schemaVersion": "2.0",
            "accountId": "123456789012",
            "region": REGION,
            "partition": "aws",
            "id": "a2c5e1d7f3b94e8a9c0d1e2f3a4b5c6d",
            "arn": f"arn:aws:guardduty:{REGION}:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/a2c5e1d7f3b94e8a9c0d1e2f3a4b5c6d",
            "type": "Execution:Runtime/ReverseShell",
            "resource": {
                "resourceType": "EKSCluster",
                "eksClusterDetails": {
                    "name": cluster,
                    "arn": f"arn:aws:eks:{REGION}:123456789012:cluster/{cluster}",
                    "vpcId": "vpc-0a1b2c3d",
                    "status": "ACTIVE",
                    "tags": [],
                    "createdAt": 1.7e9,
                },
                "kubernetesDetails": {
                    "kubernetesWorkloadDetails": {
                        "name": name,
                        "type": workload_type,
                        "uid": "33a3c89e-3280-474d-b8cb-fdf03394fc15",
                        "namespace": namespace,
                        "containers": [{"name": "rest", "image": "postgrest/postgrest:v14.12", "imagePrefix": ""}],
                    },
                },
            },
            "service": {"serviceName": "guardduty", "featureName": "RuntimeMonitoring", "count": 1},
            "severity": severity,
            "createdAt": "2026-11-20T10:14:31.000Z",
            "updatedAt": "2026-11-20T10:14:31.000Z",
            "title": "A container process spawned a reverse shell.",
            "description": "A process in a container of pod rest-7d9f-abcde opened a reverse shell.",
        },
    }


def falco_payload(*, priority: str = "Critical", pod: str = "rest-7d9f-abcde", namespace: str = "supabase") -> dict:
    """Falcosidekick's JSON payload for a Falco alert."""
    return {
        "uuid": "4e3f1c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9",
        "output": f"10:15:00.000000000: Critical Shell spawned in a container (k8s.ns={namespace} k8s.pod={pod})",
        "priority": priority,
        "rule": "Terminal shell in container",
        "time": "2026-11-20T10:15:00.000000000Z",
        "source": "syscall",
        "hostname": "ip-10-0-1-23.ec2.internal",
        "tags": ["container", "mitre_execution", "shell"],
        "output_fields": {
            "container.id": "0123456789ab",
            "container.image.repository": "postgrest/postgrest",
            "evt.time": 1795687200000000000,
            "k8s.ns.name": namespace,
            "k8s.pod.name": pod,
            "proc.cmdline": "sh -i",
            "user.name": "postgrest",
        },
    }


def falco_via_pipe(payload: dict) -> dict:
    return {
        "version": "0",
        "id": "0d3b7c1e-5f4a-4b2c-9d8e-7f6a5b4c3d2e",
        "detail-type": ir.FALCO_DETAIL_TYPE,
        "source": ir.FALCO_EVENT_SOURCE,
        "account": "123456789012",
        "time": "2026-11-20T10:15:01Z",
        "region": REGION,
        "resources": [],
        "detail": payload,
    }


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="security-incidents")["TopicArn"]
        queue = sqs.create_queue(QueueName="incident-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        monkeypatch.setenv("TOPIC_ARN", topic)
        monkeypatch.setenv("CLUSTER_NAME", CLUSTER)
        monkeypatch.delenv("PROTECTED_NAMESPACES", raising=False)

        def published() -> list[dict]:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            for m in messages:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            return [json.loads(m["Body"]) for m in messages]

        yield sns, published


class TestGuardDuty:
    def test_high_severity_pod_finding_quarantines_once_and_notifies(self, aws):
        sns, published = aws
        kube = FakeKube()
        result = ir.handler(guardduty_event(), None, kube=kube, sns=sns)
        assert result["action"] == "responded"
        pod = kube.pods[("supabase", "rest-7d9f-abcde")]
        assert pod["labels"] == {"app": "rest", ir.QUARANTINE_LABEL: "true"}
        assert "Execution:Runtime/ReverseShell" in pod["annotations"][ir.QUARANTINE_REASON_ANNOTATION]
        assert kube.policies[("supabase", "quarantine")]["spec"] == ir.quarantine_policy("supabase")["spec"]
        [message] = published()
        assert message["detector"] == "GuardDuty" and message["severity"] == "8.0"
        assert (message["cluster"], message["namespace"], message["pod"]) == (CLUSTER, "supabase", "rest-7d9f-abcde")
        assert message["actions"] == ["NetworkPolicy quarantine created", f"labelled pod {ir.QUARANTINE_LABEL}=true"]

        ir.handler(guardduty_event(), None, kube=kube, sns=sns)
        assert [c[0] for c in kube.writes()] == ["create_network_policy", "label_pod", "label_pod"]
        [again] = published()
        assert again["actions"][0] == "NetworkPolicy quarantine unchanged"

    @pytest.mark.parametrize(
        ("event", "reason"),
        [
            (guardduty_event(severity=5.0), "below 7.0"),
            (guardduty_event(severity=6.9), "below 7.0"),
            (guardduty_event(workload_type="deployments", name="rest"), "names no pod"),
            (guardduty_event(cluster="someone-elses"), "this function serves"),
            ({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, "not a GuardDuty finding"),
        ],
    )
    def test_other_events_do_nothing(self, aws, event, reason):
        sns, published = aws
        kube = FakeKube()
        result = ir.handler(event, None, kube=kube, sns=sns)
        assert result["action"] == "ignored" and reason in result["reason"]
        assert kube.calls == [] and published() == []

    def test_critical_severity_boundary_counts(self, aws):
        sns, published = aws
        kube = FakeKube()
        assert ir.handler(guardduty_event(severity=7.0), None, kube=kube, sns=sns)["action"] == "responded"
        assert len(published()) == 1

    def test_protected_namespace_is_reported_not_touched(self, aws):
        sns, published = aws
        kube = FakeKube({("kube-system", "coredns-1"): {"labels": {}, "annotations": {}}})
        ir.handler(guardduty_event(namespace="kube-system", name="coredns-1"), None, kube=kube, sns=sns)
        assert kube.calls == []
        [message] = published()
        assert "protected" in message["actions"][0]

    def test_vanished_pod_is_reported(self, aws):
        sns, published = aws
        kube = FakeKube(pods={})
        ir.handler(guardduty_event(), None, kube=kube, sns=sns)
        assert [c[0] for c in kube.writes()] == ["create_network_policy", "label_pod"]
        assert published()[0]["actions"][-1] == "pod no longer exists: nothing to isolate"

    def test_loosened_policy_is_restored(self, aws):
        sns, _ = aws
        kube = FakeKube()
        loose = ir.quarantine_policy("supabase")
        loose["spec"]["egress"] = [{}]
        kube.policies[("supabase", "quarantine")] = {**loose, "metadata": {**loose["metadata"], "resourceVersion": "7"}}
        result = ir.handler(guardduty_event(), None, kube=kube, sns=sns)
        assert result["actions"][0] == "NetworkPolicy quarantine restored"
        assert kube.policies[("supabase", "quarantine")]["spec"] == ir.quarantine_policy("supabase")["spec"]


class TestFalco:
    @pytest.mark.parametrize(
        "event",
        [
            falco_via_pipe(falco_payload()),
            falco_via_pipe({"messageId": "m-1", "body": json.dumps(falco_payload()), "attributes": {}}),
            falco_payload(),
        ],
        ids=["pipe-with-template", "pipe-raw-sqs-record", "falcosidekick-lambda-output"],
    )
    def test_critical_alert_quarantines_and_notifies(self, aws, event):
        sns, published = aws
        kube = FakeKube()
        ir.handler(event, None, kube=kube, sns=sns)
        assert kube.pods[("supabase", "rest-7d9f-abcde")]["labels"][ir.QUARANTINE_LABEL] == "true"
        assert ("supabase", "quarantine") in kube.policies
        [message] = published()
        assert (message["detector"], message["title"], message["severity"]) == (
            "Falco",
            "Terminal shell in container",
            "Critical",
        )

        ir.handler(event, None, kube=kube, sns=sns)
        assert sum(c[0] == "create_network_policy" for c in kube.calls) == 1

    @pytest.mark.parametrize(
        "payload",
        [falco_payload(priority="Warning"), falco_payload(priority="Error"), falco_payload(pod="<NA>")],
    )
    def test_lower_priority_or_podless_alerts_do_nothing(self, aws, payload):
        sns, published = aws
        kube = FakeKube()
        assert ir.handler(falco_via_pipe(payload), None, kube=kube, sns=sns)["action"] == "ignored"
        assert kube.calls == [] and published() == []


class TestQuarantinePolicy:
    def test_validates_strictly_against_kubernetes_1_35(self):
        kubernetes_validate.validate(ir.quarantine_policy("supabase"), "1.35.0", strict=True)

    def test_strict_validation_would_catch_a_typo(self):
        broken = ir.quarantine_policy("supabase")
        broken["spec"]["policyType"] = broken["spec"].pop("policyTypes")
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, "1.35.0", strict=True)

    def test_denies_both_directions_for_exactly_the_quarantine_label(self):
        spec = ir.quarantine_policy("supabase")["spec"]
        assert spec["podSelector"] == {"matchLabels": {ir.QUARANTINE_LABEL: "true"}}
        assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
        assert "ingress" not in spec and "egress" not in spec


def _sigv4_signature(url: str, secret_key: str, cluster: str) -> str:
    """SigV4 query signing written out from the spec, independent of botocore."""
    parts = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(params)
        if k != "X-Amz-Signature"
    )
    values = dict(params)
    canonical = "\n".join(
        [
            "GET",
            "/",
            query,
            f"host:{parts.netloc}\n{ir.CLUSTER_ID_HEADER}:{cluster}\n",
            values["X-Amz-SignedHeaders"],
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    _, date, region, service, terminal = values["X-Amz-Credential"].split("/")
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            values["X-Amz-Date"],
            f"{date}/{region}/{service}/{terminal}",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class TestEksToken:
    SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

    def token_url(self, cluster: str) -> tuple[str, str]:
        with mock_aws():
            sts = boto3.client(
                "sts", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=self.SECRET_KEY
            )
            token = ir.eks_token(cluster, sts_client=sts)
        encoded = token.removeprefix(ir.TOKEN_PREFIX)
        return token, base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()

    def test_token_is_a_presigned_get_caller_identity_with_the_cluster_header_signed(self):
        token, url = self.token_url(CLUSTER)
        assert token.startswith("k8s-aws-v1.") and "=" not in token
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        assert (parts.scheme, parts.netloc, parts.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
        assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Expires"] == "60"
        assert query["X-Amz-Credential"].endswith("/eu-west-1/sts/aws4_request")
        assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
        assert query["X-Amz-Signature"] == _sigv4_signature(url, self.SECRET_KEY, CLUSTER)
        assert query["X-Amz-Signature"] != _sigv4_signature(url, self.SECRET_KEY, "another-cluster")

    def test_header_hook_does_not_leak_into_later_calls(self):
        with mock_aws():
            sts = boto3.client("sts", region_name="eu-west-1")
            ir.eks_token(CLUSTER, sts_client=sts)
            plain = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60)
        assert "X-Amz-SignedHeaders=host&" in plain


def _self_signed_ca() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="module")
def tls_material():
    return _self_signed_ca()


@pytest.fixture
def fake_api_server(tls_material, tmp_path):
    """A tiny HTTPS stand-in for the Kubernetes API: pods and networkpolicies in memory."""
    cert_pem, key_pem = tls_material
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    state = {
        "pods": {("supabase", "rest-1"): {"metadata": {"name": "rest-1", "labels": {"app": "rest"}}}},
        "policies": {},
        "requests": [],
        "accept": lambda authorization: authorization == "Bearer k8s-aws-v1.test",
    }

    class Api(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state["requests"].append(
                (self.command, self.path, self.headers.get("Content-Type"), self.headers.get("Authorization"), body)
            )
            if not state["accept"](self.headers.get("Authorization") or ""):
                return self._reply(401, {"kind": "Status", "code": 401})
            segments = self.path.strip("/").split("/")
            if segments[:2] == ["api", "v1"] and segments[4] == "pods" and self.command == "PATCH":
                pod = state["pods"].get((segments[3], segments[5]))
                if pod is None:
                    return self._reply(404, {"kind": "Status", "code": 404})
                pod["metadata"]["labels"].update(body["metadata"]["labels"])
                return self._reply(200, pod)
            if segments[:3] == ["apis", "networking.k8s.io", "v1"]:
                namespace = segments[4]
                if self.command == "POST":
                    state["policies"][(namespace, body["metadata"]["name"])] = body
                    return self._reply(201, body)
                policy = state["policies"].get((namespace, segments[6]))
                if policy is None:
                    return self._reply(404, {"kind": "Status", "code": 404})
                if self.command == "PUT":
                    state["policies"][(namespace, segments[6])] = body
                return self._reply(200, policy)
            return self._reply(403, {"kind": "Status", "code": 403})

        do_GET = do_POST = do_PUT = do_PATCH = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", base64.b64encode(cert_pem).decode(), state
    finally:
        server.shutdown()
        server.server_close()


class TestEksKubernetesClient:
    def test_speaks_the_kubernetes_api_over_verified_tls(self, fake_api_server):
        endpoint, ca, state = fake_api_server
        client = ir.EksKubernetesClient(endpoint=endpoint, ca_data=ca, token="k8s-aws-v1.test")
        assert client.label_pod("supabase", "rest-1", {ir.QUARANTINE_LABEL: "true"}, {"why": "test"}) is True
        assert client.label_pod("supabase", "gone", {ir.QUARANTINE_LABEL: "true"}, {}) is False
        assert ir.ensure_quarantine_policy(client, "supabase") == "created"
        assert ir.ensure_quarantine_policy(client, "supabase") == "unchanged"
        assert state["pods"][("supabase", "rest-1")]["metadata"]["labels"][ir.QUARANTINE_LABEL] == "true"
        assert state["policies"][("supabase", "quarantine")] == ir.quarantine_policy("supabase")
        seen = [(method, path, ctype) for method, path, ctype, _, _ in state["requests"]]
        assert seen == [
            ("PATCH", "/api/v1/namespaces/supabase/pods/rest-1", "application/merge-patch+json"),
            ("PATCH", "/api/v1/namespaces/supabase/pods/gone", "application/merge-patch+json"),
            ("GET", "/apis/networking.k8s.io/v1/namespaces/supabase/networkpolicies/quarantine", "application/json"),
            ("POST", "/apis/networking.k8s.io/v1/namespaces/supabase/networkpolicies", "application/json"),
            ("GET", "/apis/networking.k8s.io/v1/namespaces/supabase/networkpolicies/quarantine", "application/json"),
        ]

    def test_refuses_a_server_whose_certificate_the_cluster_ca_did_not_sign(self, fake_api_server):
        endpoint, _, _ = fake_api_server
        other_ca = base64.b64encode(_self_signed_ca()[0]).decode()
        client = ir.EksKubernetesClient(endpoint=endpoint, ca_data=other_ca, token="k8s-aws-v1.test")
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get_network_policy("supabase", "quarantine")

    def test_api_errors_are_raised_not_swallowed(self, fake_api_server):
        endpoint, ca, _ = fake_api_server
        client = ir.EksKubernetesClient(endpoint=endpoint, ca_data=ca, token="k8s-aws-v1.wrong")
        with pytest.raises(ir.KubernetesError, match="HTTP 401"):
            client.create_network_policy("supabase", ir.quarantine_policy("supabase"))

    def test_for_cluster_reads_endpoint_and_ca_from_describe_cluster(self, fake_api_server):
        endpoint, ca, state = fake_api_server
        state["accept"] = lambda authorization: authorization.startswith("Bearer k8s-aws-v1.")

        class Session:
            def __init__(self) -> None:
                self.eks = boto3.client("eks", region_name=REGION)
                self.stubber = Stubber(self.eks)
                self.stubber.add_response(
                    "describe_cluster",
                    {"cluster": {"name": CLUSTER, "endpoint": endpoint, "certificateAuthority": {"data": ca}}},
                    {"name": CLUSTER},
                )
                self.stubber.activate()

            def client(self, name: str):
                return self.eks if name == "eks" else boto3.client(name, region_name=REGION)

        with mock_aws():
            session = Session()
            client = ir.EksKubernetesClient.for_cluster(
                cluster_name=CLUSTER, endpoint=None, ca_data=None, session=session
            )
            session.stubber.assert_no_pending_responses()
        assert client.get_network_policy("supabase", "quarantine") is None
        encoded = state["requests"][-1][3].removeprefix("Bearer k8s-aws-v1.")
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        assert url.startswith(f"https://sts.{REGION}.amazonaws.com/?Action=GetCallerIdentity")

"""Security stack: account baseline (GuardDuty, Security Hub, Config, Inspector) and incident response.

EventBridge patterns are exercised in moto: the synthesized rules route real-shaped events
(and the events the Falco pipe would emit) to a queue, and only the expected ones arrive.
"""

from __future__ import annotations

import json

import boto3
import kubernetes_validate
import pytest
from moto import mock_aws

from constructs_lib.incident_response import CLUSTER_ROLE, K8S_GROUP, falco_queue_name
from ops.incident_response import handler as ir
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS


def only(t, resource_type: str) -> tuple[str, dict]:
    found = t.find_resources(resource_type)
    assert len(found) == 1, resource_type
    logical_id, resource = next(iter(found.items()))
    return logical_id, resource["Properties"]


def imports(value: dict, prefix: str, fragment: str) -> bool:
    name = value.get("Fn::ImportValue", "") if isinstance(value, dict) else ""
    return name.startswith(prefix) and fragment in name


# --- baseline ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_guardduty_features(template, env):
    _, detector = only(template(env, "security"), "AWS::GuardDuty::Detector")
    assert detector["Enable"] is True
    assert "DataSources" not in detector
    features = {f["Name"]: f for f in detector["Features"]}
    assert set(features) == {
        "EKS_AUDIT_LOGS",
        "EKS_RUNTIME_MONITORING",
        "RDS_LOGIN_EVENTS",
        "S3_DATA_EVENTS",
        "EBS_MALWARE_PROTECTION",
    }
    assert all(f["Status"] == "ENABLED" for f in features.values())
    assert features["EKS_RUNTIME_MONITORING"]["AdditionalConfiguration"] == [
        {"Name": "EKS_ADDON_MANAGEMENT", "Status": "ENABLED"}
    ]


def test_security_hub_with_foundational_best_practices(template):
    t = template("prod", "security")
    hub_id, hub = only(t, "AWS::SecurityHub::Hub")
    assert hub["EnableDefaultStandards"] is False
    standards = t.find_resources("AWS::SecurityHub::Standard")
    assert len(standards) == 1
    standard = next(iter(standards.values()))
    assert standard["Properties"]["StandardsArn"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":securityhub:us-east-1::standards/aws-foundational-security-best-practices/v/1.0.0",
            ],
        ]
    }
    assert hub_id in standard["DependsOn"]


@pytest.mark.parametrize("env", ENVS)
def test_config_records_everything_into_the_hardened_bucket(template, cfg, env):
    t = template(env, "security")
    recorder_id, recorder = only(t, "AWS::Config::ConfigurationRecorder")
    home = cfg.environments[env].region == cfg.organization.home_region
    assert recorder["RecordingGroup"] == {"AllSupported": True, "IncludeGlobalResourceTypes": home}
    _, channel = only(t, "AWS::Config::DeliveryChannel")
    bucket_ref = channel["S3BucketName"]["Ref"]
    assert channel["S3KmsKeyArn"]["Fn::GetAtt"][1] == "Arn"
    assert (
        recorder_id
        in t.to_json()["Resources"][next(iter(t.find_resources("AWS::Config::DeliveryChannel")))]["DependsOn"]
    )
    bucket = t.to_json()["Resources"][bucket_ref]["Properties"]
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "aws:kms"
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "DestinationBucketName" in bucket["LoggingConfiguration"]
    policies = [
        p["Properties"]
        for p in t.find_resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_ref}
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
    )


def test_config_role_writes_only_under_its_prefix(template, cfg):
    t = template("staging", "security")
    policy = next(
        p["Properties"]
        for p in t.find_resources("AWS::IAM::ManagedPolicy").values()
        if p["Properties"]["Description"].startswith("Deliver configuration")
    )
    deliver = next(s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "Deliver")
    assert deliver["Action"] == "s3:PutObject"
    assert deliver["Resource"]["Fn::Join"][1][1] == f"/AWSLogs/{cfg.environments['staging'].account.id}/Config/*"


def test_inspector_enabled_for_ecr_and_ec2(template):
    t = template("dev", "security")
    _, resource = only(t, "Custom::AWS")
    create, delete = json.loads(resource["Create"]), json.loads(resource["Delete"])
    assert (create["service"], create["action"]) == ("Inspector2", "Enable")
    assert create["parameters"] == {"resourceTypes": ["ECR", "EC2"]}
    assert resource["Update"] == resource["Create"]
    assert (delete["action"], delete["parameters"]) == ("Disable", {"resourceTypes": ["ECR", "EC2"]})
    _, scanning = only(t, "AWS::ECR::RegistryScanningConfiguration")
    assert scanning == {
        "ScanType": "ENHANCED",
        "Rules": [
            {"ScanFrequency": "CONTINUOUS_SCAN", "RepositoryFilters": [{"Filter": "*", "FilterType": "WILDCARD"}]}
        ],
    }


# --- incident response ------------------------------------------------------------------


def function_of(t) -> tuple[str, dict]:
    found = {
        k: v
        for k, v in t.find_resources("AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == "handler.handler"
    }
    assert len(found) == 1
    return next(iter(found.items()))


@pytest.mark.parametrize("env", ENVS)
def test_function_settings(template, env):
    t = template(env, "security")
    _, function = function_of(t)
    props = function["Properties"]
    assert props["Runtime"].startswith("python3.")
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "ReservedConcurrentExecutions" not in props
    assert "TargetArn" in props["DeadLetterConfig"]
    assert props["VpcConfig"]["SubnetIds"]
    variables = props["Environment"]["Variables"]
    assert imports(variables["TOPIC_ARN"], f"{env}-alerts:", "AlertsTopic")
    assert imports(variables["CLUSTER_NAME"], f"{env}-cluster:", "EksCluster")
    assert variables["PROTECTED_NAMESPACES"] == "kube-system"
    logs = t.to_json()["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert logs["RetentionInDays"] == 365 and "KmsKeyId" in logs


def test_function_role_names_specific_resources(template):
    t = template("prod", "security")
    _, function = function_of(t)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = t.to_json()["Resources"][role_id]["Properties"]
    managed = [r for r in role["ManagedPolicyArns"] if "Ref" in r]
    assert len(managed) == 1
    statements = {
        s["Sid"]: s for s in t.to_json()["Resources"][managed[0]["Ref"]]["Properties"]["PolicyDocument"]["Statement"]
    }
    assert statements["FindCluster"]["Action"] == "eks:DescribeCluster"
    assert imports(statements["FindCluster"]["Resource"], "prod-cluster:", "EksCluster")
    assert "Arn" in statements["FindCluster"]["Resource"]["Fn::ImportValue"]
    assert statements["Report"]["Action"] == "sns:Publish"
    assert imports(statements["Report"]["Resource"], "prod-alerts:", "AlertsTopic")
    assert statements["Logs"]["Resource"]["Fn::GetAtt"][1] == "Arn"
    for statement in statements.values():
        assert statement["Resource"] != "*"


def test_access_entry_maps_the_role_to_the_rbac_group(template):
    t = template("staging", "security")
    _, function = function_of(t)
    _, entry = only(t, "AWS::EKS::AccessEntry")
    assert entry["PrincipalArn"] == function["Properties"]["Role"]
    assert entry["KubernetesGroups"] == [K8S_GROUP] and entry["Type"] == "STANDARD"
    assert "AccessPolicies" not in entry
    assert imports(entry["ClusterName"], "staging-cluster:", "EksCluster")


def test_rbac_allows_exactly_what_the_handler_calls(template):
    _, resource = only(template("staging", "security"), "Custom::AWSCDK-EKS-KubernetesResource")
    manifests = {m["kind"]: m for m in json.loads(resource["Manifest"])}
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, "1.35.0", strict=True)
    role, binding = manifests["ClusterRole"], manifests["ClusterRoleBinding"]
    grants = {
        (group, res): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
    }
    # EksKubernetesClient: PATCH pods; GET, POST, PUT networkpolicies.
    assert grants == {("", "pods"): {"patch"}, ("networking.k8s.io", "networkpolicies"): {"get", "create", "update"}}
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": K8S_GROUP}]


def test_function_reaches_the_private_api_endpoint(template):
    t = template("prod", "security")
    _, ingress = only(t, "AWS::EC2::SecurityGroupIngress")
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (443, 443, "tcp")
    assert imports(ingress["GroupId"], "prod-cluster:", "ClusterSecurityGroupId")
    _, function = function_of(t)
    assert {"Fn::GetAtt": [ingress["SourceSecurityGroupId"]["Fn::GetAtt"][0], "GroupId"]} in function["Properties"][
        "VpcConfig"
    ]["SecurityGroupIds"]


def test_rule_targets(template):
    t = template("prod", "security")
    function_id, _ = function_of(t)
    rules = {
        r["Properties"]["EventPattern"]["source"][0]: r["Properties"]
        for r in t.find_resources("AWS::Events::Rule").values()
    }
    guardduty = rules["aws.guardduty"]
    arns = [target["Arn"] for target in guardduty["Targets"]]
    assert {"Fn::GetAtt": [function_id, "Arn"]} in arns
    assert any(imports(a, "prod-alerts:", "AlertsTopic") for a in arns)
    assert all("DeadLetterConfig" in target for target in guardduty["Targets"])
    falco = rules[ir.FALCO_EVENT_SOURCE]
    assert [target["Arn"] for target in falco["Targets"]] == [{"Fn::GetAtt": [function_id, "Arn"]}]


def test_falco_pipe_feeds_the_falco_rule(template, cfg):
    t = template("staging", "security")
    _, pipe = only(t, "AWS::Pipes::Pipe")
    queue_id = pipe["Source"]["Fn::GetAtt"][0]
    assert t.to_json()["Resources"][queue_id]["Properties"]["QueueName"] == falco_queue_name(cfg.project, "staging")
    assert pipe["Target"]["Fn::Join"][1][-1].endswith(":event-bus/default")
    assert pipe["TargetParameters"]["InputTemplate"] == "<$.body>"
    bus = pipe["TargetParameters"]["EventBridgeEventBusParameters"]
    assert (bus["Source"], bus["DetailType"]) == (ir.FALCO_EVENT_SOURCE, ir.FALCO_DETAIL_TYPE)


def _delivered(patterns: dict[str, dict], events: list[dict]) -> dict[str, list[dict]]:
    """Put `events` on a moto event bus with one rule per pattern; return what each rule delivered."""
    with mock_aws():
        bus = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        urls = {}
        for name, pattern in patterns.items():
            urls[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=urls[name], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            bus.put_rule(Name=name, EventPattern=json.dumps(pattern))
            bus.put_targets(Rule=name, Targets=[{"Id": "1", "Arn": arn}])
        for event in events:
            bus.put_events(
                Entries=[
                    {
                        "Source": event["source"],
                        "DetailType": event["detail-type"],
                        "Detail": json.dumps(event["detail"]),
                    }
                ]
            )
        return {
            name: [
                json.loads(m["Body"])["detail"]
                for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            ]
            for name, url in urls.items()
        }


def test_patterns_select_high_severity_findings_and_critical_falco_alerts(template):
    t = template("prod", "security")
    patterns = {
        r["Properties"]["EventPattern"]["source"][0].replace(".", "-"): r["Properties"]["EventPattern"]
        for r in t.find_resources("AWS::Events::Rule").values()
    }
    _, pipe = only(t, "AWS::Pipes::Pipe")
    piped = pipe["TargetParameters"]["EventBridgeEventBusParameters"]

    def finding(severity):
        return {
            "source": "aws.guardduty",
            "detail-type": "GuardDuty Finding",
            "detail": {"severity": severity, "id": str(severity)},
        }

    def falco(priority):
        return {
            "source": piped["Source"],
            "detail-type": piped["DetailType"],
            "detail": {"rule": "Terminal shell in container", "priority": priority, "output_fields": {}},
        }

    delivered = _delivered(
        patterns,
        [
            finding(2),
            finding(6.9),
            finding(7),
            finding(8.8),
            falco("Warning"),
            falco("Critical"),
            falco("EMERGENCY"),
            falco("Notice"),
        ],
    )
    assert sorted(d["severity"] for d in delivered["aws-guardduty"]) == [7, 8.8]
    assert sorted(d["priority"] for d in delivered["supabase-falco"]) == ["Critical", "EMERGENCY"]


def test_security_stack_is_termination_protected_in_production(assembly):
    assert assembly.stack("prod/security").termination_protection is True
    assert assembly.stack("dev/security").termination_protection is False

"""Organization stack: OUs, member accounts, SCPs, organization trail."""

import json

from aws_cdk.assertions import Match


def scp(template, name):
    policies = template.find_resources("AWS::Organizations::Policy", {"Properties": {"Name": f"supabase-{name}"}})
    assert len(policies) == 1, name
    return next(iter(policies.values()))["Properties"]


def test_ous(template, cfg):
    t = template("org")
    t.resource_count_is("AWS::Organizations::OrganizationalUnit", 5)
    for name in ("Security", "Infrastructure", "Workloads"):
        t.has_resource_properties(
            "AWS::Organizations::OrganizationalUnit", {"Name": name, "ParentId": cfg.organization.root_id}
        )
    for name in ("NonProd", "Prod"):
        t.has_resource_properties(
            "AWS::Organizations::OrganizationalUnit",
            {"Name": name, "ParentId": {"Fn::GetAtt": [Match.string_like_regexp("^WorkloadsOu"), "Id"]}},
        )


def test_member_accounts_created_and_retained(template, cfg):
    t = template("org")
    accounts = t.find_resources("AWS::Organizations::Account")
    assert len(accounts) == 1 + len(cfg.environments)
    for resource in accounts.values():
        assert resource["DeletionPolicy"] == "Retain"
    t.has_resource_properties(
        "AWS::Organizations::Account",
        {
            "AccountName": "supabase-prod",
            "Email": "aws+prod@example.com",
            "ParentIds": [{"Fn::GetAtt": [Match.string_like_regexp("^ProdOu"), "Id"]}],
        },
    )
    t.has_resource_properties(
        "AWS::Organizations::Account",
        {"AccountName": "supabase-dev", "ParentIds": [{"Fn::GetAtt": [Match.string_like_regexp("^NonProdOu"), "Id"]}]},
    )


def test_adopting_existing_accounts_creates_none(cfg):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.org_stack import OrganizationStack

    adopted = cfg.model_copy(
        update={"organization": cfg.organization.model_copy(update={"adopt_existing_accounts": True})}
    )
    stack = OrganizationStack(
        cdk.App(), "org", cfg=adopted, env=cdk.Environment(account="111111111111", region="us-east-1")
    )
    Template.from_stack(stack).resource_count_is("AWS::Organizations::Account", 0)


def test_scps_attached_to_every_top_level_ou(template):
    t = template("org")
    assert len(t.find_resources("AWS::Organizations::Policy")) == 4
    for name in ("DenyLeaveOrganization", "ProtectSecurityServices", "DenyOutsideRegions", "DenyRootUser"):
        props = scp(t, name)
        assert props["Type"] == "SERVICE_CONTROL_POLICY"
        assert len(props["TargetIds"]) == 3


def test_scp_contents(template, cfg):
    t = template("org")
    leave = scp(t, "DenyLeaveOrganization")["Content"]["Statement"][0]
    assert leave["Effect"] == "Deny" and leave["Action"] == "organizations:LeaveOrganization"
    protect = scp(t, "ProtectSecurityServices")["Content"]["Statement"][0]
    for action in ("cloudtrail:StopLogging", "guardduty:DeleteDetector", "config:StopConfigurationRecorder"):
        assert action in protect["Action"]
    regions = scp(t, "DenyOutsideRegions")["Content"]["Statement"][0]
    assert regions["Condition"]["StringNotEquals"]["aws:RequestedRegion"] == cfg.regions
    assert "iam:*" in regions["NotAction"] and "ec2:*" not in regions["NotAction"]
    root = scp(t, "DenyRootUser")["Content"]["Statement"][0]
    assert root["Condition"]["StringLike"]["aws:PrincipalArn"] == "arn:aws:iam::*:root"


def test_organization_trail(template, cfg):
    t = template("org")
    t.has_resource_properties(
        "AWS::CloudTrail::Trail",
        {
            "IsOrganizationTrail": True,
            "IsMultiRegionTrail": True,
            "EnableLogFileValidation": True,
            "IncludeGlobalServiceEvents": True,
            "KMSKeyId": Match.any_value(),
            "CloudWatchLogsLogGroupArn": Match.any_value(),
        },
    )


def test_trail_bucket_locked_down(template, cfg):
    t = template("org")
    buckets = t.find_resources("AWS::S3::Bucket", {"Properties": {"ObjectLockEnabled": True}})
    assert len(buckets) == 1
    ((logical_id, bucket),) = buckets.items()
    assert logical_id.startswith("TrailBucket") and bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Mode": "GOVERNANCE",
        "Days": cfg.organization.cloudtrail_retention_days,
    }
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert (
        props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    )
    policy = json.dumps(t.find_resources("AWS::S3::BucketPolicy"))
    assert '"aws:SecureTransport": "false"' in policy
    assert f"AWSLogs/{cfg.organization.id}/" in policy


def test_org_and_deploy_access_need_no_bootstrap(assembly):
    """Both are deployed before `cdk bootstrap` exists in their accounts (README, steps 3-4):
    no bootstrap version parameter, no template upload, no bootstrap roles."""

    stacks = assembly.cloud.stacks
    for path in ("org", "dev-deploy-access", "prod-deploy-access"):
        template = assembly.template_json(path)
        assert "BootstrapVersion" not in template.get("Parameters", {}), path
        assert not stacks[path].needs_bootstrap, path
        assert not {"assumeRoleArn", "cloudFormationExecutionRoleArn"} & set(stacks[path].properties), path


def test_scps_let_cloudformation_maintain_the_security_stack(template):
    """The execution role updates and rolls back GuardDuty and Config (rehearsal rule scp-allows-deployers)."""
    exceptions = scp(template("org"), "ProtectSecurityServices")["Content"]["Statement"][0]["Condition"]["ArnNotLike"]
    assert "arn:aws:iam::*:role/cdk-hnb659fds-cfn-exec-role-*" in exceptions["aws:PrincipalArn"]
